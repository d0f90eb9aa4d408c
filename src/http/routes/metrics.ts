import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { z } from 'zod'
import { type Counts, metricsKeys, summarizeRecovery, type WindowKind } from '../../../projections/metrics.js'
import {
  type Figures,
  isWindow,
  type PresentedFigures,
  presentFigures,
  sumWindows,
  zeroFigures,
} from '../../../projections/metrics-summary.js'
import type { OpenActionDoc } from '../../../projections/open-actions.js'
import type { Runtime } from '../../runtime.js'
import { authorize } from '../auth.js'
import { ApiError } from '../errors.js'
import { errorResponses } from '../schemas.js'
import { findOpenActions, withAge } from './open-actions.js'

const failedActions = (runtime: Runtime): Array<Extract<OpenActionDoc, { state: 'failed' }>> =>
  findOpenActions(
    (prefix, options) => runtime.views.openActions.list(prefix, options),
    (doc) => doc.state === 'failed',
  ).found.filter((doc): doc is Extract<OpenActionDoc, { state: 'failed' }> => doc.state === 'failed')

// ---------- GET /v1/metrics/headline ----------

const STEP_MS: Record<WindowKind, number> = { hour: 3_600_000, day: 86_400_000 }
const DEFAULT_WINDOWS: Record<WindowKind, number> = { hour: 24, day: 30 }
const MAX_WINDOWS = 1000

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
  proposalsDecided: z.number().int().describe('distinct proposals given a verdict in the window'),
  unsafeBlocked: z
    .object({
      count: z.number().int(),
      byCheck: Counted.describe('per failed check: a proposal may fail several'),
      byAgent: Counted,
      byTool: Counted,
      byEnvironment: Counted,
      byImpact: Counted,
    })
    .describe('proposals blocked before execution, each counted once, in the window of its first block'),
  unsafeRate: z.number().nullable().describe('unsafeBlocked.count / proposalsDecided; null when none'),
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
    window: z.enum(['hour', 'day']).default('hour'),
    from: z.iso.datetime().optional().describe('default: 24 hours (hour) or 30 days (day) before to'),
    to: z.iso.datetime().optional().describe('default: now; the window holding it is included'),
  })
  .strict()

const HeadlineResponse = z.object({
  window: z.enum(['hour', 'day']),
  series: z.array(WindowFiguresSchema).describe('every window of the range in order, empty ones included'),
  totals: WindowFiguresSchema.describe(
    'the range summed; a proposal decided in several windows counts in proposalsDecided once per window',
  ),
  unrecoveredFailures: z
    .array(UnrecoveredFailure)
    .describe('failed executions without a completed rollback, now, whatever the range'),
  asOf: z.number().int().describe('the ledger position the metrics reflect'),
})

const invalidQuery = (field: string, message: string) =>
  new ApiError('invalid', `invalid querystring: querystring.${field} ${message}`, {
    fields: [{ field: `querystring.${field}`, message }],
  })

export const metricsRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { runtime } = app

  app.get(
    '/metrics/headline',
    {
      preValidation: authorize('auditor', 'policy-admin'),
      schema: {
        tags: ['metrics'],
        operationId: 'getHeadlineMetrics',
        summary:
          'The headline metrics as time series: unsafe actions blocked before execution, and time to recovery',
        querystring: HeadlineQuery,
        response: { 200: HeadlineResponse, ...errorResponses },
      },
    },
    async (request) => {
      const { window } = request.query
      const step = STEP_MS[window]
      const asOf = runtime.views.metrics.checkpoint()
      const toMs = request.query.to === undefined ? Date.now() : Date.parse(request.query.to)
      const fromMs =
        request.query.from === undefined
          ? toMs - (DEFAULT_WINDOWS[window] - 1) * step
          : Date.parse(request.query.from)
      if (fromMs > toMs) throw invalidQuery('from', 'must not be after to')
      const first = Math.floor(fromMs / step) * step
      const last = Math.floor(toMs / step) * step
      if ((last - first) / step + 1 > MAX_WINDOWS) {
        throw invalidQuery('from', `the range may hold at most ${MAX_WINDOWS} ${window} windows`)
      }
      const figures: Figures[] = []
      const series: PresentedFigures[] = []
      for (let at = first; at <= last; at += step) {
        const start = new Date(at).toISOString()
        const doc = runtime.views.metrics.get(metricsKeys[window](start))
        const found = isWindow(doc) ? doc : zeroFigures()
        figures.push(found)
        series.push(presentFigures(found, start, new Date(at + step).toISOString()))
      }
      const now = new Date()
      return {
        window,
        series,
        totals: presentFigures(
          sumWindows(figures),
          new Date(first).toISOString(),
          new Date(last + step).toISOString(),
        ),
        unrecoveredFailures: failedActions(runtime).map((doc) => {
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
      }
    },
  )
}

// ---------- Prometheus GET /metrics ----------

export interface Prometheus {
  readonly registry: Registry
  /** sets every ledger-derived gauge from the stored documents, then renders the registry */
  scrape(): Promise<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    prometheus: Prometheus
  }
}

const UNSAFE_LABELS = ['check', 'agent', 'tool', 'environment', 'impact'] as const

/** One registry per app. The ledger-derived series are gauges computed at scrape from the daily metrics. */
export const createPrometheus = (runtime: Runtime): Prometheus & { httpRequests: Counter<string> } => {
  const registry = new Registry()
  const registers = [registry]
  // the process's own series: resident memory, heap, event-loop delay, garbage collection
  collectDefaultMetrics({ register: registry })
  const httpRequests = new Counter({
    name: 'governance_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  })
  const unsafeBlocked = new Gauge({
    name: 'governance_unsafe_actions_blocked_total',
    help: 'Proposals blocked before execution, each once, all time (a gauge computed at scrape from the daily metrics). One series per breakdown: the one without labels is the total; select a breakdown with {check!=""} (a proposal may fail several checks), {agent!=""}, {tool!=""}, {environment!=""} or {impact!=""}',
    labelNames: UNSAFE_LABELS,
    registers,
  })
  const verdicts = new Gauge({
    name: 'governance_verdicts_total',
    help: 'Verdicts issued, by decision, all time (computed at scrape)',
    labelNames: ['decision'],
    registers,
  })
  const violations = new Gauge({
    name: 'governance_violations_total',
    help: 'Executions recorded as violations (no valid allow verdict), by kind, all time (computed at scrape)',
    labelNames: ['kind'],
    registers,
  })
  const refusedAtGate = new Gauge({
    name: 'governance_executions_refused_total',
    help: 'Execution starts refused at the gate (nothing ran), by the rule broken, all time (computed at scrape)',
    labelNames: ['rule'],
    registers,
  })
  const failedDespiteAllow = new Gauge({
    name: 'governance_executions_failed_despite_allow_total',
    help: 'Executions that failed although they cited a valid allow verdict, all time (computed at scrape)',
    registers,
  })
  const recovery = new Gauge({
    name: 'governance_time_to_recovery_seconds',
    help: 'Seconds from a failed execution to its completed rollback, all time: p50 and p90 by quantile (computed at scrape)',
    labelNames: ['quantile'],
    registers,
  })
  const recoveryMax = new Gauge({
    name: 'governance_time_to_recovery_seconds_max',
    help: 'The longest time to recovery, seconds, all time (computed at scrape)',
    registers,
  })
  const recoveryCount = new Gauge({
    name: 'governance_time_to_recovery_seconds_count',
    help: 'Recoveries completed after a failed execution, all time (computed at scrape)',
    registers,
  })
  const unrecovered = new Gauge({
    name: 'governance_unrecovered_failures',
    help: 'Failed executions whose rollback has not completed, now',
    registers,
  })
  const headPosition = new Gauge({
    name: 'governance_ledger_head_position',
    help: 'The position of the last event in the ledger',
    registers,
  })
  const decisionLag = new Gauge({
    name: 'governance_decision_lag_events',
    help: 'Ledger events the decision service has not yet decided on',
    registers,
  })

  const setEach = (gauge: Gauge<string>, label: string, counts: Counts) => {
    for (const [value, n] of Object.entries(counts)) gauge.set({ [label]: value }, n)
  }

  const scrape = async (): Promise<string> => {
    const head = await runtime.store.head()
    const days = runtime.views.metrics
      .list('day:')
      .map(([, doc]) => doc)
      .filter(isWindow)
    const total = sumWindows(days)
    for (const gauge of [unsafeBlocked, verdicts, violations, refusedAtGate, recovery]) gauge.reset()
    const u = total.unsafeBlocked
    unsafeBlocked.set(u.count)
    setEach(unsafeBlocked, 'check', u.byCheck)
    setEach(unsafeBlocked, 'agent', u.byAgent)
    setEach(unsafeBlocked, 'tool', u.byTool)
    setEach(unsafeBlocked, 'environment', u.byEnvironment)
    setEach(unsafeBlocked, 'impact', u.byImpact)
    verdicts.set({ decision: 'allow' }, total.allowed)
    verdicts.set({ decision: 'block' }, total.blockedVerdicts)
    setEach(violations, 'kind', total.violations.byKind)
    refusedAtGate.set(total.refusedAtGate.count)
    setEach(refusedAtGate, 'rule', total.refusedAtGate.byRule)
    failedDespiteAllow.set(total.failedDespiteAllow)
    const summary = summarizeRecovery(total.recoveries.durationsSeconds)
    if (summary.p50 !== null) recovery.set({ quantile: '0.5' }, summary.p50)
    if (summary.p90 !== null) recovery.set({ quantile: '0.9' }, summary.p90)
    recoveryMax.set(summary.max ?? 0)
    recoveryCount.set(summary.count)
    unrecovered.set(failedActions(runtime).length)
    headPosition.set(head.position)
    decisionLag.set(Math.max(0, head.position - runtime.decision.position))
    return registry.metrics()
  }
  return { registry, scrape, httpRequests }
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
          401: errorResponses[401],
          403: errorResponses[403],
        },
      },
    },
    async (_request, reply) => {
      const text = await prometheus.scrape()
      return reply.type(prometheus.registry.contentType).send(text)
    },
  )
}
