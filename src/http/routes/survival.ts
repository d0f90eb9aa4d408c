import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { clockOf, viewsAt } from '../../application/as-of.js'
import { branchSurvival } from '../../application/queries.js'
import { MAX_WINDOWS, windowRange } from '../../application/windows.js'
import { BranchKind, Environment, Identifier, WorkflowName } from '../../domain/events.js'
import { toolActionOf } from '../../domain/workflow.js'
import { windowRangeQuery } from '../as-of.js'
import { authorize } from '../auth.js'
import { readErrors } from '../schemas.js'
import { invalidQuery } from './metrics.js'

const Rate = z.number().nullable()
const KindFigures = z.object({
  branches: z.number().int(),
  survived: z.number().int(),
  failed: z.number().int(),
  survivalRate: Rate,
})
const AdversarialKind = BranchKind.exclude(['baseline'])
const Figures = {
  runs: z.number().int().describe('simulation runs recorded'),
  runsPassed: z
    .number()
    .int()
    .describe('runs that ran at least one adversarial branch and survived every one'),
  adversarialBranches: z.number().int().describe('adversarial branches run: every kind but the baseline'),
  survived: z.number().int(),
  failed: z.number().int(),
  survivalRate: Rate.describe('survived / adversarialBranches; null when no adversarial branch ran'),
  byKind: z
    .object(Object.fromEntries(AdversarialKind.options.map((kind) => [kind, KindFigures])))
    .describe('every adversarial kind, zeros included'),
  mostFailed: z
    .array(KindFigures.extend({ kind: AdversarialKind }))
    .describe('the kinds with a failed branch, the most failed first'),
}
const WindowRate = z.object({ start: z.string(), survivalRate: z.number() })
const Trend = z
  .object({
    latest: WindowRate.nullable(),
    previous: WindowRate.nullable(),
    change: z.number().nullable().describe('latest minus previous; null without two such windows'),
  })
  .describe(
    'the survival rate of the latest window of the range that ran an adversarial branch, against the one before it that ran one',
  )

const SurvivalQuery = z
  .object({
    workflow: WorkflowName.optional().describe('only this workflow: <tool>.<action>'),
    agentId: Identifier.optional(),
    environment: Environment.optional(),
    ...windowRangeQuery('day'),
  })
  .strict()

const SurvivalResponse = z.object({
  window: z.enum(['hour', 'day']),
  workflow: z.string().nullable(),
  agentId: z.string().nullable(),
  environment: z.string().nullable(),
  start: z.string(),
  end: z.string().describe('exclusive'),
  series: z
    .array(z.object({ start: z.string(), end: z.string(), ...Figures }))
    .describe('every window of the range in order, empty ones included'),
  totals: z.object({ ...Figures, trend: Trend }).describe('the range summed'),
  byWorkflow: z.array(z.object({ workflow: z.string(), ...Figures, trend: Trend })),
  byAgent: z.array(z.object({ agentId: z.string(), ...Figures, trend: Trend })),
  asOf: z
    .number()
    .int()
    .describe('the ledger position the figures reflect; "now" is the time of asOf when it is given'),
})

export const survivalRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { runtime } = app

  app.get(
    '/survival',
    {
      config: { readModel: true },
      preValidation: authorize('auditor', 'policy-admin'),
      schema: {
        tags: ['metrics'],
        operationId: 'getBranchSurvival',
        summary:
          'Branch survival over time: simulation runs, adversarial branches survived and the kinds that fail most, per workflow and agent, per window',
        querystring: SurvivalQuery,
        response: { 200: SurvivalResponse, ...readErrors(400, 401, 403, 429, 503) },
      },
    },
    async (request) => {
      const { window, from, to, workflow, agentId, environment } = request.query
      const { views, moment } = await viewsAt(runtime.store, runtime.views, request.query.asOf)
      const range = windowRange(window, from, to, clockOf(moment))
      if ('reversed' in range) throw invalidQuery('from', 'must not be after to')
      if ('tooMany' in range)
        throw invalidQuery('from', `the range may hold at most ${MAX_WINDOWS} ${window} windows`)
      const filter = {
        window,
        workflow: workflow === undefined ? undefined : (toolActionOf(workflow) ?? undefined),
        agentId,
        environment,
      }
      return branchSurvival(views.survival, filter, range.starts)
    },
  )
}
