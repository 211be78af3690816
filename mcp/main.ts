/**
 * The MCP server process, as an agent's MCP client starts it:
 *   PM_URL=http://127.0.0.1:8080 PM_TOKEN=<agent token> npx tsx mcp/main.ts            (stdio)
 *   PM_URL=... PM_TOKEN=... npx tsx mcp/main.ts --http 27080 [--host 127.0.0.1]        (streamable HTTP at /mcp)
 * The token should be one with the `agent` role. PM_MCP_BEARER, when set, is required from HTTP clients.
 */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { loadSettings, SettingsError, type Settings } from '../cli/settings.js';
import { createApiClient } from '../lib/api-client.js';
import { serveMcpHttp } from './http.js';
import { createMcpServer } from './server.js';

const { values } = parseArgs({ options: { http: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
let settings: Settings;
try {
  settings = loadSettings(process.env);
} catch (err) {
  if (!(err instanceof SettingsError)) throw err;
  console.error(`mcp: ${err.message}`);
  process.exit(3);
}
const api = createApiClient(settings);
const build = () => createMcpServer(api, { apiUrl: settings.url });

if (values.http === undefined) {
  await build().connect(new StdioServerTransport());
} else {
  const port = Number(values.http);
  const bearer = process.env.PM_MCP_BEARER;
  const server = await serveMcpHttp(build, { host: values.host, port, ...(bearer ? { bearer } : {}) });
  const address = server.address() as AddressInfo;
  // stdout is the protocol channel only for stdio; here it is free for the operator.
  console.log(`mcp: streamable HTTP at http://${address.address}:${address.port}/mcp`);
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
