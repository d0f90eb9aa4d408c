import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { resolveRange } from '../../application/as-of.js'
import { counterfactualReplay, publishedPolicy } from '../../decision/counterfactual.js'
import {
  CheckName,
  CheckResult,
  ImpactClass,
  PolicyDraft,
  PolicyPublished,
  parseDomainEvent,
  streams,
} from '../../domain/events.js'
import type { EventStore } from '../../store/port.js'
import { authorize } from '../auth.js'
import { GovernedResult, governed } from '../commands.js'
import { ApiError, notFound } from '../errors.js'
import { errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'

/**
 * The most ledger events one counterfactual request re-decides (the range's end: the replay starts from the
 * beginning of the ledger). Past it the answer is a 400 that points to `replay --policy` on the data folder.
 */
export const COUNTERFACTUAL_MAX_EVENTS = 50_000

const Position = z.number().int().positive()
const CounterfactualBody = z
  .object({
    /** a draft never published */
    policy: PolicyDraft.optional(),
    /** or a version the ledger published */
    policyVersion: Position.optional(),
    from: z
      .union([Position, z.iso.datetime()])
      .optional()
      .describe(
        'the first position the policy is in force at, or a UTC time: the first event recorded at or after it (default: the start of the ledger)',
      ),
    to: z
      .union([Position, z.iso.datetime()])
      .optional()
      .describe(
        'the last position re-decided, or a UTC time: the last event recorded at or before it (default: the head)',
      ),
  })
  .strict()
  .refine((b) => (b.policy === undefined) !== (b.policyVersion === undefined), {
    message: 'give exactly one of policy and policyVersion',
  })
  .refine((b) => typeof b.from !== 'number' || typeof b.to !== 'number' || b.from <= b.to, {
    message: 'from must not be after to',
    path: ['from'],
  })

const Decision = z.enum(['allow', 'block'])
const FlipCounts = z.object({ allowToBlock: z.number().int(), blockToAllow: z.number().int() })
/** Would-flip counts, by direction and by agent, tool, environment and changed check. */
export const FlipTallySchema = z.object({
  allowToBlock: z.number().int(),
  blockToAllow: z.number().int(),
  byAgent: z.record(z.string(), FlipCounts),
  byTool: z.record(z.string(), FlipCounts).describe('by tool.action'),
  byEnvironment: z.record(z.string(), FlipCounts),
  byCheck: z
    .record(z.string(), FlipCounts)
    .describe('per check whose status changed: one flip may change several'),
})
/** One proposal whose decision would differ under another policy, with the checks that changed. */
export const FlipSchema = z.object({
  proposalId: z.string(),
  agentId: z.string(),
  tool: z.string(),
  action: z.string(),
  environment: z.string(),
  impact: ImpactClass,
  recorded: Decision,
  counterfactual: Decision,
  recordedPolicyVersion: z.number().int().nullable(),
  changedChecks: z.array(
    z.object({
      check: CheckName,
      recorded: CheckResult.shape.status.nullable(),
      counterfactual: CheckResult.shape.status.nullable(),
      reason: z.string().nullable(),
    }),
  ),
})
const CounterfactualReport = FlipTallySchema.extend({
  from: z.number().int(),
  to: z.number().int(),
  policyVersion: z.number().int(),
  events: z.number().int(),
  ignoredPolicyVersions: z.array(z.number().int()),
  compared: z.number().int(),
  flips: z.array(FlipSchema),
})

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

  app.post(
    '/policies/counterfactual',
    {
      // a read: a replay may take seconds, which the overload guard must not take for a backed-up ledger
      config: { appendsNothing: true },
      preValidation: authorize('auditor', 'policy-admin'),
      schema: {
        tags: ['policies'],
        operationId: 'counterfactualPolicyReplay',
        summary:
          'Re-decide the ledger in memory under another policy from a position, and list every verdict that would flip (nothing is written)',
        body: CounterfactualBody,
        // 503: beyond the commands in flight the service holds (a POST's body takes a place like a command's)
        response: { 200: CounterfactualReport, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { policy, policyVersion } = request.body
      const { from, to } = await resolveRange(store, request.body)
      const head = (await store.head()).position
      const end = Math.min(to ?? head, head)
      if (end > COUNTERFACTUAL_MAX_EVENTS)
        throw new ApiError(
          'invalid',
          `the range ends at position ${end}: one request re-decides at most ${COUNTERFACTUAL_MAX_EVENTS} events; run replay --policy on the data folder instead`,
          { to: end, maxEvents: COUNTERFACTUAL_MAX_EVENTS },
        )
      const draft = policy ?? (await publishedPolicy(store, policyVersion as number))
      if (draft === null) throw notFound(`policy version ${policyVersion}`)
      return counterfactualReplay(store, draft, { from, to: end })
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
