/**
 * What the official PVE 9.1 schema (../shared/pve-api/pve-api-schema.json) says an answer
 * looks like: the fields every item must carry and the JSON type of each declared field.
 * PVE sends booleans as 0/1, and its `returns` are open (real answers carry more fields), so
 * only declared fields are checked.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Returns {
  type?: string;
  items?: Returns;
  properties?: Record<string, { type?: string; optional?: number }>;
}

const schema = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../shared/pve-api/pve-api-schema.json', import.meta.url)), 'utf8'),
) as {
  version: string;
  paths: Record<string, Record<string, { returns?: Returns }>>;
};

export const schemaVersion = schema.version;

function typeProblem(type: string | undefined, value: unknown): string | undefined {
  switch (type) {
    case 'integer':
      return Number.isInteger(value) ? undefined : 'an integer';
    case 'number':
      return typeof value === 'number' ? undefined : 'a number';
    case 'boolean':
      return value === 0 || value === 1 ? undefined : '0 or 1';
    case 'string':
      return typeof value === 'string' ? undefined : 'a string';
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? undefined : 'an object';
    case 'array':
      return Array.isArray(value) ? undefined : 'an array';
    default:
      return undefined;
  }
}

function objectProblems(returns: Returns, value: unknown, at: string): string[] {
  const problem = typeProblem(returns.type, value);
  if (problem) return [`${at}: ${JSON.stringify(value)} is not ${problem}`];
  if (returns.type === 'array' && returns.items) {
    return (value as unknown[]).flatMap((item, i) => objectProblems(returns.items!, item, `${at}[${i}]`));
  }
  if (returns.type !== 'object' || !returns.properties) return [];
  const record = value as Record<string, unknown>;
  return Object.entries(returns.properties).flatMap(([key, prop]) => {
    if (record[key] === undefined) return prop.optional ? [] : [`${at}.${key}: missing`];
    const wrong = typeProblem(prop.type, record[key]);
    return wrong ? [`${at}.${key}: ${JSON.stringify(record[key])} is not ${wrong}`] : [];
  });
}

/** Where an answer differs from the schema's `returns` for `METHOD /path/{template}` (empty: none). */
export function schemaProblems(method: string, path: string, answer: unknown): string[] {
  const returns = schema.paths[path]?.[method]?.returns;
  if (!returns) return [`the PVE ${schema.version} schema has no ${method} ${path}`];
  return objectProblems(returns, answer, 'answer');
}
