import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import { jsonSchemaTransform } from 'fastify-type-provider-zod'
import type { Config } from '../config.js'

/**
 * The answer every route may give before any of its code runs: the HTTP server cuts off a request whose
 * headers and body are not whole within REQUEST_TIMEOUT_SECONDS with a bare 408 (no body, connection closed).
 * It has no schema a route could declare, so the document adds it to every operation.
 */
const REQUEST_TIMEOUT = {
  description:
    'the request (headers and body) did not arrive whole within REQUEST_TIMEOUT_SECONDS; the connection is closed, with no body',
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

type Operation = { responses?: Record<string, unknown> }
type Built = { paths?: Record<string, Record<string, unknown>>; components?: Record<string, unknown> }

const withRequestTimeout = (document: Built): Built => {
  const ref = { $ref: '#/components/responses/RequestTimeout' }
  const paths = Object.fromEntries(
    Object.entries(document.paths ?? {}).map(([path, item]) => [
      path,
      Object.fromEntries(
        Object.entries(item).map(([key, value]) => {
          if (!METHODS.has(key)) return [key, value]
          const operation = value as Operation
          return [key, { ...operation, responses: { ...operation.responses, 408: ref } }]
        }),
      ),
    ]),
  )
  const responses = { ...(document.components?.responses as object), RequestTimeout: REQUEST_TIMEOUT }
  const components = { ...document.components, responses }
  return { ...document, components, paths }
}

/**
 * The OpenAPI document served at /docs/json, built from the routes' zod schemas: every operation has an
 * operationId, its responses with their media types, and the server it is reached at.
 */
export const openApiOptions = (config: Config): FastifyDynamicSwaggerOptions => ({
  openapi: {
    info: {
      title: 'governance-ledger',
      description:
        'Evidence-based allow/block verdicts for AI agents acting on production, with a tamper-evident ledger.',
      version: '1',
      license: { name: 'Apache-2.0' },
    },
    // where the operator says the service is reached (PUBLIC_URL); otherwise relative to the document's own
    // address, which is the service that served it
    servers: [{ url: config.PUBLIC_URL?.replace(/\/+$/, '') || '/' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    security: [{ bearer: [] }],
  },
  // the paths are the routes' own, whatever path PUBLIC_URL has
  stripBasePath: false,
  transform: jsonSchemaTransform,
  transformObject: (built) =>
    'openapiObject' in built
      ? (withRequestTimeout(built.openapiObject as Built) as typeof built.openapiObject)
      : built.swaggerObject,
})
