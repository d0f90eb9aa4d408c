import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { PolicyDraft, PolicyPublished, parseDomainEvent, streams } from '../../domain/events.js'
import type { EventStore } from '../../store/port.js'
import { authorize } from '../auth.js'
import { GovernedResult, governed } from '../commands.js'
import { notFound } from '../errors.js'
import { errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'

const PolicyBody = PolicyDraft
const VersionParams = z.object({ version: z.coerce.number().int().positive() })

const PolicyResponse = PolicyPublished.shape.data.extend({
  publishedAt: z.string(),
  eventId: z.string(),
})
type PolicyView = z.infer<typeof PolicyResponse>

/** Every published version, oldest first, with when and by whom it was published. */
const publishedPolicies = async (store: EventStore): Promise<PolicyView[]> =>
  (await store.readStream(streams.policy())).flatMap((stored) => {
    const event = parseDomainEvent(stored)
    return event.type === 'PolicyPublished'
      ? [
          {
            ...event.data,
            publishedAt: stored.recordedAt,
            eventId: stored.id,
          },
        ]
      : []
  })

export const policyRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store } = app.runtime

  app.post(
    '/policies',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['policies'],
        operationId: 'publishPolicy',
        summary:
          'Publish the next policy version (a second policy admin approves it; only the first policy of an empty ledger takes one)',
        headers: IdempotencyHeaders,
        body: PolicyBody,
        response: {
          201: GovernedResult.extend({ version: z.number().int() }),
          202: GovernedResult.extend({ version: z.number().int() }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { version } = request.body
      const answer = await governed(request, { kind: 'publish-policy', policyVersion: version }, request.body)
      return reply.code(answer.status === 'pending' ? 202 : 201).send({ ...answer, version })
    },
  )

  app.get(
    '/policies',
    {
      schema: {
        tags: ['policies'],
        operationId: 'listPolicies',
        summary: 'Every published policy version, oldest first',
        response: { 200: z.object({ policies: z.array(PolicyResponse) }), ...readErrors(401, 429) },
      },
    },
    async () => ({ policies: await publishedPolicies(store) }),
  )

  app.get(
    '/policies/current',
    {
      schema: {
        tags: ['policies'],
        operationId: 'getCurrentPolicy',
        summary: 'The policy in force: the latest published version',
        response: { 200: PolicyResponse, ...readErrors(401, 404, 429) },
      },
    },
    async () => {
      const current = (await publishedPolicies(store)).at(-1)
      if (!current) throw notFound('a published policy')
      return current
    },
  )

  app.get(
    '/policies/:version',
    {
      schema: {
        tags: ['policies'],
        operationId: 'getPolicy',
        summary: 'One published policy version',
        params: VersionParams,
        response: { 200: PolicyResponse, ...readErrors(400, 401, 404, 429) },
      },
    },
    async (request) => {
      const { version } = request.params
      const found = (await publishedPolicies(store)).find((p) => p.version === version)
      if (!found) throw notFound(`policy version ${version}`)
      return found
    },
  )
}
