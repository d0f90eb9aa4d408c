import rateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { ConnectionSlots } from './connections.js'
import { ApiError } from './errors.js'

/** One budget: at most `max` in each window of `windowMs`, per principal. */
export interface Budget {
  readonly max: number
  readonly windowMs: number
}

/** What every principal may spend: requests (any /v1 route), and commands (the routes that append events). */
export interface RateLimits {
  readonly requests: Budget
  readonly commands: Budget
  /** commands whose body is still arriving or being handled, per principal and in all */
  readonly inFlight: { readonly perPrincipal: number; readonly total: number }
}

export const rateLimitsOf = (config: Config): RateLimits => ({
  requests: { max: config.RATE_LIMIT_REQUESTS_PER_SECOND, windowMs: 1000 },
  commands: { max: config.RATE_LIMIT_COMMANDS_PER_MINUTE, windowMs: 60_000 },
  inFlight: { perPrincipal: config.COMMANDS_IN_FLIGHT_PER_PRINCIPAL, total: config.COMMANDS_IN_FLIGHT_TOTAL },
})

/** The methods of the routes that may append to the ledger: each one admitted spends one command. */
export const COMMAND_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Principals followed at once per budget; beyond it the least recently seen starts a fresh window. */
const PRINCIPALS_TRACKED = 10_000

/**
 * The key is the verified token's subject, never a header: the hooks run after authentication, which
 * refuses a request without a valid token before any budget is looked at. A route of this scope that
 * needs no token would fall back to the client's address.
 */
const keyOf = (request: FastifyRequest): string =>
  request.principal ? `principal:${request.principal.sub}` : `address:${request.ip}`

const refusal = (name: string, budget: Budget, what: string) =>
  ((_request, context) => {
    const retryAfterSeconds = Math.max(1, Math.ceil(context.ttl / 1000))
    const windowSeconds = budget.windowMs / 1000
    return new ApiError(
      'too-many-requests',
      `rate limit ${name}: at most ${context.max} ${what} in ${windowSeconds} s for each principal; retry in ${retryAfterSeconds} s`,
      { budget: name, max: context.max, windowSeconds, retryAfterSeconds },
    )
  }) satisfies RateLimitPluginOptions['errorResponseBuilder']

/**
 * Rate limits per principal, for the authenticated scope it is registered in (after `authPlugin`):
 * - requests per second, checked as soon as the token is verified, before the body is read;
 * - commands per minute, checked once the body is valid, just before the command runs.
 * A refused request is answered 429 with Retry-After and the RateLimit-* headers of the budget it ran out of,
 * and reaches no handler: nothing is appended for it.
 */
export const rateLimitsPlugin = fp(
  async (api: FastifyInstance, limits: RateLimits) => {
    const common = {
      global: true,
      keyGenerator: keyOf,
      enableDraftSpec: true,
      cache: PRINCIPALS_TRACKED,
    } satisfies RateLimitPluginOptions
    await api.register(rateLimit, {
      ...common,
      hook: 'onRequest',
      max: limits.requests.max,
      timeWindow: limits.requests.windowMs,
      errorResponseBuilder: refusal('requests-per-second', limits.requests, 'requests'),
    })
    // a body sent slowly holds its buffers until it is whole: the bodies one principal, and everyone, may
    // have in flight at once are bounded, so slow senders cannot hold the service's memory
    const inFlight = new ConnectionSlots({
      what: 'commands in flight',
      ...limits.inFlight,
      retryAfterSeconds: 1,
    })
    api.addHook('onRequest', async (request, reply) => {
      if (!COMMAND_METHODS.has(request.method)) return
      const release = inFlight.take(keyOf(request))
      reply.raw.once('close', release)
    })
    await api.register(rateLimit, {
      ...common,
      hook: 'preHandler',
      max: limits.commands.max,
      timeWindow: limits.commands.windowMs,
      // reads spend only the request budget
      allowList: (request) => !COMMAND_METHODS.has(request.method),
      // an admitted command answers with the request budget's headers; a refused one with this budget's
      addHeadersOnExceeding: {
        'ratelimit-limit': false,
        'ratelimit-remaining': false,
        'ratelimit-reset': false,
      },
      errorResponseBuilder: refusal('commands-per-minute', limits.commands, 'commands'),
    })
  },
  { name: 'governance-rate-limits' },
)
