// The headline figures summed over windows and shown as the API and the command line both show them.
import {
  type AwaitingDoc,
  type Counts,
  type Durations,
  emptyUnsafeBlocked,
  type MetricsDoc,
  type RecoverySummary,
  summarizeRecovery,
  unsafeRate,
  type WindowDoc,
} from './metrics.js'

export type Figures = Omit<WindowDoc, 'kind' | 'window' | 'start'>

export const zeroFigures = (): Figures => ({
  verdicts: 0,
  allowed: 0,
  blockedVerdicts: 0,
  actionsEnded: { count: 0, byEnd: {} },
  unsafeBlocked: emptyUnsafeBlocked(),
  refusedAtGate: { count: 0, byRule: {}, byAgent: {}, byTool: {}, byEnvironment: {} },
  failedDespiteAllow: 0,
  violations: { count: 0, byKind: {}, byAgent: {} },
  recoveries: { count: 0, durationsSeconds: [], byAgent: {}, byTool: {}, byEnvironment: {} },
})

const addCounts = (into: Counts, from: Counts): void => {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n
}

const addDurations = (into: Durations, from: Durations): void => {
  for (const [key, list] of Object.entries(from)) into[key] = [...(into[key] ?? []), ...list]
}

/** Sums windows; recovery durations are pooled, so percentiles over the sum are exact. */
export const sumWindows = (windows: Iterable<Figures>): Figures => {
  const total = zeroFigures()
  for (const w of windows) {
    total.verdicts += w.verdicts
    total.allowed += w.allowed
    total.blockedVerdicts += w.blockedVerdicts
    total.actionsEnded.count += w.actionsEnded.count
    addCounts(total.actionsEnded.byEnd, w.actionsEnded.byEnd)
    const u = total.unsafeBlocked
    u.count += w.unsafeBlocked.count
    addCounts(u.byHow, w.unsafeBlocked.byHow)
    addCounts(u.byEnd, w.unsafeBlocked.byEnd)
    addCounts(u.byCheck, w.unsafeBlocked.byCheck)
    addCounts(u.byAgent, w.unsafeBlocked.byAgent)
    addCounts(u.byTool, w.unsafeBlocked.byTool)
    addCounts(u.byEnvironment, w.unsafeBlocked.byEnvironment)
    addCounts(u.byImpact, w.unsafeBlocked.byImpact)
    const g = total.refusedAtGate
    g.count += w.refusedAtGate.count
    addCounts(g.byRule, w.refusedAtGate.byRule)
    addCounts(g.byAgent, w.refusedAtGate.byAgent)
    addCounts(g.byTool, w.refusedAtGate.byTool)
    addCounts(g.byEnvironment, w.refusedAtGate.byEnvironment)
    total.failedDespiteAllow += w.failedDespiteAllow
    total.violations.count += w.violations.count
    addCounts(total.violations.byKind, w.violations.byKind)
    addCounts(total.violations.byAgent, w.violations.byAgent)
    const r = total.recoveries
    r.count += w.recoveries.count
    r.durationsSeconds.push(...w.recoveries.durationsSeconds)
    addDurations(r.byAgent, w.recoveries.byAgent)
    addDurations(r.byTool, w.recoveries.byTool)
    addDurations(r.byEnvironment, w.recoveries.byEnvironment)
  }
  return total
}

const summarizeEach = (byKey: Durations): Record<string, RecoverySummary> =>
  Object.fromEntries(Object.entries(byKey).map(([key, list]) => [key, summarizeRecovery(list)]))

/** The figures of a window (or of a sum of windows) as GET /v1/metrics/headline and the CLI show them. */
export const presentFigures = (figures: Figures, start: string, end: string) => ({
  start,
  end,
  verdicts: figures.verdicts,
  allowed: figures.allowed,
  blockedVerdicts: figures.blockedVerdicts,
  actionsEnded: figures.actionsEnded,
  unsafeBlocked: figures.unsafeBlocked,
  unsafeRate: unsafeRate(figures),
  refusedAtGate: figures.refusedAtGate,
  failedDespiteAllow: figures.failedDespiteAllow,
  violations: figures.violations,
  timeToRecovery: {
    overall: summarizeRecovery(figures.recoveries.durationsSeconds),
    byAgent: summarizeEach(figures.recoveries.byAgent),
    byTool: summarizeEach(figures.recoveries.byTool),
    byEnvironment: summarizeEach(figures.recoveries.byEnvironment),
  },
})

/** The open proposals awaiting evidence now: the gauge beside the blocked count, never part of it. */
export const awaitingNow = (doc: MetricsDoc | undefined): Omit<AwaitingDoc, 'kind'> =>
  doc?.kind === 'awaiting'
    ? { count: doc.count, byCheck: nonZero(doc.byCheck), byEnvironment: nonZero(doc.byEnvironment) }
    : { count: 0, byCheck: {}, byEnvironment: {} }

/** A gauge's breakdown without the keys that went back to zero. */
const nonZero = (counts: Counts): Counts =>
  Object.fromEntries(Object.entries(counts).filter(([, n]) => n !== 0))

export const isWindow = (doc: MetricsDoc | undefined): doc is WindowDoc => doc?.kind === 'window'
export type PresentedFigures = ReturnType<typeof presentFigures>
