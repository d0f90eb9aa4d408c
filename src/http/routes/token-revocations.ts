import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { token } from '../../domain/deciders/index.js'
import { streams, TokenRevoked } from '../../domain/events.js'
import { authorize } from '../auth.js'
import { actorOf } from '../commands.js'
import { CommandResult, errorResponses, IdempotencyHeaders } from '../schemas.js'

export const tokenRevocationRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()

  app.post(
    '/token-revocations',
    {
      preValidation: authorize('policy-admin'),
      config: { emergencyBrake: true },
      schema: {
        tags: ['tokens'],
        operationId: 'revokeToken',
        summary:
          'Revoke a bearer token by its jti: every request with it is refused (401) from then on; 200 when it was already revoked',
        headers: IdempotencyHeaders,
        body: TokenRevoked.shape.data,
        response: { 200: CommandResult, 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { jti, reason } = request.body
      const result = await app.commands.run(request, token, streams.tokenRevocations(), {
        type: 'Revoke',
        actor: actorOf(request),
        jti,
        reason,
      })
      return reply.code(result.events.length > 0 || result.duplicate ? 201 : 200).send(result)
    },
  )
}
