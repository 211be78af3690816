/**
 * A Temporal schedule the worker keeps as its config says, at every start: created when
 * missing, else brought to what is desired (keeping whatever the schedule's state is, such as
 * paused by an operator).
 */
import { ScheduleAlreadyRunning, type Client, type ScheduleOptions } from '@temporalio/client';

export async function upsertSchedule(
  client: Client,
  scheduleId: string,
  desired: Omit<ScheduleOptions, 'scheduleId' | 'state'>,
  note: string,
): Promise<'created' | 'updated'> {
  try {
    await client.schedule.create({ scheduleId, ...desired, state: { note } });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, ...desired }));
    return 'updated';
  }
}
