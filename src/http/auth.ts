import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Principal, Role, TokenVerifier } from '../auth/tokens.js'
import { ApiError, bearerChallenge } from './errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null
  }
  interface FastifyContextConfig {
    /** reachable without a token (health, readiness, JWKS, the API docs) */
    public?: boolean
  }
}

/** Every route needs a bearer token unless it says it is public: authentication is on by default. */
export const authPlugin = fp(async (app: FastifyInstance, { verifier }: { verifier: TokenVerifier }) => {
  app.decorateRequest('principal', null)
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.public) return
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+([^\s]+)$/i.exec(header) : null
    if (!match?.[1]) throw new ApiError('unauthenticated', 'a bearer token is required')
    request.principal = await verifier.verify(match[1])
  })
})

/** The authenticated principal of a request that passed authentication. */
export const principalOf = (request: FastifyRequest): Principal => {
  if (!request.principal) throw new ApiError('unauthenticated', 'a bearer token is required')
  return request.principal
}

/** A preHandler that lets through only principals holding one of the roles. */
export const authorize =
  (...roles: Role[]): preHandlerHookHandler =>
  (request, _reply, done) => {
    const principal = principalOf(request)
    if (!principal.roles.some((r) => roles.includes(r))) {
      const message = `this needs one of the roles: ${roles.join(', ')}`
      // a valid token that does not reach this far: RFC 6750's insufficient_scope, roles standing for scopes
      const challenge = bearerChallenge({ error: 'insufficient_scope', description: message })
      const headers = { 'www-authenticate': challenge }
      done(new ApiError('forbidden', message, { required: roles, held: principal.roles }, headers))
      return
    }
    done()
  }

export const hasRole = (principal: Principal, ...roles: Role[]): boolean =>
  principal.roles.some((r) => roles.includes(r))
