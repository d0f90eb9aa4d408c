import type { RecoverySummary } from '../../../projections/metrics.js'
import { metricsKeys } from '../../../projections/metrics.js'
import {
  awaitingNow,
  isWindow,
  type PresentedFigures,
  presentFigures,
  sumWindows,
  zeroFigures,
} from '../../../projections/metrics-summary.js'
import { ageSeconds, type OpenActionDoc } from '../../../projections/open-actions.js'
import { clockOf, type Moment } from '../../application/as-of.js'
import { MAX_WINDOWS, WINDOW_MS, windowRange } from '../../application/windows.js'
import type { Config } from '../../config.js'
import type { ShadowReport } from '../../decision/shadow.js'
import type { WindowKind } from '../args.js'
import { withViews } from '../data-folder.js'
import { UsageError } from '../errors.js'
import { breakdown, countsLines, duration, fields, percent, table } from '../format.js'
import { type Context, done, type Outcome } from '../outcome.js'
import { findOpenActions } from './open-actions.js'

type Presented = PresentedFigures
type Awaiting = ReturnType<typeof awaitingNow>

export interface MetricsRange {
  readonly window: WindowKind
  readonly from: string | undefined
  readonly to: string | undefined
  readonly asOf?: Moment | undefined
}

/** The window starts of a range: every window that holds a moment of it, empty ones included. */
export const windowStarts = (range: MetricsRange, now: Date): string[] => {
  const found = windowRange(range.window, range.from, range.to, now)
  if ('reversed' in found) throw new UsageError('--from: must not be after --to (default: now)')
  if ('tooMany' in found)
    throw new UsageError(
      `the range holds ${found.tooMany} ${range.window} windows, at most ${MAX_WINDOWS}: narrow --from/--to`,
    )
  return [...found.starts]
}

const recoveryText = (r: RecoverySummary): string =>
  r.count === 0
    ? 'none'
    : `p50 ${duration(r.p50)}, p90 ${duration(r.p90)}, max ${duration(r.max)} (${r.count} recover${r.count === 1 ? 'y' : 'ies'})`

const recoveriesBy = (byKey: Record<string, RecoverySummary>): string =>
  Object.entries(byKey)
    .map(([key, r]) => `${key} p50 ${duration(r.p50)} (${r.count})`)
    .join(', ') || '-'

/** Window starts shown short: the hour for hour windows, the day for day windows. */
const label = (start: string, window: WindowKind): string =>
  window === 'hour' ? `${start.slice(0, 16)}Z` : start.slice(0, 10)

type Failed = Extract<OpenActionDoc, { state: 'failed' }> & { readonly ageSeconds: number }

const seriesText = (series: readonly Presented[], window: WindowKind): string =>
  table(
    [
      { header: 'WINDOW' },
      { header: 'VERDICTS', align: 'right' },
      { header: 'ALLOWED', align: 'right' },
      { header: 'BLOCKED', align: 'right' },
      { header: 'ENDED', align: 'right' },
      { header: 'UNSAFE BLOCKED', align: 'right' },
      { header: 'RATE', align: 'right' },
      { header: 'FAILED DESPITE ALLOW', align: 'right' },
      { header: 'VIOLATIONS', align: 'right' },
      { header: 'RECOVERIES', align: 'right' },
      { header: 'P50', align: 'right' },
      { header: 'P90', align: 'right' },
      { header: 'MAX', align: 'right' },
    ],
    series.map((w) => [
      label(w.start, window),
      String(w.verdicts),
      String(w.allowed),
      String(w.blockedVerdicts),
      String(w.actionsEnded.count),
      String(w.unsafeBlocked.count),
      percent(w.unsafeRate),
      String(w.failedDespiteAllow),
      String(w.violations.count),
      String(w.timeToRecovery.overall.count),
      duration(w.timeToRecovery.overall.p50),
      duration(w.timeToRecovery.overall.p90),
      duration(w.timeToRecovery.overall.max),
    ]),
  )

const totalsText = (t: Presented, awaiting: Awaiting): string =>
  fields([
    [
      'unsafe actions blocked',
      `${t.unsafeBlocked.count} of ${t.actionsEnded.count} ended (${percent(t.unsafeRate)})`,
    ],
    ['  how', breakdown(t.unsafeBlocked.byHow)],
    ['  ended by', breakdown(t.unsafeBlocked.byEnd)],
    ['  by failed check', breakdown(t.unsafeBlocked.byCheck)],
    ['  by agent', breakdown(t.unsafeBlocked.byAgent)],
    ['  by tool', breakdown(t.unsafeBlocked.byTool)],
    ['  by environment', breakdown(t.unsafeBlocked.byEnvironment)],
    ['  by impact', breakdown(t.unsafeBlocked.byImpact)],
    ['actions ended', `${t.actionsEnded.count} (${breakdown(t.actionsEnded.byEnd)})`],
    ['awaiting evidence now', `${awaiting.count} open and blocked (${breakdown(awaiting.byCheck)})`],
    ['failed despite an allow', String(t.failedDespiteAllow)],
    ['violations', `${t.violations.count} (${breakdown(t.violations.byKind)})`],
    ['time to recovery', recoveryText(t.timeToRecovery.overall)],
    ['  by agent', recoveriesBy(t.timeToRecovery.byAgent)],
    ['  by tool', recoveriesBy(t.timeToRecovery.byTool)],
    ['  by environment', recoveriesBy(t.timeToRecovery.byEnvironment)],
  ])

const failuresText = (failures: readonly Failed[]): string =>
  failures.length === 0
    ? 'Unrecovered failures: none'
    : [
        `Unrecovered failures (${failures.length})`,
        table(
          [
            { header: 'PROPOSAL' },
            { header: 'AGENT' },
            { header: 'TOOL.ACTION' },
            { header: 'RESOURCE' },
            { header: 'ENV' },
            { header: 'FAILED AT' },
            { header: 'AGE', align: 'right' },
            { header: 'ROLLBACK' },
            { header: 'OVERDUE' },
          ],
          failures.map((f) => [
            f.proposalId,
            f.agentId,
            `${f.tool}.${f.action}`,
            f.resource,
            f.environment,
            f.failedAt,
            duration(f.ageSeconds),
            f.rollback,
            f.recoveryOverdue ? 'yes' : 'no',
          ]),
        ),
      ].join('\n')

const shadowText = (shadow: ShadowReport | null): string =>
  shadow === null
    ? 'Shadow policy: none'
    : [
        `Shadow policy version ${shadow.version} (owner ${shadow.owner}), decided since ledger position ${shadow.since}, as of ${shadow.position}`,
        fields([
          ['compared', `${shadow.compared} proposals with a live verdict`],
          ['would flip allow>block', String(shadow.allowToBlock)],
          ['would flip block>allow', String(shadow.blockToAllow)],
        ]),
        ...countsLines('AGENT', shadow.byAgent),
        ...countsLines('TOOL.ACTION', shadow.byTool),
        ...countsLines('ENVIRONMENT', shadow.byEnvironment),
        ...countsLines('CHECK CHANGED', shadow.byCheck),
      ].join('\n')

/** `metrics`: the two headline metrics per window, the range summed, and the failures not yet recovered. */
export const metricsCommand = (config: Config, range: MetricsRange, context: Context): Promise<Outcome> => {
  // a range too long is refused before the data folder is opened
  windowStarts(range, context.now())
  return withViews(
    config,
    ['metrics', 'openActions'],
    async (runtime) => {
      const now = clockOf(runtime.moment, context.now())
      const starts = windowStarts(range, now)
      const step = WINDOW_MS[range.window]
      const endOf = (start: string) => new Date(Date.parse(start) + step).toISOString()
      const figures = starts.map((start) => {
        const doc = runtime.views.metrics.get(metricsKeys[range.window](start))
        return isWindow(doc) ? doc : zeroFigures()
      })
      const series = figures.map((f, i) => {
        const start = starts[i] ?? ''
        return presentFigures(f, start, endOf(start))
      })
      const first = starts[0] ?? now.toISOString()
      const totals = presentFigures(sumWindows(figures), first, endOf(starts.at(-1) ?? first))
      const unrecoveredFailures = findOpenActions(runtime, (doc) => doc.state === 'failed').flatMap((doc) =>
        doc.state === 'failed' ? [{ ...doc, ageSeconds: ageSeconds(doc, now) }] : [],
      )
      const awaitingEvidence = awaitingNow(runtime.views.metrics.get(metricsKeys.awaiting()))
      const asOf = runtime.views.metrics.checkpoint()
      // the shadow policy's counts are of now: a past moment shows none
      let shadowPolicy: ShadowReport | null = null
      if (range.asOf === undefined) {
        await runtime.shadow.catchUp()
        shadowPolicy = runtime.shadow.report()
      }
      const text = [
        `Headline metrics, ${range.window} windows from ${totals.start} to ${totals.end} (as of ledger position ${asOf})`,
        '',
        seriesText(series, range.window),
        '',
        'The range summed',
        totalsText(totals, awaitingEvidence),
        '',
        failuresText(unrecoveredFailures),
        ...(range.asOf === undefined ? ['', shadowText(shadowPolicy)] : []),
      ].join('\n')
      return done(
        { window: range.window, series, totals, awaitingEvidence, unrecoveredFailures, asOf, shadowPolicy },
        text,
      )
    },
    range.asOf,
  )
}
