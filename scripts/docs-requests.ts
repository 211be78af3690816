/**
 * Writes docs/requests.md from the operation catalog's schemas and lib/operations/request-docs.ts.
 *   npm run docs:requests
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderRequestsMarkdown } from '../lib/operations/request-docs.js';

const target = fileURLToPath(new URL('../docs/requests.md', import.meta.url));
writeFileSync(target, renderRequestsMarkdown());
console.log(`wrote ${target}`);
