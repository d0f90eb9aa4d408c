import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { ProjectionView } from '../../../projections/as-of.js'
import {
  type ActionDoc,
  type AuditDoc,
  actionOf,
  auditedAction,
  auditKeys,
  indexedProposals,
} from '../../../projections/audit.js'
import type { AuthorityDoc } from '../../../projections/authority.js'
import { authorityKeys } from '../../../projections/authority.js'
import { viewsAt } from '../../application/as-of.js'
import { actionSummaries, currentVerdict, withPlan } from '../../application/queries.js'
import {
  AuthorityLevel,
  CheckResult,
  Environment,
  Identifier,
  ImpactClass,
  KillSwitchScope,
} from '../../domain/events.js'
import { asOfQuery } from '../as-of.js'
import { authorize } from '../auth.js'
import { ApiError, notFound } from '../errors.js'
import { ResourceSegment, readErrors } from '../schemas.js'

const TimelineEntry = z.object({
  position: z.number().int(),
  eventId: z.string(),
  type: z.string(),
  recordedAt: z.string(),
  actor: z.string(),
  hash: z.string(),
})

const ActionAudit = z.object({
  proposalId: z.string(),
  submittedAt: z.string(),
  what: z.object({
    tool: z.string(),
    action: z.string(),
    resource: z.string(),
    environment: z.string(),
    plan: z.record(z.string(), z.unknown()),
    planHash: z.string(),
    actionDigest: z.string(),
    resourceVersionBefore: z.string(),
    resourceVersionAfter: z.string().nullable(),
  }),
  who: z.object({
    agentId: z.string(),
    executingIdentity: z.string(),
    executor: z.string().nullable(),
    approvers: z.array(
      z.object({ approver: z.string(), role: z.string(), actionDigest: z.string(), eventId: z.string() }),
    ),
    policyVersion: z.number().int().nullable(),
    policyOwner: z.string().nullable(),
    killSwitchActors: z.array(
      z.object({
        actor: z.string(),
        scope: KillSwitchScope,
        target: z.string().nullable(),
        action: z.enum(['engaged', 'released']),
        eventId: z.string(),
      }),
    ),
  }),
  howFast: z.object({
    rollbackExpectedSeconds: z.number().nullable(),
    failedAt: z.string().nullable(),
    recoveredAt: z.string().nullable(),
    timeToRecoverySeconds: z.number().nullable(),
  }),
  verdicts: z.array(
    z.object({
      verdictId: z.string(),
      revision: z.number().int(),
      decision: z.enum(['allow', 'block']),
      eventId: z.string(),
    }),
  ),
  outcome: z
    .string()
    .describe('where the action stands: submitted, allowed, blocked, executing, recovered, ...'),
  violation: z.boolean(),
  currentVerdict: z
    .object({
      verdictId: z.string(),
      revision: z.number().int(),
      decision: z.enum(['allow', 'block']),
      impact: ImpactClass,
      policyVersion: z.number().int().nullable(),
      decidedAt: z.string(),
      expiresAt: z.string(),
      revoked: z.boolean(),
      expired: z.boolean(),
      checks: z.array(CheckResult),
    })
    .nullable()
    .describe('the latest verdict, every check with its reason'),
  timeline: z.array(TimelineEntry).describe('every event of the action in ledger order, with its hash'),
  asOf: z.number().int().describe('the ledger position the audit view reflects'),
})

const ActionSummary = z.object({
  proposalId: z.string(),
  submittedAt: z.string(),
  agentId: z.string(),
  tool: z.string(),
  action: z.string(),
  resource: z.string(),
  environment: z.string(),
  outcome: z.string(),
  latestDecision: z.enum(['allow', 'block']).nullable(),
  violation: z.boolean(),
  timeToRecoverySeconds: z.number().nullable(),
  summary: z.string(),
})

const Page = z
  .object({
    after: Identifier.optional().describe('the last proposalId of the previous page'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    ...asOfQuery,
  })
  .strict()

const Paged = {
  proposals: z.array(ActionSummary).describe('in the order submitted'),
  total: z.number().int(),
  next: z.string().nullable().describe('pass as ?after= for the next page; null on the last'),
  asOf: z.number().int(),
}

const LevelHeld = z.object({
  level: AuthorityLevel,
  since: z.string(),
  cause: z.enum(['promotion', 'demotion']),
  eventId: z.string(),
  requestId: z.string().optional(),
  approvedBy: z.string().optional(),
  reason: z.string().optional(),
  demotionCause: z.enum(['violation', 'unrecovered-failure']).optional(),
  proposalId: z.string().optional(),
})

const AgentAudit = z.object({
  agentId: z.string(),
  owner: z.string().nullable(),
  levels: z.record(z.string(), LevelHeld).describe('an environment not listed is at observe'),
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
  ...Paged,
})

const ResourceAudit = z.object({
  environment: z.string(),
  resource: z.string(),
  lastObservation: z
    .object({ version: z.string(), digest: z.string(), observedAt: z.string(), eventId: z.string() })
    .nullable(),
  ...Paged,
})

export const auditRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { runtime } = app
  const { store } = runtime
  const readers = authorize('auditor', 'policy-admin')

  /**
   * One page of an index's proposals, each in one line: the entries under `entries` after the one of the
   * proposal `after` (which must be in this index), read one more than the page to tell whether more follow.
   */
  const page = (
    audit: ProjectionView<AuditDoc>,
    entries: string,
    total: number,
    inIndex: (action: ActionDoc) => boolean,
    after: string | undefined,
    limit: number,
  ) => {
    let from: string | undefined
    if (after !== undefined) {
      const action = actionOf(audit, after)
      const submittedAt = action && inIndex(action) ? action.submittedPosition : undefined
      if (submittedAt === undefined) {
        throw new ApiError(
          'invalid',
          `invalid querystring: querystring.after ${after} is not in this index`,
          {
            fields: [{ field: 'querystring.after', message: 'not a proposal of this index' }],
          },
        )
      }
      from = auditKeys.entry(entries, submittedAt)
    }
    const found = audit.list(
      entries,
      from === undefined ? { limit: limit + 1 } : { after: from, limit: limit + 1 },
    )
    const ids = indexedProposals(found.slice(0, limit))
    const proposals = actionSummaries(audit, ids)
    return { proposals, total, next: found.length > limit ? (ids.at(-1) ?? null) : null }
  }

  app.get(
    '/audit/actions/:proposalId',
    {
      config: { readModel: true },
      preValidation: readers,
      schema: {
        tags: ['audit'],
        operationId: 'auditAction',
        summary: 'What changed, who changed it, how fast it can be undone: one action, with its timeline',
        params: z.object({ proposalId: Identifier }),
        querystring: z.object(asOfQuery).strict(),
        response: { 200: ActionAudit, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { proposalId } = request.params
      const { views } = await viewsAt(store, runtime.views, request.query.asOf)
      const asOf = views.audit.checkpoint()
      const audited = auditedAction(views.audit, proposalId)
      if (!audited) throw notFound(`action ${proposalId}`)
      const { verdictFrom, submittedPosition } = audited
      const action = await withPlan(store, audited.action, submittedPosition)
      const verdict = await currentVerdict(store, proposalId, verdictFrom, asOf)
      const { who } = action
      return {
        ...action,
        who: { ...who, approvers: [...who.approvers], killSwitchActors: [...who.killSwitchActors] },
        currentVerdict: verdict && {
          verdictId: verdict.verdictId,
          revision: verdict.revision,
          decision: verdict.decision,
          impact: verdict.impact,
          policyVersion: verdict.policyVersion,
          decidedAt: verdict.decidedAt,
          expiresAt: verdict.expiresAt,
          revoked: verdict.revoked,
          expired: verdict.expired,
          checks: verdict.checks,
        },
        asOf,
      }
    },
  )

  app.get(
    '/audit/agents/:agentId',
    {
      config: { readModel: true },
      preValidation: readers,
      schema: {
        tags: ['audit'],
        operationId: 'auditAgent',
        summary: "An agent's authority per environment and its proposals, each in one line",
        params: z.object({ agentId: Identifier }),
        querystring: Page,
        response: { 200: AgentAudit, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { agentId } = request.params
      const { views } = await viewsAt(store, runtime.views, request.query.asOf)
      const asOf = views.audit.checkpoint()
      const authority: AuthorityDoc | undefined = views.authority.get(authorityKeys.agent(agentId))
      const index = views.audit.get(auditKeys.agent(agentId))
      const agent = authority?.kind === 'agent' ? authority : undefined
      if (!agent && index?.kind !== 'agent') throw notFound(`agent ${agentId}`)
      return {
        agentId,
        owner: agent?.owner ?? null,
        levels: agent?.levels ?? {},
        pendingPromotions: [...(agent?.pendingPromotions ?? [])],
        refusedPromotions: agent?.refusedPromotions ?? 0,
        ...page(
          views.audit,
          auditKeys.agentEntries(agentId),
          index?.kind === 'agent' ? index.proposalCount : 0,
          (action) => action.who.agentId === agentId,
          request.query.after,
          request.query.limit,
        ),
        asOf,
      }
    },
  )

  app.get(
    '/audit/resources/:environment/:resource',
    {
      config: { readModel: true },
      preValidation: readers,
      schema: {
        tags: ['audit'],
        operationId: 'auditResource',
        summary: 'A resource: its last observed state and the proposals that touched it',
        params: z.object({ environment: Environment, resource: ResourceSegment }),
        querystring: Page,
        response: { 200: ResourceAudit, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { environment, resource } = request.params
      const { views } = await viewsAt(store, runtime.views, request.query.asOf)
      const asOf = views.audit.checkpoint()
      const index = views.audit.get(auditKeys.resource(environment, resource))
      if (index?.kind !== 'resource') throw notFound(`resource ${resource} in ${environment}`)
      return {
        environment,
        resource,
        lastObservation: index.lastObservation,
        ...page(
          views.audit,
          auditKeys.resourceEntries(environment, resource),
          index.proposalCount,
          (action) => action.what.environment === environment && action.what.resource === resource,
          request.query.after,
          request.query.limit,
        ),
        asOf,
      }
    },
  )
}
