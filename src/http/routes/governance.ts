import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { approveChange, changeRequest, refuseChange } from '../../application/govern.js'
import { loadState } from '../../application/handle.js'
import { binding } from '../../domain/deciders/index.js'
import { BindingRole, GovernanceChange, Identifier, streams } from '../../domain/events.js'
import { authorize } from '../auth.js'
import { actorOf, answerOf, GovernedResult, governed, optionsOf } from '../commands.js'
import { notFound } from '../errors.js'
import { CommandResult, errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'

const Reason = z.string().min(1).max(2000)
const BindingBody = z.object({ principal: Identifier, role: BindingRole, identity: Identifier }).strict()
const UnbindingBody = BindingBody.extend({ reason: Reason }).strict()
const IdentityParams = z.object({ identity: Identifier })
const ChangeParams = z.object({ requestId: Identifier })

const ChangeResponse = z.object({
  requestId: z.string(),
  status: z.enum(['pending', 'approved', 'refused']),
  change: GovernanceChange,
  policy: z.record(z.string(), z.unknown()).nullable(),
  requestedBy: z.string(),
  requestedAt: z.string().nullable(),
  approvedBy: z.string().nullable(),
  refused: z.object({ refusedBy: z.string(), reason: z.string() }).nullable(),
})

/** Identity bindings, and the change requests that wait for a second policy admin. */
export const governanceRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store } = app.runtime

  app.post(
    '/bindings',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['governance'],
        operationId: 'createBinding',
        summary:
          'Request a binding: an agent may act through the identity, or an executor may run as it (a second policy admin approves it)',
        headers: IdempotencyHeaders,
        body: BindingBody,
        response: { 201: GovernedResult, 202: GovernedResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const answer = await governed(request, { kind: 'bind-identity', ...request.body })
      return reply.code(answer.status === 'pending' ? 202 : 201).send(answer)
    },
  )

  app.post(
    '/bindings/removal',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['governance'],
        operationId: 'removeBinding',
        summary: 'Remove a binding, with the reason (narrows authority: one policy admin)',
        headers: IdempotencyHeaders,
        body: UnbindingBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await app.commands.run(request, binding, streams.identity(request.body.identity), {
        type: 'Unbind',
        actor: actorOf(request),
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )

  app.get(
    '/bindings/:identity',
    {
      preValidation: authorize('policy-admin', 'auditor'),
      schema: {
        tags: ['governance'],
        operationId: 'getBindings',
        summary:
          'The agents bound to act through an identity and the executors bound to run as it (404: never bound)',
        params: IdentityParams,
        response: {
          200: z.object({
            identity: z.string(),
            agents: z.array(z.string()),
            executors: z.array(z.string()),
          }),
          ...readErrors(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const { identity } = request.params
      const { state, version } = await loadState(store, binding, streams.identity(identity))
      if (version === 0) throw notFound(`bindings of identity ${identity}`)
      return { identity, agents: [...state.agent], executors: [...state.executor] }
    },
  )

  app.get(
    '/changes/:requestId',
    {
      preValidation: authorize('policy-admin', 'auditor'),
      schema: {
        tags: ['governance'],
        operationId: 'getChangeRequest',
        summary: 'A change request: what it changes, why it needs a second admin, and where it stands',
        params: ChangeParams,
        response: { 200: ChangeResponse, ...readErrors(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const found = await changeRequest(store, request.params.requestId)
      if (found === null) throw notFound(`change request ${request.params.requestId}`)
      const { requestId, status, change, policy, requestedBy, requestedAt, approvedBy, refused } = found
      return { requestId, status, change, policy, requestedBy, requestedAt, approvedBy, refused }
    },
  )

  app.post(
    '/changes/:requestId/approval',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['governance'],
        operationId: 'approveChange',
        summary:
          'Approve a pending change as a second, distinct policy admin: it takes effect in the same commit',
        headers: IdempotencyHeaders,
        params: ChangeParams,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await approveChange(
        store,
        actorOf(request),
        request.params.requestId,
        optionsOf(request),
      )
      return reply.code(201).send(answerOf(request, result))
    },
  )

  app.post(
    '/changes/:requestId/refusal',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['governance'],
        operationId: 'refuseChange',
        summary: 'Refuse a pending change, with the reason (its requester may withdraw it this way)',
        headers: IdempotencyHeaders,
        params: ChangeParams,
        body: z.object({ reason: Reason }).strict(),
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { requestId } = request.params
      const result = await refuseChange(
        store,
        actorOf(request),
        requestId,
        request.body.reason,
        optionsOf(request),
      )
      return reply.code(201).send(answerOf(request, result))
    },
  )
}
