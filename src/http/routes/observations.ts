import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ledgerNow } from '../../application/context.js'
import { resource } from '../../domain/deciders/index.js'
import { Environment, parseDomainEvent, StateObserved, streams } from '../../domain/events.js'
import { lastOf } from '../../store/stream-pages.js'
import { authorize } from '../auth.js'
import { actorOf } from '../commands.js'
import { notFound } from '../errors.js'
import { CommandResult, errorResponses, IdempotencyHeaders, ResourceSegment, readErrors } from '../schemas.js'

const ObservationBody = StateObserved.shape.data
const ObservationParams = z.object({
  environment: Environment,
  resource: ResourceSegment,
})

const ObservationResponse = StateObserved.shape.data.extend({
  /** the ledger event that recorded it */
  eventId: z.string(),
  position: z.number().int(),
  recordedAt: z.string(),
  observedBy: z.string(),
})

export const observationRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store } = app.runtime

  app.post(
    '/observations',
    {
      preValidation: authorize('observer'),
      schema: {
        tags: ['observations'],
        operationId: 'recordObservation',
        summary:
          'Record an observation of live state (observers only): resource, version, digest, observed at (no later than ledger time plus the allowed skew)',
        headers: IdempotencyHeaders,
        body: ObservationBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body
      const result = await app.commands.run(
        request,
        resource,
        streams.resource(body.environment, body.resource),
        {
          type: 'ObserveState',
          actor: actorOf(request),
          ...body,
          context: { now: ledgerNow(), maxSkewSeconds: app.runtime.config.OBSERVATION_MAX_SKEW_SECONDS },
        },
      )
      return reply.code(201).send(result)
    },
  )

  app.get(
    '/observations/:environment/:resource',
    {
      schema: {
        tags: ['observations'],
        operationId: 'getLatestObservation',
        summary: 'The latest observation of a resource in an environment',
        params: ObservationParams,
        response: { 200: ObservationResponse, ...readErrors(400, 401, 404, 429) },
      },
    },
    async (request) => {
      const { environment, resource: name } = request.params
      const latest = await lastOf(store, streams.resource(environment, name))
      const observed = latest ? parseDomainEvent(latest) : null
      if (!latest || observed?.type !== 'StateObserved') {
        throw notFound(`observation of ${name} in ${environment}`)
      }
      return {
        ...observed.data,
        eventId: latest.id,
        position: latest.position,
        recordedAt: latest.recordedAt,
        observedBy: latest.metadata.actor,
      }
    },
  )
}
