import type { DataOf, DomainEvent, ImpactClass, LedgerEvent } from '../src/domain/events.js'
import type { DocChange, DocReader, Projection } from './projection.js'

export type Counts = Record<string, number>
export type Durations = Record<string, number[]>
export type WindowKind = 'hour' | 'day'

/** keys `hour:<YYYY-MM-DDTHH>` and `day:<YYYY-MM-DD>`: the headline metrics of one UTC window */
export interface WindowDoc {
  readonly kind: 'window'
  readonly window: WindowKind
  readonly start: string
  /** every verdict issued in the window */
  verdicts: number
  allowed: number
  blockedVerdicts: number
  /** distinct proposals that received at least one verdict in the window: the base of unsafeRate */
  proposalsDecided: number
  /** proposals whose first block verdict fell in the window, each counted once */
  unsafeBlocked: {
    count: number
    byCheck: Counts
    byAgent: Counts
    byTool: Counts
    byEnvironment: Counts
    byImpact: Counts
  }
  /** execution starts the gate refused: nothing ran; by the rule broken, agent, tool and environment */
  refusedAtGate: { count: number; byRule: Counts; byAgent: Counts; byTool: Counts; byEnvironment: Counts }
  /** executions that failed although they cited a valid allow (no violation was recorded) */
  failedDespiteAllow: number
  violations: { count: number; byKind: Counts; byAgent: Counts }
  /** rollbacks completed in the window after a failed execution; durations from failure to completion */
  recoveries: {
    count: number
    durationsSeconds: number[]
    byAgent: Durations
    byTool: Durations
    byEnvironment: Durations
  }
}

/** key `proposal:<proposalId>`: what a verdict or execution needs to know about its proposal */
export interface ProposalFactsDoc {
  readonly kind: 'proposal'
  readonly agentId: string
  readonly tool: string
  readonly environment: string
  readonly impact: ImpactClass
  readonly firstBlockedAt: string | null
  /** the windows of its latest verdict, so that proposalsDecided counts it once per window */
  readonly lastDecided: { readonly hour: string; readonly day: string } | null
}

/** key `exec:<proposalId>`: the latest execution of the proposal */
export interface ExecDoc {
  readonly kind: 'exec'
  readonly executionId: string
  readonly agentId: string
  readonly tool: string
  readonly environment: string
  readonly violation: boolean
  readonly failedAt: string | null
  /** whether its failure was counted as failedDespiteAllow, to take back if a violation follows */
  readonly countedDespiteAllow: boolean
  readonly recoveredAt: string | null
}

export type MetricsDoc = WindowDoc | ProposalFactsDoc | ExecDoc

export const metricsKeys = {
  hour: (at: string) => `hour:${at.slice(0, 13)}`,
  day: (at: string) => `day:${at.slice(0, 10)}`,
  proposal: (proposalId: string) => `proposal:${proposalId}`,
  exec: (proposalId: string) => `exec:${proposalId}`,
} as const

export interface RecoverySummary {
  readonly count: number
  readonly p50: number | null
  readonly p90: number | null
  readonly max: number | null
}

/** Nearest-rank percentile of an ascending list: the smallest value with at least p of the list at or below it. */
const nearestRank = (sorted: readonly number[], p: number): number | null =>
  sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1] ?? null

export const summarizeRecovery = (durationsSeconds: readonly number[]): RecoverySummary => {
  const sorted = [...durationsSeconds].sort((a, b) => a - b)
  return {
    count: sorted.length,
    p50: nearestRank(sorted, 0.5),
    p90: nearestRank(sorted, 0.9),
    max: sorted.at(-1) ?? null,
  }
}

/**
 * Share of the proposals decided in the window whose first block fell in it; null when none were
 * decided. Both counts are per distinct proposal, so the rate never exceeds 1.
 */
export const unsafeRate = (doc: Pick<WindowDoc, 'proposalsDecided' | 'unsafeBlocked'>): number | null =>
  doc.proposalsDecided === 0 ? null : doc.unsafeBlocked.count / doc.proposalsDecided

// ---------- evolve ----------

type Read = DocReader<MetricsDoc>
type Change = DocChange<MetricsDoc>

const emptyWindow = (window: WindowKind, at: string): WindowDoc => ({
  kind: 'window',
  window,
  start: window === 'hour' ? `${at.slice(0, 13)}:00:00.000Z` : `${at.slice(0, 10)}T00:00:00.000Z`,
  verdicts: 0,
  allowed: 0,
  blockedVerdicts: 0,
  proposalsDecided: 0,
  unsafeBlocked: { count: 0, byCheck: {}, byAgent: {}, byTool: {}, byEnvironment: {}, byImpact: {} },
  refusedAtGate: { count: 0, byRule: {}, byAgent: {}, byTool: {}, byEnvironment: {} },
  failedDespiteAllow: 0,
  violations: { count: 0, byKind: {}, byAgent: {} },
  recoveries: { count: 0, durationsSeconds: [], byAgent: {}, byTool: {}, byEnvironment: {} },
})

/** Each update returns a new window and copies only the parts it changes: a window is never copied whole. */
const plus = (counts: Counts, key: string, n = 1): Counts => ({ ...counts, [key]: (counts[key] ?? 0) + n })

/** The list with the value inserted after every value not above it. */
const withSorted = (list: readonly number[], value: number): number[] => {
  const index = list.findIndex((v) => v > value)
  return index === -1 ? [...list, value] : [...list.slice(0, index), value, ...list.slice(index)]
}

const withDuration = (byKey: Durations, key: string, value: number): Durations => ({
  ...byKey,
  [key]: withSorted(byKey[key] ?? [], value),
})

type WindowUpdate = readonly [at: string, update: (doc: WindowDoc) => WindowDoc]

/** Applies updates to the hour and day windows of their times, each window written once. */
const updateWindows = (read: Read, updates: readonly WindowUpdate[]): Change[] => {
  const changed = new Map<string, WindowDoc>()
  for (const [at, update] of updates) {
    for (const window of ['hour', 'day'] as const) {
      const key = metricsKeys[window](at)
      const found = read(key)
      const doc = changed.get(key) ?? (found?.kind === 'window' ? found : emptyWindow(window, at))
      changed.set(key, update(doc))
    }
  }
  return [...changed]
}

const readFacts = (read: Read, proposalId: string): ProposalFactsDoc | undefined => {
  const doc = read(metricsKeys.proposal(proposalId))
  return doc?.kind === 'proposal' ? doc : undefined
}

const readExec = (read: Read, proposalId: string): ExecDoc | undefined => {
  const doc = read(metricsKeys.exec(proposalId))
  return doc?.kind === 'exec' ? doc : undefined
}

const secondsBetween = (from: string, to: string): number => (Date.parse(to) - Date.parse(from)) / 1000

/** A proposal's first block, counted by the checks it failed and by what it was. */
const unsafeCounted = (
  unsafe: WindowDoc['unsafeBlocked'],
  verdict: DataOf<'VerdictIssued'>,
): WindowDoc['unsafeBlocked'] => {
  let byCheck = unsafe.byCheck
  for (const c of verdict.checks) if (c.status === 'fail') byCheck = plus(byCheck, c.check)
  return {
    count: unsafe.count + 1,
    byCheck,
    byAgent: plus(unsafe.byAgent, verdict.agentId),
    byTool: plus(unsafe.byTool, verdict.tool),
    byEnvironment: plus(unsafe.byEnvironment, verdict.environment),
    byImpact: plus(unsafe.byImpact, verdict.impact),
  }
}

const evolve = (read: Read, event: LedgerEvent<DomainEvent>): Change[] => {
  const at = event.recordedAt
  switch (event.type) {
    case 'ProposalSubmitted': {
      const { proposalId, agentId, tool, environment, expectedImpact } = event.data
      const facts: ProposalFactsDoc = {
        kind: 'proposal',
        agentId,
        tool,
        environment,
        impact: expectedImpact,
        firstBlockedAt: null,
        lastDecided: null,
      }
      return [[metricsKeys.proposal(proposalId), facts]]
    }
    case 'VerdictIssued': {
      const { proposalId, decision, agentId, tool, environment, impact } = event.data
      const facts = readFacts(read, proposalId)
      const decided = { hour: metricsKeys.hour(at), day: metricsKeys.day(at) }
      const firstBlock = decision === 'block' && !facts?.firstBlockedAt
      const windows = updateWindows(read, [
        [
          at,
          (doc) => ({
            ...doc,
            verdicts: doc.verdicts + 1,
            allowed: doc.allowed + (decision === 'allow' ? 1 : 0),
            blockedVerdicts: doc.blockedVerdicts + (decision === 'allow' ? 0 : 1),
            proposalsDecided:
              doc.proposalsDecided + (facts?.lastDecided?.[doc.window] !== decided[doc.window] ? 1 : 0),
            unsafeBlocked: firstBlock ? unsafeCounted(doc.unsafeBlocked, event.data) : doc.unsafeBlocked,
          }),
        ],
      ])
      const nextFacts: ProposalFactsDoc = {
        kind: 'proposal',
        agentId,
        tool,
        environment,
        impact,
        firstBlockedAt: facts?.firstBlockedAt ?? (decision === 'block' ? at : null),
        lastDecided: decided,
      }
      return [...windows, [metricsKeys.proposal(proposalId), nextFacts]]
    }
    case 'ExecutionStarted': {
      const facts = readFacts(read, event.data.proposalId)
      if (!facts) return []
      const exec: ExecDoc = {
        kind: 'exec',
        executionId: event.data.executionId,
        agentId: facts.agentId,
        tool: facts.tool,
        environment: facts.environment,
        // citing no verdict is a violation whether or not its record has arrived yet
        violation: event.data.verdictId === null,
        failedAt: null,
        countedDespiteAllow: false,
        recoveredAt: null,
      }
      return [[metricsKeys.exec(event.data.proposalId), exec]]
    }
    case 'ExecutionRefused': {
      const facts = readFacts(read, event.data.proposalId)
      const rules = [...new Set(event.data.reasons.map((r) => r.specification))]
      return updateWindows(read, [
        [
          at,
          (doc) => {
            const r = doc.refusedAtGate
            return {
              ...doc,
              refusedAtGate: {
                count: r.count + 1,
                byRule: rules.reduce((counts, rule) => plus(counts, rule), r.byRule),
                byAgent: facts ? plus(r.byAgent, facts.agentId) : r.byAgent,
                byTool: facts ? plus(r.byTool, facts.tool) : r.byTool,
                byEnvironment: facts ? plus(r.byEnvironment, facts.environment) : r.byEnvironment,
              },
            }
          },
        ],
      ])
    }
    case 'ViolationRecorded': {
      const { proposalId, kind, agentId } = event.data
      const exec = readExec(read, proposalId)
      const updates: WindowUpdate[] = [
        [
          at,
          (doc) => ({
            ...doc,
            violations: {
              count: doc.violations.count + 1,
              byKind: plus(doc.violations.byKind, kind),
              byAgent: plus(doc.violations.byAgent, agentId),
            },
          }),
        ],
      ]
      // the violation may be recorded after the failure was reported: take the failure back
      if (exec?.countedDespiteAllow && exec.failedAt) {
        updates.push([exec.failedAt, (doc) => ({ ...doc, failedDespiteAllow: doc.failedDespiteAllow - 1 })])
      }
      const changes = updateWindows(read, updates)
      if (!exec) return changes
      return [
        ...changes,
        [metricsKeys.exec(proposalId), { ...exec, violation: true, countedDespiteAllow: false }],
      ]
    }
    case 'ExecutionFailed': {
      const exec = readExec(read, event.data.proposalId)
      if (!exec || exec.failedAt) return []
      const despiteAllow = !exec.violation
      const windows = despiteAllow
        ? updateWindows(read, [[at, (doc) => ({ ...doc, failedDespiteAllow: doc.failedDespiteAllow + 1 })]])
        : []
      return [
        ...windows,
        [
          metricsKeys.exec(event.data.proposalId),
          { ...exec, failedAt: at, countedDespiteAllow: despiteAllow },
        ],
      ]
    }
    case 'RollbackCompleted': {
      const exec = readExec(read, event.data.proposalId)
      // a rollback of an execution that did not fail is no recovery from a failure
      if (!exec?.failedAt || exec.recoveredAt) return []
      const seconds = secondsBetween(exec.failedAt, at)
      const windows = updateWindows(read, [
        [
          at,
          (doc) => {
            const r = doc.recoveries
            const recoveries = {
              count: r.count + 1,
              durationsSeconds: withSorted(r.durationsSeconds, seconds),
              byAgent: withDuration(r.byAgent, exec.agentId, seconds),
              byTool: withDuration(r.byTool, exec.tool, seconds),
              byEnvironment: withDuration(r.byEnvironment, exec.environment, seconds),
            }
            return { ...doc, recoveries }
          },
        ],
      ])
      return [...windows, [metricsKeys.exec(event.data.proposalId), { ...exec, recoveredAt: at }]]
    }
    default:
      return []
  }
}

/** The headline metrics as time series: unsafe actions blocked before execution, and time to recovery. */
export const metrics: Projection<MetricsDoc> = {
  name: 'metrics',
  version: 2,
  evolve,
}
