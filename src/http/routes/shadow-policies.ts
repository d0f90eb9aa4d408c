import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { loadState } from '../../application/handle.js'
import { policy } from '../../domain/deciders/index.js'
import { PolicyDraft, ShadowPolicyPublished, streams } from '../../domain/events.js'
import type { Runtime } from '../../runtime.js'
import { authorize } from '../auth.js'
import { actorOf, GovernedResult, governed } from '../commands.js'
import { notFound } from '../errors.js'
import { CommandResult, errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'
import { FlipSchema, FlipTallySchema } from './policies.js'

/** The most would-flip proposals GET /v1/policies/shadow lists. */
export const SHADOW_FLIPS_LISTED = 100

/** The shadow policy in force and its would-flip counts, as /v1/policies/shadow and /v1/metrics/headline show them. */
export const ShadowCountsSchema = FlipTallySchema.extend({
  version: z.number().int(),
  owner: z.string(),
  publishedBy: z.string(),
  approvedBy: z.string().nullable(),
  since: z.number().int().describe('the ledger position it was published at: decided from there on'),
  publishedAt: z.string(),
  compared: z
    .number()
    .int()
    .describe('proposals it decided that the live decision service holds a verdict for'),
  position: z.number().int().describe('the ledger position the counts reflect'),
})

/** The shadow policy's would-flip counts; null when none is in force (or the counts have not reached it yet). */
export const shadowCounts = (runtime: Runtime): z.infer<typeof ShadowCountsSchema> | null =>
  runtime.shadow.report()

const WithdrawalBody = z.object({ reason: z.string().min(1).max(2000) }).strict()

const ShadowResponse = z.object({
  policy: ShadowPolicyPublished.shape.data,
  wouldFlip: ShadowCountsSchema.nullable().describe(
    'null until the shadow decisions have reached its publication',
  ),
  flips: z
    .array(FlipSchema)
    .describe(
      `the proposals it would flip now, in proposal id order, at most ${SHADOW_FLIPS_LISTED}; counterfactual is the shadow's decision`,
    ),
})

/**
 * Shadow policies: the next policy version, decided beside the live one on every new event and never enforced.
 * Two policy admins put it in shadow; one withdraws it; publishing its version live (POST /v1/policies, two
 * admins) promotes it and ends the shadow.
 */
export const shadowPolicyRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { runtime } = app

  app.post(
    '/policies/shadow',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['policies'],
        operationId: 'publishShadowPolicy',
        summary:
          'Request the next policy version in shadow mode: decided beside the live one, never enforced (a second policy admin approves it)',
        headers: IdempotencyHeaders,
        body: PolicyDraft,
        response: {
          201: GovernedResult.extend({ version: z.number().int() }),
          202: GovernedResult.extend({ version: z.number().int() }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { version } = request.body
      const change = { kind: 'publish-shadow-policy' as const, policyVersion: version }
      const answer = await governed(request, change, request.body)
      return reply.code(answer.status === 'pending' ? 202 : 201).send({ ...answer, version })
    },
  )

  app.post(
    '/policies/shadow/withdrawal',
    {
      preValidation: authorize('policy-admin'),
      schema: {
        tags: ['policies'],
        operationId: 'withdrawShadowPolicy',
        summary: 'Withdraw the shadow policy, with the reason (narrows nothing: one policy admin)',
        headers: IdempotencyHeaders,
        body: WithdrawalBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await app.commands.run(request, policy, streams.policy(), {
        type: 'WithdrawShadowPolicy',
        actor: actorOf(request),
        reason: request.body.reason,
      })
      return reply.code(201).send(result)
    },
  )

  app.get(
    '/policies/shadow',
    {
      config: { readModel: true },
      preValidation: authorize('auditor', 'policy-admin'),
      schema: {
        tags: ['policies'],
        operationId: 'getShadowPolicy',
        summary:
          'The shadow policy in force, its would-flip counts against the live verdicts, and the proposals it would flip (404: none)',
        response: { 200: ShadowResponse, ...readErrors(401, 403, 404, 429, 503) },
      },
    },
    async () => {
      const { state } = await loadState(runtime.store, policy, streams.policy())
      if (state.shadow === null) throw notFound('a shadow policy')
      const counts = shadowCounts(runtime)
      const wouldFlip = counts?.version === state.shadow.version ? counts : null
      return {
        policy: state.shadow,
        wouldFlip,
        flips: wouldFlip === null ? [] : runtime.shadow.flips(SHADOW_FLIPS_LISTED),
      }
    },
  )
}
