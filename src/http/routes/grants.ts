import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { recordedId } from '../../application/queries.js'
import { keys } from '../../decision/world.js'
import { grant } from '../../domain/deciders/index.js'
import { Identifier, ScopeGranted, ScopeRevoked, streams } from '../../domain/events.js'
import { uuidv7 } from '../../domain/ids.js'
import { authorize } from '../auth.js'
import { actorOf, GovernedResult, governed } from '../commands.js'
import { CommandResult, errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'

const GrantParams = z.object({ grantId: Identifier })

const GrantBody = ScopeGranted.shape.data.omit({ grantId: true, via: true }).extend({
  grantId: Identifier.optional().describe('chosen by the caller; generated when absent'),
  via: ScopeGranted.shape.data.shape.via.default('direct'),
})
const RevocationBody = ScopeRevoked.shape.data.omit({ grantId: true })
const GrantsQuery = z.object({ identity: Identifier.describe('the executing identity whose grants to list') })

const GrantsResponse = z.object({
  identity: z.string(),
  grants: z.array(ScopeGranted.shape.data),
  /** the ledger position the decision service's world reflects */
  asOf: z.number().int(),
})

export const grantRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, decision } = app.runtime

  app.post(
    '/grants',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['grants'],
        operationId: 'createGrant',
        summary: 'Grant an identity a scope: tool, action, resource pattern and environment',
        headers: IdempotencyHeaders,
        body: GrantBody,
        response: {
          201: GovernedResult.extend({ grantId: z.string() }),
          202: GovernedResult.extend({ grantId: z.string() }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { grantId = uuidv7(), ...body } = request.body
      const answer = await governed(request, { kind: 'grant-scope', grantId, ...body })
      const recorded = await recordedId(
        store,
        answer,
        answer.status === 'pending' ? 'change.grantId' : 'grantId',
        grantId,
      )
      return reply.code(answer.status === 'pending' ? 202 : 201).send({ ...answer, grantId: recorded })
    },
  )

  app.post(
    '/grants/:grantId/revocation',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['grants'],
        operationId: 'revokeGrant',
        summary: 'Revoke a grant, with the reason',
        headers: IdempotencyHeaders,
        params: GrantParams,
        body: RevocationBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await app.commands.run(request, grant, streams.grant(request.params.grantId), {
        type: 'RevokeScope',
        actor: actorOf(request),
        reason: request.body.reason,
      })
      return reply.code(201).send(result)
    },
  )

  app.get(
    '/grants',
    {
      preValidation: authorize('policy-admin', 'auditor'),
      schema: {
        tags: ['grants'],
        operationId: 'listGrants',
        summary: "An identity's active grants, as the decision service sees them",
        querystring: GrantsQuery,
        response: { 200: GrantsResponse, ...readErrors(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { identity } = request.query
      const position = decision.position
      const active = decision.world().get('grants', keys.grants(identity))?.active ?? {}
      const grants = Object.values(active).sort((a, b) => a.grantId.localeCompare(b.grantId))
      return { identity, grants, asOf: position }
    },
  )
}
