/**
 * The API describing itself: the OpenAPI document and a browsable page of it.
 */
import { docsPage, type OpenApiDocument } from '../openapi.js';
import type { Route } from '../route.js';

export function docsRoutes(document: () => OpenApiDocument): Route[] {
  return [
    {
      method: 'GET',
      path: '/openapi.json',
      tag: 'docs',
      summary: 'This API as an OpenAPI 3.1 document',
      access: 'public',
      responses: { 200: { description: 'the document' } },
      handler: async (c) => c.json(document()),
    },
    {
      method: 'GET',
      path: '/docs',
      tag: 'docs',
      summary: 'This API as a browsable page',
      access: 'public',
      responses: { 200: { description: 'an HTML page' } },
      handler: async (c) => c.html(docsPage(document())),
    },
  ];
}
