import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { DECISION_NAMESPACE } from '../../decision/service.js'
import { ActionName, parseDomainEvent, streams, ToolActionRegistered, ToolName } from '../../domain/events.js'
import type { EventStore } from '../../store/port.js'
import { lastOf } from '../../store/stream-pages.js'
import { authorize } from '../auth.js'
import { GovernedResult, governed } from '../commands.js'
import { notFound } from '../errors.js'
import { errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'

const ToolActionParams = z.object({ tool: ToolName, action: ActionName })
const RegistrationBody = ToolActionRegistered.shape.data.omit({ tool: true, action: true })

const ToolActionResponse = ToolActionRegistered.shape.data.extend({
  registeredAt: z.string(),
  registeredBy: z.string(),
  eventId: z.string(),
})
type ToolActionView = z.infer<typeof ToolActionResponse>

/** The world's `tool:<tool>.<action>` keys and the `tool-<tool>.<action>` streams share the suffix. */
const toolStream = (toolDotAction: string) => `tool-${toolDotAction}`

/** The latest registration recorded in a tool action's stream, or null. */
const registration = async (store: EventStore, stream: string): Promise<ToolActionView | null> => {
  const latest = await lastOf(store, stream)
  if (!latest) return null
  const event = parseDomainEvent(latest)
  if (event.type !== 'ToolActionRegistered') return null
  return {
    ...event.data,
    registeredAt: latest.recordedAt,
    registeredBy: latest.metadata.actor,
    eventId: latest.id,
  }
}

export const inventoryRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, docs } = app.runtime

  app.put(
    '/inventory/:tool/:action',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['inventory'],
        operationId: 'registerToolAction',
        summary:
          'Register a tool action with its impact class and whether it is reversible (a change is a new event)',
        headers: IdempotencyHeaders,
        params: ToolActionParams,
        body: RegistrationBody,
        response: { 200: GovernedResult, 202: GovernedResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { tool, action } = request.params
      const { impact, reversible, description } = request.body
      const change = { kind: 'register-tool-action' as const, tool, action, impact, reversible, description }
      const answer = await governed(request, change)
      return reply.code(answer.status === 'pending' ? 202 : 200).send(answer)
    },
  )

  app.get(
    '/inventory/:tool/:action',
    {
      schema: {
        tags: ['inventory'],
        operationId: 'getToolAction',
        summary: "A tool action's registration; an unregistered one is treated as critical",
        params: ToolActionParams,
        response: { 200: ToolActionResponse, ...readErrors(400, 401, 404, 429) },
      },
    },
    async (request) => {
      const { tool, action } = request.params
      const found = await registration(store, streams.tool(tool, action))
      if (!found) throw notFound(`tool action ${tool}.${action}`)
      return found
    },
  )

  app.get(
    '/inventory',
    {
      schema: {
        tags: ['inventory'],
        operationId: 'listToolActions',
        summary: 'Every registered tool action',
        response: { 200: z.object({ toolActions: z.array(ToolActionResponse) }), ...readErrors(401, 429) },
      },
    },
    async () => {
      // the decision service's world indexes the registered tool actions; their streams hold the details
      const known = docs.list(DECISION_NAMESPACE, 'tool:').map(([key]) => key.slice('tool:'.length))
      const toolActions: ToolActionView[] = []
      for (const toolDotAction of known) {
        const found = await registration(store, toolStream(toolDotAction))
        if (found) toolActions.push(found)
      }
      return { toolActions }
    },
  )
}
