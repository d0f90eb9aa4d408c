import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { z } from 'zod'
import type { ProjectionView } from '../../../projections/as-of.js'
import { type Counts, type EndOfAction, metricsKeys } from '../../../projections/metrics.js'
import {
  awaitingNow,
  type Figures,
  isWindow,
  type PresentedFigures,
  presentFigures,
  sumWindows,
  zeroFigures,
} from '../../../projections/metrics-summary.js'
import type { OpenActionDoc } from '../../../projections/open-actions.js'
import { ADVERSARIAL_KINDS, type SurvivalDoc, survivalKeys } from '../../../projections/survival.js'
import { clockOf, viewsAt } from '../../application/as-of.js'
import { MAX_WINDOWS, WINDOW_MS, windowRange } from '../../application/windows.js'
import { WHAT_A_START_NEEDS } from '../../domain/deciders/proposal-rules.js'
import { CheckName, ImpactClass, SimulationBranch, ViolationRecorded } from '../../domain/events.js'
import type { Runtime } from '../../runtime.js'
import { windowRangeQuery } from '../as-of.js'
import { authorize } from '../auth.js'
import { ApiError } from '../errors.js'
import { readErrors } from '../schemas.js'
import { findOpenActions, withAge } from './open-actions.js'
import { ShadowCountsSchema, shadowCounts } from './shadow-policies.js'

const failedActions = (
  openActions: ProjectionView<OpenActionDoc>,
): Array<Extract<OpenActionDoc, { state: 'failed' }>> =>
  findOpenActions(
    (prefix, options) => openActions.list(prefix, options),
    (doc) => doc.state === 'failed',
  ).found.filter((doc): doc is Extract<OpenActionDoc, { state: 'failed' }> => doc.state === 'failed')

// ---------- GET /v1/metrics/headline ----------

const Counted = z.record(z.string(), z.number())
const Recovery = z.object({
  count: z.number().int(),
  p50: z.number().nullable(),
  p90: z.number().nullable(),
  max: z.number().nullable(),
})
const WindowFiguresSchema = z.object({
  start: z.string(),
  end: z.string().describe('exclusive'),
  verdicts: z.number().int(),
  allowed: z.number().int(),
  blockedVerdicts: z.number().int(),
  actionsEnded: z
    .object({
      count: z.number().int(),
      byEnd: Counted.describe('executed, withdrawn, superseded, expired, refused-at-gate'),
    })
    .describe(
      'actions that reached an end in the window: executed, ended without executing, or a start refused at the gate',
    ),
  unsafeBlocked: z
    .object({
      count: z.number().int(),
      byHow: Counted.describe('refused-at-gate, or ended-blocked: ended without executing while blocked'),
      byEnd: Counted.describe('how the proposals that ended blocked ended: withdrawn, superseded, expired'),
      byCheck: Counted.describe(
        'checks failed by the last verdict of those that ended blocked: one may fail several',
      ),
      byAgent: Counted,
      byTool: Counted,
      byEnvironment: Counted,
      byImpact: Counted,
    })
    .describe(
      'unsafe actions blocked before execution, in the window of their end: starts refused at the gate, and proposals that ended without executing while their last verdict was a block',
    ),
  unsafeRate: z
    .number()
    .nullable()
    .describe('unsafeBlocked.count / actionsEnded.count; null when none ended'),
  refusedAtGate: z
    .object({
      count: z.number().int(),
      byRule: Counted.describe('per rule of the gate broken: a start may break several'),
      byAgent: Counted,
      byTool: Counted,
      byEnvironment: Counted,
    })
    .describe('execution starts the gate refused, so nothing ran: unsafe actions blocked before execution'),
  failedDespiteAllow: z.number().int().describe('executions that failed although they cited a valid allow'),
  violations: z.object({ count: z.number().int(), byKind: Counted, byAgent: Counted }),
  timeToRecovery: z
    .object({
      overall: Recovery,
      byAgent: z.record(z.string(), Recovery),
      byTool: z.record(z.string(), Recovery),
      byEnvironment: z.record(z.string(), Recovery),
    })
    .describe(
      'seconds from a failed execution to its completed rollback, for rollbacks completed in the window',
    ),
})

const UnrecoveredFailure = z.object({
  proposalId: z.string(),
  agentId: z.string(),
  tool: z.string(),
  action: z.string(),
  resource: z.string(),
  environment: z.string(),
  impact: z.string(),
  executionId: z.string(),
  failedAt: z.string(),
  error: z.string(),
  rollback: z.enum(['none', 'running', 'failed']),
  recoveryOverdue: z.boolean(),
  ageSeconds: z.number().int().nonnegative(),
})

const HeadlineQuery = z
  .object({
    ...windowRangeQuery('hour'),
  })
  .strict()

const HeadlineResponse = z.object({
  window: z.enum(['hour', 'day']),
  series: z.array(WindowFiguresSchema).describe('every window of the range in order, empty ones included'),
  totals: WindowFiguresSchema.describe(
    'the range summed; every end and every unsafe action blocked is counted in the window of its end, once',
  ),
  awaitingEvidence: z
    .object({
      count: z.number().int(),
      byCheck: Counted.describe('checks their latest verdict failed: one may fail several'),
      byEnvironment: Counted,
    })
    .describe(
      'open proposals whose latest verdict is a block, now, whatever the range: never counted as blocked',
    ),
  unrecoveredFailures: z
    .array(UnrecoveredFailure)
    .describe('failed executions without a completed rollback, now, whatever the range'),
  asOf: z
    .number()
    .int()
    .describe('the ledger position the metrics reflect; "now" above is the time of asOf when it is given'),
  shadowPolicy: ShadowCountsSchema.nullable().describe(
    'the shadow policy in force and how many proposals it would decide otherwise than the live verdicts, now (null as of a past moment); null when none is in force (the counts go with it when it is promoted or withdrawn)',
  ),
})

export const invalidQuery = (field: string, message: string) =>
  new ApiError('invalid', `invalid querystring: querystring.${field} ${message}`, {
    fields: [{ field: `querystring.${field}`, message }],
  })

export const metricsRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { runtime } = app

  app.get(
    '/metrics/headline',
    {
      config: { readModel: true },
      preValidation: authorize('auditor', 'policy-admin'),
      schema: {
        tags: ['metrics'],
        operationId: 'getHeadlineMetrics',
        summary:
          'The headline metrics as time series: unsafe actions blocked before execution, and time to recovery',
        querystring: HeadlineQuery,
        response: { 200: HeadlineResponse, ...readErrors(400, 401, 403, 429, 503) },
      },
    },
    async (request) => {
      const { window } = request.query
      const step = WINDOW_MS[window]
      const { views, moment } = await viewsAt(runtime.store, runtime.views, request.query.asOf)
      const now = clockOf(moment)
      const asOf = views.metrics.checkpoint()
      const range = windowRange(window, request.query.from, request.query.to, now)
      if ('reversed' in range) throw invalidQuery('from', 'must not be after to')
      if ('tooMany' in range)
        throw invalidQuery('from', `the range may hold at most ${MAX_WINDOWS} ${window} windows`)
      const figures: Figures[] = []
      const series: PresentedFigures[] = []
      for (const start of range.starts) {
        const doc = views.metrics.get(metricsKeys[window](start))
        const found = isWindow(doc) ? doc : zeroFigures()
        figures.push(found)
        series.push(presentFigures(found, start, new Date(Date.parse(start) + step).toISOString()))
      }
      return {
        window,
        series,
        totals: presentFigures(sumWindows(figures), range.start, range.end),
        awaitingEvidence: awaitingNow(views.metrics.get(metricsKeys.awaiting())),
        unrecoveredFailures: failedActions(views.openActions).map((doc) => {
          const { proposalId, agentId, tool, action, resource, environment, impact } = doc
          const { executionId, failedAt, error, rollback, recoveryOverdue } = doc
          return {
            proposalId,
            agentId,
            tool,
            action,
            resource,
            environment,
            impact,
            executionId,
            failedAt,
            error,
            rollback,
            recoveryOverdue,
            ageSeconds: withAge(doc, now).ageSeconds,
          }
        }),
        asOf,
        shadowPolicy: request.query.asOf === undefined ? shadowCounts(runtime) : null,
      }
    },
  )
}

// ---------- Prometheus GET /metrics ----------

export interface Prometheus {
  readonly registry: Registry
  /** commands the overload guard refused before any work (src/http/overload.ts) */
  readonly commandsShed: Counter<string>
  /** sets every ledger-derived series from the stored documents, then renders the registry */
  scrape(): Promise<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    prometheus: Prometheus
  }
}

/** Time to recovery runs from seconds (an automatic rollback) to hours (a manual one): buckets over that span. */
export const RECOVERY_BUCKETS_SECONDS = [
  1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400,
]

const END_OF_ACTION: readonly EndOfAction[] = [
  'executed',
  'withdrawn',
  'superseded',
  'expired',
  'refused-at-gate',
]
const HOW_BLOCKED = ['refused-at-gate', 'ended-blocked'] as const
const VIOLATION_KINDS = ViolationRecorded.shape.data.shape.kind.options
const REFUSAL_RULES = WHAT_A_START_NEEDS.map((s) => s.name)
const BRANCH_OUTCOMES = SimulationBranch.shape.outcome.options

/**
 * One registry per app. The ledger-derived series are counters and a histogram whose values are set at scrape
 * from the daily metrics (they only grow, as the ledger does), and gauges for what can go down; every label a
 * family can take from a fixed list is present from the start at zero, and every family's samples sum to what
 * its name counts.
 */
export const createPrometheus = (runtime: Runtime): Prometheus & { httpRequests: Counter<string> } => {
  const registry = new Registry()
  const registers = [registry]
  // the process's own series: resident memory, heap, event-loop delay, garbage collection
  collectDefaultMetrics({ register: registry })
  // gauges named like counters, which promtool refuses; the same counts stay, by type, in their namesakes
  // without the suffix (nodejs_active_handles, nodejs_active_requests, nodejs_active_resources)
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ])
    registry.removeSingleMetric(name)
  const httpRequests = new Counter({
    name: 'governance_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  })
  const commandsShed = new Counter({
    name: 'governance_commands_shed_total',
    help: 'Commands refused with 503 before any work because the service was overloaded: a command in progress had waited longer than OVERLOAD_MAX_COMMAND_WAIT_MS',
    registers,
  })
  // the series taken from the read models: an instance that keeps none has no figure for them, so they are left
  // out of its registry, not shown at zero
  const readModels = runtime.config.READ_MODELS
  const fromReadModels = readModels ? registers : []
  const counter = (name: string, help: string, labelNames: readonly string[] = []) =>
    new Counter({ name, help, labelNames, registers: fromReadModels })
  const unsafeBlocked = counter(
    'governance_unsafe_actions_blocked_total',
    'Unsafe actions blocked before execution: starts refused at the execution gate (how="refused-at-gate") and proposals that ended without executing while their last verdict was a block (how="ended-blocked"). The samples sum to the total',
    ['how'],
  )
  const unsafeBy = {
    agent: counter(
      'governance_unsafe_actions_blocked_by_agent_total',
      'Unsafe actions blocked before execution, by the proposing agent; sums to governance_unsafe_actions_blocked_total',
      ['agent'],
    ),
    tool: counter(
      'governance_unsafe_actions_blocked_by_tool_total',
      'Unsafe actions blocked before execution, by tool; sums to governance_unsafe_actions_blocked_total',
      ['tool'],
    ),
    environment: counter(
      'governance_unsafe_actions_blocked_by_environment_total',
      'Unsafe actions blocked before execution, by environment; sums to governance_unsafe_actions_blocked_total',
      ['environment'],
    ),
    impact: counter(
      'governance_unsafe_actions_blocked_by_impact_total',
      'Unsafe actions blocked before execution, by impact class; sums to governance_unsafe_actions_blocked_total',
      ['impact'],
    ),
  }
  const failedChecks = counter(
    'governance_unsafe_actions_blocked_failed_checks_total',
    'Checks failed by the last verdict of the proposals that ended blocked, by check: one proposal may fail several, so the samples sum to failed checks, not to actions',
    ['check'],
  )
  const actionsEnded = counter(
    'governance_actions_ended_total',
    'Actions that reached an end, by how: executed, withdrawn, superseded, expired, or a start refused at the gate (the base of the unsafe rate)',
    ['end'],
  )
  const awaiting = new Gauge({
    name: 'governance_actions_awaiting_evidence',
    help: 'Open proposals whose latest verdict is a block, now: awaiting evidence, never counted as blocked',
    registers: fromReadModels,
  })
  const verdicts = counter('governance_verdicts_total', 'Verdicts issued, by decision', ['decision'])
  const violations = counter(
    'governance_violations_total',
    'Executions recorded as violations (no valid allow verdict), by kind',
    ['kind'],
  )
  const refusedAtGate = counter(
    'governance_executions_refused_total',
    'Execution starts refused at the gate: nothing ran',
  )
  const refusalRules = counter(
    'governance_execution_refusal_rules_total',
    'Rules of the execution gate broken by refused starts, by rule: one start may break several',
    ['rule'],
  )
  // a gauge, not a counter: a violation recorded after the failure takes the failure back, and a counter that
  // goes down reads as a reset, which increase() would count as the whole value again
  const failedDespiteAllow = new Gauge({
    name: 'governance_executions_failed_despite_allow',
    help: 'Executions that failed although they cited a valid allow verdict, all time; a violation recorded after the failure takes it back',
    registers: fromReadModels,
  })
  const recovery = new Histogram({
    name: 'governance_time_to_recovery_seconds',
    help: 'Seconds from a failed execution to its completed rollback',
    buckets: RECOVERY_BUCKETS_SECONDS,
    registers: fromReadModels,
  })
  const unrecovered = new Gauge({
    name: 'governance_unrecovered_failures',
    help: 'Failed executions whose rollback has not completed, now',
    registers: fromReadModels,
  })
  const headPosition = new Gauge({
    name: 'governance_ledger_head_position',
    help: 'The position of the last event in the ledger',
    registers,
  })
  const decisionLag = new Gauge({
    name: 'governance_decision_lag_events',
    help: 'Ledger events this instance has not yet folded into its decision world (appended by other instances); its own appends are decided as they commit',
    registers,
  })
  const checkpointSize = new Gauge({
    name: 'governance_checkpoint_tree_size',
    help: 'The tree size of the newest signed checkpoint cut: how far the ledger is committed to outside the data folder',
    registers: fromReadModels,
  })
  const checkpointFailing = new Gauge({
    name: 'governance_checkpoint_failing',
    help: 'Whether the last attempt to cut a checkpoint failed (1: signing or the folder failed) or not (0)',
    registers: fromReadModels,
  })
  // gauges: a proposal decided anew may stop flipping, and the counts go with the shadow when it ends
  const shadowCompared = new Gauge({
    name: 'governance_shadow_policy_compared',
    help: 'Proposals the shadow policy in force decided that the live decision service holds a verdict for, now; absent when no shadow policy is in force',
    labelNames: ['version'],
    registers: fromReadModels,
  })
  const shadowWouldFlip = new Gauge({
    name: 'governance_shadow_policy_would_flip',
    help: 'Proposals the shadow policy in force would decide otherwise than their live verdict, now, by direction (allow_to_block, block_to_allow); absent when no shadow policy is in force',
    labelNames: ['version', 'direction'],
    registers: fromReadModels,
  })
  const shadowWouldFlipByCheck = new Gauge({
    name: 'governance_shadow_policy_would_flip_checks',
    help: 'Checks whose status changed in the proposals the shadow policy would flip, by check and direction: one flip may change several',
    labelNames: ['version', 'check', 'direction'],
    registers: fromReadModels,
  })
  const simulationRuns = counter(
    'governance_simulation_runs_total',
    'Simulation runs recorded, by workflow (tool and action)',
    ['tool', 'action'],
  )
  const simulationRunsPassed = counter(
    'governance_simulation_runs_passed_total',
    'Simulation runs that ran at least one adversarial branch and survived every one, by workflow',
    ['tool', 'action'],
  )
  const branches = counter(
    'governance_simulation_branches_total',
    'Adversarial branches run by simulations (the baseline is not one), by workflow, branch kind and outcome (survived or failed)',
    ['tool', 'action', 'kind', 'outcome'],
  )
  const branchesByWorkflow = counter(
    'governance_simulation_branches_by_workflow_total',
    'Adversarial branches run by simulations, by workflow and outcome; sums to governance_simulation_branches_total',
    ['tool', 'action', 'outcome'],
  )
  const branchesByKind = counter(
    'governance_simulation_branches_by_kind_total',
    'Adversarial branches run by simulations, by branch kind and outcome, every workflow; sums to governance_simulation_branches_total',
    ['kind', 'outcome'],
  )
  const faults = new Gauge({
    name: 'governance_faults',
    help: 'Parts of the service that have stopped or can no longer be trusted, now; while any is listed the execution gate is closed',
    registers,
  })

  /** Every value a label takes from a fixed list, at zero, then the counts found. */
  const setCounts = (c: Counter<string>, label: string, counts: Counts, known: readonly string[] = []) => {
    for (const value of known) c.inc({ [label]: value }, 0)
    for (const [value, n] of Object.entries(counts)) c.inc({ [label]: value }, n)
  }

  const setShadow = (shadow: ReturnType<typeof shadowCounts>) => {
    for (const gauge of [shadowCompared, shadowWouldFlip, shadowWouldFlipByCheck]) gauge.reset()
    if (shadow === null) return
    const version = String(shadow.version)
    shadowCompared.set({ version }, shadow.compared)
    shadowWouldFlip.set({ version, direction: 'allow_to_block' }, shadow.allowToBlock)
    shadowWouldFlip.set({ version, direction: 'block_to_allow' }, shadow.blockToAllow)
    for (const [check, counts] of Object.entries(shadow.byCheck)) {
      shadowWouldFlipByCheck.set({ version, check, direction: 'allow_to_block' }, counts.allowToBlock)
      shadowWouldFlipByCheck.set({ version, check, direction: 'block_to_allow' }, counts.blockToAllow)
    }
  }

  /** Every workflow's runs and branches, all time; each kind and outcome at zero for every workflow listed. */
  const setSurvival = (docs: readonly SurvivalDoc[]) => {
    for (const kind of ADVERSARIAL_KINDS)
      for (const outcome of BRANCH_OUTCOMES) branchesByKind.inc({ kind, outcome }, 0)
    for (const doc of docs) {
      if (doc.kind !== 'total') continue
      const workflow = { tool: doc.tool, action: doc.action }
      simulationRuns.inc(workflow, doc.runs)
      simulationRunsPassed.inc(workflow, doc.runsPassed)
      branchesByWorkflow.inc({ ...workflow, outcome: 'survived' }, doc.survived)
      branchesByWorkflow.inc({ ...workflow, outcome: 'failed' }, doc.adversarial - doc.survived)
      for (const kind of ADVERSARIAL_KINDS) {
        const { runs, survived } = doc.byKind[kind]
        const outcomes = { survived, failed: runs - survived }
        for (const outcome of BRANCH_OUTCOMES) {
          branches.inc({ ...workflow, kind, outcome }, outcomes[outcome])
          branchesByKind.inc({ kind, outcome }, outcomes[outcome])
        }
      }
    }
  }

  /** Sets every series taken from the read models (documents, the shadow decisions, the checkpoints). */
  const setFromReadModels = () => {
    const days = runtime.views.metrics
      .list('day:')
      .map(([, doc]) => doc)
      .filter(isWindow)
    const total = sumWindows(days)
    const ledgerSeries = [
      unsafeBlocked,
      ...Object.values(unsafeBy),
      failedChecks,
      actionsEnded,
      verdicts,
      violations,
      refusedAtGate,
      refusalRules,
      recovery,
      simulationRuns,
      simulationRunsPassed,
      branches,
      branchesByWorkflow,
      branchesByKind,
    ]
    for (const series of ledgerSeries) series.reset()
    const u = total.unsafeBlocked
    setCounts(unsafeBlocked, 'how', u.byHow, HOW_BLOCKED)
    setCounts(unsafeBy.agent, 'agent', u.byAgent)
    setCounts(unsafeBy.tool, 'tool', u.byTool)
    setCounts(unsafeBy.environment, 'environment', u.byEnvironment)
    setCounts(unsafeBy.impact, 'impact', u.byImpact, ImpactClass.options)
    setCounts(failedChecks, 'check', u.byCheck, CheckName.options)
    setCounts(actionsEnded, 'end', total.actionsEnded.byEnd, END_OF_ACTION)
    setCounts(verdicts, 'decision', { allow: total.allowed, block: total.blockedVerdicts })
    setCounts(violations, 'kind', total.violations.byKind, VIOLATION_KINDS)
    refusedAtGate.inc(total.refusedAtGate.count)
    setCounts(refusalRules, 'rule', total.refusedAtGate.byRule, REFUSAL_RULES)
    failedDespiteAllow.set(total.failedDespiteAllow)
    recovery.zero({})
    for (const seconds of total.recoveries.durationsSeconds) recovery.observe(seconds)
    setSurvival(runtime.views.survival.list(survivalKeys.total()).map(([, doc]) => doc))
    awaiting.set(awaitingNow(runtime.views.metrics.get(metricsKeys.awaiting())).count)
    unrecovered.set(failedActions(runtime.views.openActions).length)
    checkpointSize.set(runtime.checkpoints.folder.latestSize())
    checkpointFailing.set(runtime.checkpoints.failure === null ? 0 : 1)
    setShadow(shadowCounts(runtime))
  }

  const scrape = async (): Promise<string> => {
    const head = await runtime.store.head()
    if (readModels) setFromReadModels()
    headPosition.set(head.position)
    decisionLag.set(Math.max(0, head.position - runtime.decision.position))
    faults.set(runtime.health.problems().length)
    return registry.metrics()
  }
  return { registry, commandsShed, scrape, httpRequests }
}

/** Counts every response of the app by route pattern (never the raw URL, which would explode the series). */
export const prometheusPlugin = fp(
  async (app: FastifyInstance) => {
    if (app.hasDecorator('prometheus')) return
    const prometheus = createPrometheus(app.runtime)
    app.decorate('prometheus', prometheus)
    app.addHook('onResponse', async (request, reply) => {
      prometheus.httpRequests.inc({
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      })
    })
  },
  { name: 'governance-prometheus' },
)

const hasPrincipal = (request: FastifyRequest): boolean => Boolean(request.principal)

export const metricsRoute = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const prometheus = app.hasDecorator('prometheus') ? app.prometheus : createPrometheus(app.runtime)
  const { METRICS_PUBLIC } = app.runtime.config
  const readers = authorize('auditor', 'policy-admin')

  app.get(
    '/metrics',
    {
      // with METRICS_PUBLIC no auth plugin runs in this scope, so no principal is ever set
      preHandler: (request, reply, done) => {
        if (hasPrincipal(request) || !METRICS_PUBLIC) readers.call(app, request, reply, done)
        else done()
      },
      schema: {
        tags: ['metrics'],
        operationId: 'getPrometheusMetrics',
        summary:
          'Prometheus metrics (text exposition format); needs auditor or policy-admin unless METRICS_PUBLIC',
        ...(METRICS_PUBLIC ? { security: [] } : {}),
        response: {
          200: {
            description: 'Prometheus text exposition format',
            content: { 'text/plain; version=0.0.4': { schema: z.string() } },
          },
          // a public scrape needs no token, so it is never refused for one
          ...(METRICS_PUBLIC ? {} : readErrors(401, 403)),
        },
      },
    },
    async (_request, reply) => {
      const text = await prometheus.scrape()
      return reply.type(prometheus.registry.contentType).send(text)
    },
  )
}
