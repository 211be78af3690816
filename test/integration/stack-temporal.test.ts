import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
// The SDK exports this encoder for tests that check registered search attributes.
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { searchAttributes } from '../../workflows/search-attributes.js';
import { startTestWorker, testConnection, type TestWorker } from '../support/temporal.js';

describe('the shared Temporal dev server from global setup', () => {
  it('is reachable on a loopback address', async () => {
    expect(inject('temporalAddress')).toMatch(/^127\.0\.0\.1:\d+$/);
    const client = await testConnection();
    const { namespaceInfo } = await client.workflowService.describeNamespace({
      namespace: inject('temporalNamespace'),
    });
    expect(namespaceInfo?.name).toBe(inject('temporalNamespace'));
  });

  it('has every project search attribute registered with its type', async () => {
    const client = await testConnection();
    const { customAttributes } = await client.connection.operatorService.listSearchAttributes({
      namespace: inject('temporalNamespace'),
    });
    for (const key of searchAttributes) {
      expect(customAttributes[key.name], key.name).toBe(encodeSearchAttributeIndexedValueType(key.type));
    }
  });
});

describe('a test worker', () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker({
      workflowsPath: fileURLToPath(new URL('../support/fixtures/stack-workflows.ts', import.meta.url)),
    });
  });
  afterAll(() => worker?.shutdown());

  it('runs a workflow on its own task queue and the workflow is found by its search attributes', async () => {
    const workflowId = `stack-test/${worker.taskQueue}`;
    const result = await worker.client.workflow.execute('tagAndEcho', {
      taskQueue: worker.taskQueue,
      workflowId,
      args: ['home', ['pve1', 'pve2']],
    });
    expect(result).toBe(`${worker.taskQueue}:home`);

    // Visibility is eventually consistent: wait for the upserted attributes to be indexed.
    const query = `WorkflowId = '${workflowId}' AND PmEnvironment = 'home' AND PmNodes = 'pve2'`;
    await expect
      .poll(async () => (await worker.client.workflow.count(query)).count, { timeout: 15_000, interval: 250 })
      .toBe(1);
  });
});
