/**
 * Operations: start one (any kind in lib/operations/catalog.ts), list and read them, and
 * steer them — approve or reject a plan, cancel. Every change goes through its workflow;
 * the caller's identity comes from the token and travels as `meta.requester` or `by`.
 *
 * One file per concern: start.ts, read.ts, decisions.ts, cancel.ts; operation.ts is what
 * they share (the operation behind `{id}`, the errors every route documents).
 */
import type { Services } from '../../deps.js';
import type { Route } from '../../route.js';
import { cancelRoute } from './cancel.js';
import { decisionRoutes } from './decisions.js';
import { operationLoader } from './operation.js';
import { detailRoute, listRoute } from './read.js';
import { startRoutes } from './start.js';

export function operationRoutes(s: Services): Route[] {
  const loadOperation = operationLoader(s);
  return [
    ...startRoutes(s),
    listRoute(s),
    detailRoute(s, loadOperation),
    ...decisionRoutes(s, loadOperation),
    cancelRoute(loadOperation),
  ];
}
