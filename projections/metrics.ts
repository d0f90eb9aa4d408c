import type { DomainEvent, ImpactClass, LedgerEvent } from '../src/domain/events.js'
import type { DocChange, DocReader, Projection } from './projection.js'

export type Counts = Record<string, number>
export type Durations = Record<string, number[]>
export type WindowKind = 'hour' | 'day'

/** How an action reached its end: it executed, it ended without executing, or a start on it was refused. */
export type EndOfAction = 'executed' | 'withdrawn' | 'superseded' | 'expired' | 'refused-at-gate'

/**
 * keys `hour:<YYYY-MM-DDTHH>` and `day:<YYYY-MM-DD>`: the headline metrics of one UTC window. An action reaches
 * an end when its proposal executes, when its proposal ends without executing (withdrawn, superseded by a newer
 * proposal of its agent, or expired under the policy's time limit on open proposals), or when a start on it is
 * refused at the execution gate. An unsafe action blocked before execution is a start refused at the gate, or
 * a proposal that ended without executing while its last verdict was a block.
 */
export interface WindowDoc {
  readonly kind: 'window'
  readonly window: WindowKind
  readonly start: string
  /** every verdict issued in the window */
  verdicts: number
  allowed: number
  blockedVerdicts: number
  /** the actions that reached an end in the window, by how: the base of unsafeRate */
  actionsEnded: { count: number; byEnd: Counts }
  /** unsafe actions blocked before execution, in the window of their end */
  unsafeBlocked: {
    count: number
    /** `refused-at-gate` or `ended-blocked` */
    byHow: Counts
    /** how the proposals that ended blocked ended: withdrawn, superseded or expired */
    byEnd: Counts
    /** the checks that failed in the last verdict of the proposals that ended blocked: one may fail several */
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

/** key `proposal:<proposalId>`: what a verdict, an end or an execution needs to know about its proposal */
export interface ProposalFactsDoc {
  readonly kind: 'proposal'
  readonly agentId: string
  readonly tool: string
  readonly environment: string
  readonly impact: ImpactClass
  /**
   * its latest verdict: the decision and the checks it failed. An allow a kill switch revoked stands as a
   * block on `killSwitch`, which is what the gate would answer a start on it.
   */
  readonly lastVerdict: {
    readonly verdictId: string
    readonly decision: 'allow' | 'block'
    readonly failedChecks: readonly string[]
  } | null
  /** whether the action reached an end: executed, or ended without executing */
  readonly ended: boolean
}

/** key `awaiting`: the open proposals whose latest verdict is a block, now; never counted as blocked */
export interface AwaitingDoc {
  readonly kind: 'awaiting'
  readonly count: number
  /** by the checks their latest verdict failed: one may fail several */
  readonly byCheck: Counts
  readonly byEnvironment: Counts
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

export type MetricsDoc = WindowDoc | ProposalFactsDoc | ExecDoc | AwaitingDoc

export const metricsKeys = {
  hour: (at: string) => `hour:${at.slice(0, 13)}`,
  day: (at: string) => `day:${at.slice(0, 10)}`,
  proposal: (proposalId: string) => `proposal:${proposalId}`,
  exec: (proposalId: string) => `exec:${proposalId}`,
  awaiting: () => 'awaiting',
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
 * Share of the actions that reached an end in the window that were unsafe and blocked before execution; null
 * when none ended. Both counts are per end, in the window of the end, so the rate never exceeds 1.
 */
export const unsafeRate = (doc: Pick<WindowDoc, 'actionsEnded' | 'unsafeBlocked'>): number | null =>
  doc.actionsEnded.count === 0 ? null : doc.unsafeBlocked.count / doc.actionsEnded.count

// ---------- evolve ----------

type Read = DocReader<MetricsDoc>
type Change = DocChange<MetricsDoc>

export const emptyUnsafeBlocked = (): WindowDoc['unsafeBlocked'] => ({
  count: 0,
  byHow: {},
  byEnd: {},
  byCheck: {},
  byAgent: {},
  byTool: {},
  byEnvironment: {},
  byImpact: {},
})

/** The start of the UTC hour or day that holds a moment. */
export const windowStartOf = (window: WindowKind, at: string): string =>
  window === 'hour' ? `${at.slice(0, 13)}:00:00.000Z` : `${at.slice(0, 10)}T00:00:00.000Z`

const emptyWindow = (window: WindowKind, at: string): WindowDoc => ({
  kind: 'window',
  window,
  start: windowStartOf(window, at),
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

// ---------- awaiting evidence: a gauge of now ----------

/** An open proposal whose latest verdict is a block is awaiting evidence, not blocked. */
const isAwaiting = (facts: ProposalFactsDoc | undefined): facts is ProposalFactsDoc =>
  facts !== undefined && !facts.ended && facts.lastVerdict?.decision === 'block'

const addAwaiting = (doc: AwaitingDoc, facts: ProposalFactsDoc, n: 1 | -1): AwaitingDoc => ({
  kind: 'awaiting',
  count: doc.count + n,
  byCheck: (facts.lastVerdict?.failedChecks ?? []).reduce((c, check) => plus(c, check, n), doc.byCheck),
  byEnvironment: plus(doc.byEnvironment, facts.environment, n),
})

/** The awaiting gauge once a proposal's facts change from `before` to `after`; none when it is unchanged. */
const awaitingChange = (
  read: Read,
  before: ProposalFactsDoc | undefined,
  after: ProposalFactsDoc,
): Change[] => {
  const was = isAwaiting(before)
  const is = isAwaiting(after)
  if (!was && !is) return []
  const found = read(metricsKeys.awaiting())
  let doc: AwaitingDoc =
    found?.kind === 'awaiting' ? found : { kind: 'awaiting', count: 0, byCheck: {}, byEnvironment: {} }
  if (was) doc = addAwaiting(doc, before, -1)
  if (is) doc = addAwaiting(doc, after, 1)
  return [[metricsKeys.awaiting(), doc]]
}

// ---------- ends ----------

const ended = (w: WindowDoc['actionsEnded'], end: EndOfAction): WindowDoc['actionsEnded'] => ({
  count: w.count + 1,
  byEnd: plus(w.byEnd, end),
})

/** One unsafe action blocked before execution: a refused start, or a proposal that ended blocked. */
const unsafeCounted = (
  unsafe: WindowDoc['unsafeBlocked'],
  facts: ProposalFactsDoc,
  end: EndOfAction,
): WindowDoc['unsafeBlocked'] => {
  const refused = end === 'refused-at-gate'
  const failedChecks = refused ? [] : (facts.lastVerdict?.failedChecks ?? [])
  return {
    count: unsafe.count + 1,
    byHow: plus(unsafe.byHow, refused ? 'refused-at-gate' : 'ended-blocked'),
    byEnd: refused ? unsafe.byEnd : plus(unsafe.byEnd, end),
    byCheck: failedChecks.reduce((c, check) => plus(c, check), unsafe.byCheck),
    byAgent: plus(unsafe.byAgent, facts.agentId),
    byTool: plus(unsafe.byTool, facts.tool),
    byEnvironment: plus(unsafe.byEnvironment, facts.environment),
    byImpact: plus(unsafe.byImpact, facts.impact),
  }
}

/**
 * A proposal that ends without executing: counted among the actions that ended, and as an unsafe action
 * blocked when its last verdict was a block. A proposal already ended (executed, say) ends only once.
 */
const proposalEnds = (read: Read, proposalId: string, at: string, end: EndOfAction): Change[] => {
  const facts = readFacts(read, proposalId)
  if (!facts || facts.ended) return []
  const blocked = facts.lastVerdict?.decision === 'block'
  const after: ProposalFactsDoc = { ...facts, ended: true }
  return [
    ...updateWindows(read, [
      [
        at,
        (doc) => ({
          ...doc,
          actionsEnded: ended(doc.actionsEnded, end),
          unsafeBlocked: blocked ? unsafeCounted(doc.unsafeBlocked, facts, end) : doc.unsafeBlocked,
        }),
      ],
    ]),
    ...awaitingChange(read, facts, after),
    [metricsKeys.proposal(proposalId), after],
  ]
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
        lastVerdict: null,
        ended: false,
      }
      return [[metricsKeys.proposal(proposalId), facts]]
    }
    case 'VerdictIssued': {
      const { proposalId, verdictId, decision, impact, checks } = event.data
      const facts = readFacts(read, proposalId)
      const windows = updateWindows(read, [
        [
          at,
          (doc) => ({
            ...doc,
            verdicts: doc.verdicts + 1,
            allowed: doc.allowed + (decision === 'allow' ? 1 : 0),
            blockedVerdicts: doc.blockedVerdicts + (decision === 'allow' ? 0 : 1),
          }),
        ],
      ])
      // a verdict issued once the action ended does not change how it ended
      if (!facts || facts.ended) return windows
      const failedChecks = checks.filter((c) => c.status === 'fail').map((c) => c.check)
      const after: ProposalFactsDoc = { ...facts, impact, lastVerdict: { verdictId, decision, failedChecks } }
      return [...windows, ...awaitingChange(read, facts, after), [metricsKeys.proposal(proposalId), after]]
    }
    case 'VerdictRevoked': {
      const { proposalId, verdictId } = event.data
      const facts = readFacts(read, proposalId)
      if (!facts || facts.ended || facts.lastVerdict?.verdictId !== verdictId) return []
      const after: ProposalFactsDoc = {
        ...facts,
        lastVerdict: { verdictId, decision: 'block', failedChecks: ['killSwitch'] },
      }
      return [...awaitingChange(read, facts, after), [metricsKeys.proposal(proposalId), after]]
    }
    case 'ProposalWithdrawn':
      return proposalEnds(
        read,
        event.data.proposalId,
        at,
        event.data.supersededBy ? 'superseded' : 'withdrawn',
      )
    case 'ProposalExpired':
      return proposalEnds(read, event.data.proposalId, at, 'expired')
    case 'ExecutionStarted': {
      const { proposalId } = event.data
      const facts = readFacts(read, proposalId)
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
      // the action reached its end by executing: never an unsafe action blocked, whatever its verdicts were
      const end: Change[] = facts.ended
        ? []
        : [
            ...updateWindows(read, [
              [at, (doc) => ({ ...doc, actionsEnded: ended(doc.actionsEnded, 'executed') })],
            ]),
            ...awaitingChange(read, facts, { ...facts, ended: true }),
            [metricsKeys.proposal(proposalId), { ...facts, ended: true }],
          ]
      return [...end, [metricsKeys.exec(proposalId), exec]]
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
              actionsEnded: ended(doc.actionsEnded, 'refused-at-gate'),
              unsafeBlocked: facts
                ? unsafeCounted(doc.unsafeBlocked, facts, 'refused-at-gate')
                : {
                    ...doc.unsafeBlocked,
                    count: doc.unsafeBlocked.count + 1,
                    byHow: plus(doc.unsafeBlocked.byHow, 'refused-at-gate'),
                  },
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
  version: 3,
  evolve,
}
