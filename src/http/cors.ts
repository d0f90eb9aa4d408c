import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** The request headers a browser client sends beside the safelisted ones. */
const CORS_ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'idempotency-key',
  'last-event-id',
  'x-request-id',
]

/** The answer headers a browser client reads beside the safelisted ones: when to retry, which request, why 401. */
const CORS_EXPOSED_HEADERS = [
  'retry-after',
  'x-request-id',
  'www-authenticate',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
]

/** How long a browser may keep a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_SECONDS = 600

/**
 * CORS for the listed origins only (CORS_ALLOWED_ORIGINS), so a browser dashboard can call the API; any other
 * origin gets no CORS header at all, and its preflight no answer (404). A preflight is answered before any
 * route scope runs, so it needs no token and spends no rate budget; the request that follows still needs its
 * bearer token. Tokens travel in a header, never in cookies: no Access-Control-Allow-Credentials.
 */
export const corsPlugin = fp(
  async (app: FastifyInstance, { origins }: { origins: readonly string[] }) => {
    const allowed = new Set(origins)
    await app.register(cors, {
      origin: (origin, callback) =>
        callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
      methods: ['GET', 'HEAD', 'POST', 'PUT'],
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      credentials: false,
      maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    })
  },
  { name: 'governance-cors' },
)
