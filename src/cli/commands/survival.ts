import type { SurvivalFigures, Trend } from '../../../projections/survival-summary.js'
import { clockOf, type Moment } from '../../application/as-of.js'
import { type BranchSurvival, branchSurvival } from '../../application/queries.js'
import { MAX_WINDOWS, windowRange } from '../../application/windows.js'
import type { Config } from '../../config.js'
import { toolActionOf } from '../../domain/workflow.js'
import type { WindowKind } from '../args.js'
import { withViews } from '../data-folder.js'
import { UsageError } from '../errors.js'
import { fields, percent, table } from '../format.js'
import { type Context, done, type Outcome } from '../outcome.js'

export interface SurvivalRange {
  readonly window: WindowKind
  readonly from: string | undefined
  readonly to: string | undefined
  readonly workflow: string | undefined
  readonly agentId: string | undefined
  readonly environment: string | undefined
  readonly asOf?: Moment
}

/** Window starts shown short: the hour for hour windows, the day for day windows. */
const label = (start: string, window: WindowKind): string =>
  window === 'hour' ? `${start.slice(0, 16)}Z` : start.slice(0, 10)

const trendText = (trend: Trend, window: WindowKind): string => {
  const { latest, previous, change } = trend
  if (latest === null) return 'no adversarial branch ran'
  const now = `${percent(latest.survivalRate)} in ${label(latest.start, window)}`
  if (previous === null || change === null) return `${now} (no earlier window to compare)`
  const points = Math.round(change * 1000) / 10
  return `${now}, ${points > 0 ? '+' : ''}${points} points against ${percent(previous.survivalRate)} in ${label(previous.start, window)}`
}

const mostFailedText = (f: SurvivalFigures): string =>
  f.mostFailed.map((k) => `${k.kind} ${k.failed} of ${k.branches}`).join(', ') || 'none failed'

const seriesText = (report: BranchSurvival): string =>
  table(
    [
      { header: 'WINDOW' },
      { header: 'RUNS', align: 'right' },
      { header: 'PASSED', align: 'right' },
      { header: 'BRANCHES', align: 'right' },
      { header: 'SURVIVED', align: 'right' },
      { header: 'RATE', align: 'right' },
      { header: 'FAILED MOST' },
    ],
    report.series.map((w) => [
      label(w.start, report.window),
      String(w.runs),
      String(w.runsPassed),
      String(w.adversarialBranches),
      String(w.survived),
      percent(w.survivalRate),
      w.mostFailed[0]?.kind ?? '-',
    ]),
  )

const breakdownText = (
  header: string,
  rows: ReadonlyArray<SurvivalFigures & { readonly trend: Trend; readonly name: string }>,
  window: WindowKind,
): string =>
  table(
    [
      { header },
      { header: 'RUNS', align: 'right' },
      { header: 'PASSED', align: 'right' },
      { header: 'BRANCHES', align: 'right' },
      { header: 'RATE', align: 'right' },
      { header: 'FAILED MOST' },
      { header: 'TREND' },
    ],
    rows.map((r) => [
      r.name,
      String(r.runs),
      String(r.runsPassed),
      String(r.adversarialBranches),
      percent(r.survivalRate),
      mostFailedText(r),
      trendText(r.trend, window),
    ]),
  )

const totalsText = (report: BranchSurvival): string => {
  const t = report.totals
  return fields([
    ['simulation runs', `${t.runs} (${t.runsPassed} passed)`],
    [
      'adversarial branches',
      `${t.survived} of ${t.adversarialBranches} survived (${percent(t.survivalRate)})`,
    ],
    ...Object.entries(t.byKind).map(
      ([kind, k]) =>
        [`  ${kind}`, `${k.survived} of ${k.branches} survived (${percent(k.survivalRate)})`] as const,
    ),
    ['failed most', mostFailedText(t)],
    ['trend', trendText(t.trend, report.window)],
  ])
}

/** `survival`: branch survival per window, the range summed, and per workflow and agent with their trends. */
export const survivalCommand = (config: Config, range: SurvivalRange, context: Context): Promise<Outcome> => {
  /** The window starts of the range, its default end the time of --as-of when given; a bad range is a usage error. */
  const startsAt = (now: Date): readonly string[] => {
    const found = windowRange(range.window, range.from, range.to, now)
    if ('reversed' in found) throw new UsageError('--from: must not be after --to (default: now)')
    if ('tooMany' in found)
      throw new UsageError(
        `the range holds ${found.tooMany} ${range.window} windows, at most ${MAX_WINDOWS}: narrow --from/--to`,
      )
    return found.starts
  }
  // a range too long is refused before the data folder is opened
  startsAt(context.now())
  const filter = {
    window: range.window,
    workflow: range.workflow === undefined ? undefined : (toolActionOf(range.workflow) ?? undefined),
    agentId: range.agentId,
    environment: range.environment,
  }
  return withViews(
    config,
    ['survival'],
    (runtime) => {
      const report = branchSurvival(
        runtime.views.survival,
        filter,
        startsAt(clockOf(runtime.moment, context.now())),
      )
      const narrowed = [
        report.workflow && `workflow ${report.workflow}`,
        report.agentId && `agent ${report.agentId}`,
        report.environment && `environment ${report.environment}`,
      ].filter(Boolean)
      const text = [
        `Branch survival${narrowed.length > 0 ? ` of ${narrowed.join(', ')}` : ''}, ${range.window} windows from ${report.start} to ${report.end} (as of ledger position ${report.asOf})`,
        '',
        seriesText(report),
        '',
        'The range summed',
        totalsText(report),
        '',
        breakdownText(
          'WORKFLOW',
          report.byWorkflow.map((w) => ({ ...w, name: w.workflow })),
          range.window,
        ),
        '',
        breakdownText(
          'AGENT',
          report.byAgent.map((a) => ({ ...a, name: a.agentId })),
          range.window,
        ),
      ].join('\n')
      return done(report, text)
    },
    range.asOf,
  )
}
