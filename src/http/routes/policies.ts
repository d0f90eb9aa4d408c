import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { policy } from '../../domain/deciders/index.js'
import { PolicyPublished, parseDomainEvent, streams } from '../../domain/events.js'
import type { EventStore } from '../../store/port.js'
import { authorize } from '../auth.js'
import { notFound } from '../errors.js'
import { CommandResult, errorResponses, IdempotencyHeaders } from '../schemas.js'

const PolicyBody = PolicyPublished.shape.data
const VersionParams = z.object({ version: z.coerce.number().int().positive() })

const PolicyResponse = PolicyPublished.shape.data.extend({
  publishedAt: z.string(),
  publishedBy: z.string(),
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
            publishedBy: stored.metadata.actor,
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
        summary: 'Publish the next policy version: which checks each impact class needs, and every threshold',
        headers: IdempotencyHeaders,
        body: PolicyBody,
        response: { 201: CommandResult.extend({ version: z.number().int() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await app.commands.run(request, policy, streams.policy(), {
        type: 'PublishPolicy',
        policy: request.body,
      })
      return reply.code(201).send({ ...result, version: request.body.version })
    },
  )

  app.get(
    '/policies',
    {
      schema: {
        tags: ['policies'],
        summary: 'Every published policy version, oldest first',
        response: { 200: z.object({ policies: z.array(PolicyResponse) }), ...errorResponses },
      },
    },
    async () => ({ policies: await publishedPolicies(store) }),
  )

  app.get(
    '/policies/current',
    {
      schema: {
        tags: ['policies'],
        summary: 'The policy in force: the latest published version',
        response: { 200: PolicyResponse, ...errorResponses },
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
        summary: 'One published policy version',
        params: VersionParams,
        response: { 200: PolicyResponse, ...errorResponses },
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
