import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { ProjectionView } from '../../../projections/as-of.js'
import { type AuthorityDoc, authorityKeys, trackDaysOf, trackRecord } from '../../../projections/authority.js'
import { viewsAt } from '../../application/as-of.js'
import { approvePromotion, requestPromotion } from '../../application/promotions.js'
import { eventData, ledgerTime, recordedId } from '../../application/queries.js'
import { agent } from '../../domain/deciders/index.js'
import {
  AgentRegistered,
  AuthorityLevel,
  Environment,
  Identifier,
  PromotionRequested,
  streams,
  TrackRecord,
} from '../../domain/events.js'
import { uuidv7 } from '../../domain/ids.js'
import type { Runtime } from '../../runtime.js'
import type { StoredEvent } from '../../store/port.js'
import { asOfQuery } from '../as-of.js'
import { authorize, hasRole, principalOf } from '../auth.js'
import { actorOf, answerOf, optionsOf } from '../commands.js'
import { forbidden, notFound } from '../errors.js'
import { CommandResult, errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'

const DAY_MS = 86_400_000
/** the window a promotion request's track record covers */
const PROMOTION_WINDOW_DAYS = 30

const AgentParams = z.object({ agentId: Identifier })
const RequestParams = AgentParams.extend({ requestId: Identifier })

const RegisterBody = AgentRegistered.shape.data
const PromotionBody = PromotionRequested.shape.data
  .pick({ environment: true, to: true })
  .extend({ requestId: Identifier.optional().describe('chosen by the caller; generated when absent') })
  .strict()
const ApprovalBody = z.object({}).strict().nullish().describe('empty: the approver is the token subject')
const RefusalBody = z.object({ reason: z.string().min(1).max(2000) }).strict()
const TrackQuery = z.object({
  environment: Environment,
  days: z.coerce.number().int().min(1).max(366).default(PROMOTION_WINDOW_DAYS),
  ...asOfQuery,
})
const AsOf = z.number().int().describe('the ledger position the authority view reflects')

const LevelHeld = z.discriminatedUnion('cause', [
  z.object({
    level: AuthorityLevel,
    since: z.string(),
    cause: z.literal('promotion'),
    requestId: z.string(),
    approvedBy: z.string(),
    eventId: z.string(),
  }),
  z.object({
    level: AuthorityLevel,
    since: z.string(),
    cause: z.literal('demotion'),
    reason: z.string(),
    demotionCause: z.enum(['violation', 'unrecovered-failure']),
    proposalId: z.string(),
    eventId: z.string(),
  }),
])

const AgentResponse = z.object({
  agentId: z.string(),
  owner: z.string().nullable(),
  levels: z.record(z.string(), LevelHeld).describe('per environment; an environment not listed is observe'),
  pendingPromotions: z.array(
    z.object({
      requestId: z.string(),
      environment: z.string(),
      from: AuthorityLevel,
      to: AuthorityLevel,
      requestedAt: z.string(),
      eventId: z.string(),
    }),
  ),
  refusedPromotions: z.number().int(),
  asOf: AsOf,
})

const AgentListQuery = z
  .object({
    after: Identifier.optional().describe('the last agentId of the previous page'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    ...asOfQuery,
  })
  .strict()

const AgentListResponse = z.object({
  agents: z
    .array(AgentResponse.omit({ asOf: true }))
    .describe('in agentId order: each with its level per environment'),
  next: z.string().nullable().describe('pass as ?after= for the next page; null on the last'),
  asOf: AsOf,
})

/** The ladder events of an agent's own stream, as recorded: what moved it, or asked to, and who. */
const LADDER_EVENTS = [
  'AgentRegistered',
  'PromotionRequested',
  'PromotionApproved',
  'PromotionRefused',
  'AgentPromoted',
  'AgentDemoted',
] as const

const LadderEvent = z.object({
  position: z.number().int(),
  eventId: z.string(),
  type: z.enum(LADDER_EVENTS),
  recordedAt: z.string(),
  actor: z.string(),
  environment: z.string().nullable().describe('null for AgentRegistered'),
  requestId: z.string().nullable(),
  from: AuthorityLevel.nullable(),
  to: AuthorityLevel.nullable(),
  reason: z.string().nullable().describe('why a promotion was refused or the agent demoted'),
  demotionCause: z.enum(['violation', 'unrecovered-failure']).nullable(),
  proposalId: z.string().nullable().describe('the proposal that caused a demotion'),
})

const HistoryResponse = z.object({
  agentId: z.string(),
  events: z.array(LadderEvent).describe('in ledger order, the whole history of the agent stream'),
})

/** One ladder event in the shape of the history: every field the event type does not carry is null. */
const ladderEventOf = (stored: StoredEvent): z.infer<typeof LadderEvent> | null => {
  const type = LADDER_EVENTS.find((t) => t === stored.type)
  if (type === undefined) return null
  const data = stored.data as Partial<
    Record<'environment' | 'requestId' | 'from' | 'to' | 'reason' | 'cause' | 'proposalId', string>
  >
  const level = (value: string | undefined) => {
    const parsed = AuthorityLevel.safeParse(value)
    return parsed.success ? parsed.data : null
  }
  return {
    position: stored.position,
    eventId: stored.id,
    type,
    recordedAt: stored.recordedAt,
    actor: stored.metadata.actor,
    environment: data.environment ?? null,
    requestId: data.requestId ?? null,
    from: level(data.from),
    to: level(data.to),
    reason: data.reason ?? null,
    demotionCause: data.cause === 'violation' || data.cause === 'unrecovered-failure' ? data.cause : null,
    proposalId: data.proposalId ?? null,
  }
}

const Outcome = CommandResult.extend({
  requestId: z.string(),
  outcome: z
    .enum(['requested', 'approved', 'promoted', 'refused'])
    .describe('approved: one policy admin stands behind it, and a second, distinct one must approve it too'),
  reason: z.string().optional(),
})

/** The agent's document in the authority projection, or a 404. */
const agentDoc = (authority: ProjectionView<AuthorityDoc>, agentId: string) => {
  const doc = authority.get(authorityKeys.agent(agentId))
  if (doc?.kind !== 'agent') throw notFound(`agent ${agentId}`)
  return doc
}

/**
 * The track record the ledger computes, over the days up to ledger time (the latest event recorded), or up to the
 * moment of an as-of read.
 */
const trackRecordOf = async (
  runtime: Runtime,
  agentId: string,
  environment: string,
  days: number,
  past?: { readonly authority: ProjectionView<AuthorityDoc>; readonly time: string | null },
) => {
  const windowEnd = past?.time ?? (await ledgerTime(runtime.store)) ?? new Date().toISOString()
  const windowStart = new Date(Date.parse(windowEnd) - days * DAY_MS).toISOString()
  const prefix = authorityKeys.trackPrefix(agentId, environment)
  const dayBefore = new Date(Date.parse(windowStart) - DAY_MS).toISOString().slice(0, 10)
  const listed = (past?.authority ?? runtime.views.authority).list(prefix, { after: `${prefix}${dayBefore}` })
  const docs = trackDaysOf(
    listed.map(([, doc]) => doc),
    agentId,
    environment,
  )
  return trackRecord(docs, windowStart, windowEnd)
}

/** What the agent decider recorded: a promotion, a pending request, or a refusal with its reason. */
const outcomeOf = async (runtime: Runtime, agentId: string, result: CommandResult) => {
  const refused = result.events.find((e) => e.type === 'PromotionRefused')
  if (refused) {
    const data = (await eventData(runtime.store, streams.agent(agentId), refused.id)) as { reason?: string }
    return { outcome: 'refused' as const, ...(data?.reason === undefined ? {} : { reason: data.reason }) }
  }
  if (result.events.some((e) => e.type === 'AgentPromoted')) return { outcome: 'promoted' as const }
  if (result.events.some((e) => e.type === 'PromotionApproved')) return { outcome: 'approved' as const }
  return { outcome: 'requested' as const }
}

/** Need to know: an agent's authority and track record are read by itself, a policy-admin, an auditor. */
const requireAgentReader = (request: FastifyRequest, agentId: string) => {
  const principal = principalOf(request)
  if (hasRole(principal, 'policy-admin', 'auditor')) return
  if (principal.sub === agentId && hasRole(principal, 'agent')) return
  throw forbidden(
    "an agent reads only its own authority and track record; any agent's are read by policy-admin, auditor",
  )
}

export const agentRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { runtime } = app

  app.post(
    '/agents',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['agents'],
        operationId: 'registerAgent',
        summary: 'Register an agent; it starts at observe in every environment',
        headers: IdempotencyHeaders,
        body: RegisterBody,
        response: { 201: CommandResult.extend({ agentId: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { agentId, owner, description } = request.body
      const result = await app.commands.run(request, agent, streams.agent(agentId), {
        type: 'RegisterAgent',
        actor: actorOf(request),
        agentId,
        owner,
        description,
      })
      return reply.code(201).send({ ...result, agentId })
    },
  )

  app.get(
    '/agents',
    {
      config: { readModel: true },
      preValidation: authorize('policy-admin', 'auditor'),
      schema: {
        tags: ['agents'],
        operationId: 'listAgents',
        summary: 'The registered agents, each with its level per environment and its pending promotions',
        querystring: AgentListQuery,
        response: { 200: AgentListResponse, ...readErrors(400, 401, 403, 429, 503) },
      },
    },
    async (request) => {
      const { after, limit } = request.query
      const { views } = await viewsAt(runtime.store, runtime.views, request.query.asOf)
      const prefix = authorityKeys.agent('')
      const listed = views.authority.list(
        prefix,
        after === undefined ? { limit: limit + 1 } : { after: authorityKeys.agent(after), limit: limit + 1 },
      )
      const agents = listed.slice(0, limit).flatMap(([, doc]) => {
        if (doc.kind !== 'agent') return []
        const { kind: _kind, ...agent } = doc
        return [{ ...agent, pendingPromotions: [...agent.pendingPromotions] }]
      })
      const next = listed.length > limit ? (agents.at(-1)?.agentId ?? null) : null
      return { agents, next, asOf: views.authority.checkpoint() }
    },
  )

  app.get(
    '/agents/:agentId/history',
    {
      config: { readModel: true },
      preValidation: authorize('agent', 'policy-admin', 'auditor'),
      schema: {
        tags: ['agents'],
        operationId: 'getAgentHistory',
        summary:
          "An agent's ladder over time: registration, promotions requested, approved, refused and granted, demotions",
        params: AgentParams,
        response: { 200: HistoryResponse, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { agentId } = request.params
      requireAgentReader(request, agentId)
      const stored = await runtime.store.readStream(streams.agent(agentId))
      if (stored.length === 0) throw notFound(`agent ${agentId}`)
      return { agentId, events: stored.flatMap((e) => ladderEventOf(e) ?? []) }
    },
  )

  app.get(
    '/agents/:agentId',
    {
      config: { readModel: true },
      preValidation: authorize('agent', 'policy-admin', 'auditor'),
      schema: {
        tags: ['agents'],
        operationId: 'getAgent',
        summary: "An agent's authority: its level per environment and its pending promotions",
        params: AgentParams,
        querystring: z.object(asOfQuery).strict(),
        response: { 200: AgentResponse, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      requireAgentReader(request, request.params.agentId)
      const { views } = await viewsAt(runtime.store, runtime.views, request.query.asOf)
      const { kind: _kind, ...doc } = agentDoc(views.authority, request.params.agentId)
      return { ...doc, pendingPromotions: [...doc.pendingPromotions], asOf: views.authority.checkpoint() }
    },
  )

  app.get(
    '/agents/:agentId/track-record',
    {
      config: { readModel: true },
      preValidation: authorize('agent', 'policy-admin', 'auditor'),
      schema: {
        tags: ['agents'],
        operationId: 'getTrackRecord',
        summary: "An agent's track record in an environment over the last days of ledger time",
        params: AgentParams,
        querystring: TrackQuery,
        response: {
          200: TrackRecord.extend({
            agentId: z.string(),
            environment: z.string(),
            days: z.number().int(),
            asOf: AsOf,
          }),
          ...readErrors(400, 401, 403, 404, 429, 503),
        },
      },
    },
    async (request) => {
      const { agentId } = request.params
      const { environment, days } = request.query
      requireAgentReader(request, agentId)
      const { views, moment } = await viewsAt(runtime.store, runtime.views, request.query.asOf)
      agentDoc(views.authority, agentId)
      const past = moment && { authority: views.authority, time: moment.time }
      const record = await trackRecordOf(runtime, agentId, environment, days, past ?? undefined)
      return { agentId, environment, days, ...record, asOf: views.authority.checkpoint() }
    },
  )

  app.post(
    '/agents/:agentId/promotions',
    {
      // the track record it carries is computed from the authority view: a read model
      config: { readModel: true },
      preValidation: authorize('agent', 'policy-admin'),
      schema: {
        tags: ['agents'],
        operationId: 'requestPromotion',
        summary:
          'Request a promotion one rung up, carrying the track record the ledger computes (a skipped rung is refused and recorded)',
        headers: IdempotencyHeaders,
        params: AgentParams,
        body: PromotionBody,
        response: { 201: Outcome, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { agentId } = request.params
      const { requestId = uuidv7(), environment, to } = request.body
      const appended = await requestPromotion(
        runtime.store,
        actorOf(request),
        agentId,
        { requestId, environment, to },
        (days) => trackRecordOf(runtime, agentId, environment, days),
        optionsOf(request),
      )
      const result = answerOf(request, appended)
      const recorded = await recordedId(runtime.store, result, 'requestId', requestId)
      const outcome = await outcomeOf(runtime, agentId, result)
      return reply.code(201).send({ ...result, requestId: recorded, ...outcome })
    },
  )

  app.post(
    '/agents/:agentId/promotions/:requestId/approval',
    {
      // the track record it carries is computed from the authority view: a read model
      config: { readModel: true },
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['agents'],
        operationId: 'approvePromotion',
        summary: 'Approve a pending promotion (never by the agent itself)',
        headers: IdempotencyHeaders,
        params: RequestParams,
        body: ApprovalBody,
        response: { 201: Outcome, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { agentId, requestId } = request.params
      const appended = await approvePromotion(
        runtime.store,
        actorOf(request),
        agentId,
        requestId,
        (environment, days) => trackRecordOf(runtime, agentId, environment, days),
        optionsOf(request),
      )
      const result = answerOf(request, appended)
      const outcome = await outcomeOf(runtime, agentId, result)
      return reply.code(201).send({ ...result, requestId, ...outcome })
    },
  )

  app.post(
    '/agents/:agentId/promotions/:requestId/refusal',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['agents'],
        operationId: 'refusePromotion',
        summary: 'Refuse a pending promotion, with the reason',
        headers: IdempotencyHeaders,
        params: RequestParams,
        body: RefusalBody,
        response: { 201: Outcome, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { agentId, requestId } = request.params
      const result = await app.commands.run(request, agent, streams.agent(agentId), {
        type: 'RefusePromotion',
        actor: actorOf(request),
        requestId,
        reason: request.body.reason,
      })
      return reply.code(201).send({ ...result, requestId, ...(await outcomeOf(runtime, agentId, result)) })
    },
  )
}
