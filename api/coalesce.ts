/**
 * Many callers, one read. Callers name what they read by a key; concurrent reads of the same
 * key share one call to Temporal or PVE instead of each making their own — a dashboard of 32
 * tabs polling one operation costs one describe at a time, not 32.
 *
 * A caller never gets an answer read before it asked: when a read of its key is already in
 * flight it waits for that one to end and then shares the next read with everyone else who
 * arrived meanwhile. So an approval followed by a GET sees the approval (read-your-writes),
 * and at most two reads per key are ever pending. A caller content with any answer newer than
 * what it holds (`joinRunning`) shares the read in flight instead.
 */
export function coalesced<V>(): (
  key: string,
  read: () => Promise<V>,
  options?: { joinRunning?: boolean },
) => Promise<V> {
  const flights = new Map<string, { done: Promise<V>; next?: Promise<V> }>();
  const start = (key: string, read: () => Promise<V>): Promise<V> => {
    const flight: { done: Promise<V>; next?: Promise<V> } = {
      done: read().finally(() => {
        if (flights.get(key) === flight) flights.delete(key);
      }),
    };
    flights.set(key, flight);
    return flight.done;
  };
  return (key, read, options = {}) => {
    const flight = flights.get(key);
    if (!flight) return start(key, read);
    if (options.joinRunning) return flight.done;
    const settled = () => undefined;
    return (flight.next ??= flight.done.then(settled, settled).then(() => start(key, read)));
  };
}
