/**
 * The MCP server over streamable HTTP, stateless: each POST to /mcp gets a fresh server and
 * transport, so nothing is kept between requests. It binds to loopback unless told
 * otherwise; with `bearer` set, MCP clients must present it (it is not the API token).
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

export interface McpHttpOptions {
  host: string;
  port: number;
  /** Token MCP clients send as `Authorization: Bearer ...`; none required when absent. */
  bearer?: string;
}

function authorized(req: IncomingMessage, bearer: string | undefined): boolean {
  if (bearer === undefined) return true;
  const presented = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${bearer}`);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

function refuse(res: ServerResponse, status: number, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

export async function serveMcpHttp(createServerForRequest: () => McpServer, options: McpHttpOptions): Promise<Server> {
  const http = createServer((req, res) => {
    if (new URL(req.url ?? '/', 'http://mcp').pathname !== '/mcp') return refuse(res, 404, 'the MCP endpoint is /mcp');
    if (req.method !== 'POST') return refuse(res, 405, 'stateless server: POST only');
    if (!authorized(req, options.bearer)) return refuse(res, 401, 'send Authorization: Bearer <MCP token>');
    const server = createServerForRequest();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => void Promise.all([transport.close(), server.close()]));
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch((err: Error) => {
        if (!res.headersSent) refuse(res, 500, `MCP request failed: ${err.message}`);
      });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, resolve);
  });
  return http;
}
