import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { registerNamespaceAndSearchAttributes } from '../../scripts/temporal-register.js';
import { searchAttributes } from '../../workflows/search-attributes.js';
import { testConnection } from '../support/temporal.js';

describe('registering proxmox-manager on a Temporal cluster it did not start', () => {
  it('creates the namespace and its search attributes, and a second run changes nothing', async () => {
    const { connection } = await testConnection();
    const namespace = `pm-register-${randomUUID().slice(0, 8)}`;
    const firstRun: string[] = [];
    await registerNamespaceAndSearchAttributes(connection, namespace, (line) => firstRun.push(line));
    expect(firstRun).toEqual([
      `namespace ${namespace}: created`,
      `search attributes: ${searchAttributes.length} added (${searchAttributes.map((k) => k.name).join(', ')}), 0 already registered`,
    ]);

    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    expect(Object.keys(customAttributes)).toEqual(expect.arrayContaining(searchAttributes.map((k) => k.name)));

    const secondRun: string[] = [];
    await registerNamespaceAndSearchAttributes(connection, namespace, (line) => secondRun.push(line));
    expect(secondRun).toEqual([
      `namespace ${namespace}: exists`,
      `search attributes: 0 added (none), ${searchAttributes.length} already registered`,
    ]);
  });
});
