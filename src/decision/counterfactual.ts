import type {
  CheckName,
  CheckResult,
  DataOf,
  ImpactClass,
  LedgerEvent,
  PolicyDraft,
} from '../domain/events.js'
import { toLedgerEvent } from '../domain/events.js'
import { MemoryDocStore } from '../store/memory/doc-store.js'
import type { EventStore } from '../store/port.js'
import { decideAndEvolve, type Output } from './decide.js'
import { everyEvent } from './replay.js'
import { DECISION_ACTOR } from './service.js'
import { World } from './world.js'

/**
 * Counterfactual policy replay: the ledger decided again in memory, as `replay --check` does, but with another
 * policy in force from the start of a range. Nothing is written anywhere: the world lives in a memory store
 * that is dropped when the answer is built.
 *
 * - Up to the range the ledger is decided as it was, under the policies it published.
 * - At the first event of the range the counterfactual policy is put in force, as if published then: every
 *   proposal still open is decided again under it.
 * - Every PolicyPublished inside the range is ignored (listed in `ignoredPolicyVersions`): the counterfactual
 *   policy stays in force to the end of the range.
 * - For each proposal the counterfactual decided in the range, the verdict it would have left standing at the
 *   end of the range is compared with the last verdict the ledger records up to the end of the range. A flip
 *   is a proposal whose decision differs; its checks are those whose status differs.
 * - The facts of the ledger (executions, approvals, simulations, ...) stay as recorded: a proposal blocked by
 *   the counterfactual policy that did execute is a flip, the answer to "which would it have blocked".
 */

export interface CounterfactualRange {
  /** the first position the counterfactual policy is in force at (default: the start of the ledger) */
  readonly from?: number
  /** the last position decided (default: the head) */
  readonly to?: number
}

export interface ChangedCheck {
  readonly check: CheckName
  readonly recorded: CheckResult['status'] | null
  readonly counterfactual: CheckResult['status'] | null
  /** why the counterfactual check came out as it did */
  readonly reason: string | null
}

export type Decision = 'allow' | 'block'

export interface Flip {
  readonly proposalId: string
  readonly agentId: string
  readonly tool: string
  readonly action: string
  readonly environment: string
  readonly impact: ImpactClass
  readonly recorded: Decision
  readonly counterfactual: Decision
  readonly recordedPolicyVersion: number | null
  readonly changedChecks: ChangedCheck[]
}

export interface FlipCounts {
  allowToBlock: number
  blockToAllow: number
}

/** Flips counted by direction, and by agent, tool (`tool.action`), environment and changed check. */
export interface FlipTally {
  allowToBlock: number
  blockToAllow: number
  byAgent: Record<string, FlipCounts>
  byTool: Record<string, FlipCounts>
  byEnvironment: Record<string, FlipCounts>
  /** per check whose status changed: one flip may change several */
  byCheck: Record<string, FlipCounts>
}

export interface CounterfactualReport extends Readonly<FlipTally> {
  readonly from: number
  readonly to: number
  readonly policyVersion: number
  /** the events read and decided, from the start of the ledger to `to` */
  readonly events: number
  /** policies the ledger published inside the range, not put in force */
  readonly ignoredPolicyVersions: number[]
  /** proposals the counterfactual decided in the range and the ledger holds a verdict for */
  readonly compared: number
  readonly flips: Flip[]
}

const NAMESPACE = 'counterfactual'
/** the name the counterfactual policy is put in force under: it was never published by anyone */
export const COUNTERFACTUAL_PUBLISHER = 'counterfactual'

type Verdict = Omit<DataOf<'VerdictIssued'>, 'signature'>
/** What a flip compares of the verdict the ledger recorded. */
export type RecordedVerdict = Pick<Verdict, 'decision' | 'checks' | 'policyVersion'>

/**
 * Puts a policy in force in a world of its own, as if the ledger had published it at `at` (whose position and
 * time it takes): every open proposal is decided again under it. The ledger's own PolicyPublished events are
 * then for the caller to keep out of that world while the policy is to stay in force.
 */
export const putInForce = (
  world: World,
  at: LedgerEvent,
  policy: DataOf<'PolicyPublished'>,
  name: string,
): Output[] =>
  decideAndEvolve(
    world,
    {
      ...at,
      id: `${name}-policy-${policy.version}`,
      type: 'PolicyPublished',
      data: policy,
    } as LedgerEvent,
    'what-if',
  )

/** The policy a ledger published under a version, or null. */
export const publishedPolicy = async (store: EventStore, version: number): Promise<PolicyDraft | null> => {
  for await (const e of everyEvent(store)) {
    if (e.type !== 'PolicyPublished') continue
    const {
      publishedBy: _by,
      approvedBy: _approved,
      ...draft
    } = toLedgerEvent(e).data as DataOf<'PolicyPublished'>
    if (draft.version === version) return draft
  }
  return null
}

const changedChecks = (was: readonly CheckResult[], now: readonly CheckResult[]): ChangedCheck[] => {
  const before = new Map(was.map((c) => [c.check, c]))
  const after = new Map(now.map((c) => [c.check, c]))
  const names = [...new Set([...before.keys(), ...after.keys()])]
  return names.flatMap((check) => {
    const a = before.get(check)?.status ?? null
    const b = after.get(check) ?? null
    return a === (b?.status ?? null)
      ? []
      : [{ check, recorded: a, counterfactual: b?.status ?? null, reason: b?.reason ?? null }]
  })
}

export const emptyTally = (): FlipTally => ({
  allowToBlock: 0,
  blockToAllow: 0,
  byAgent: {},
  byTool: {},
  byEnvironment: {},
  byCheck: {},
})

const count = (into: Record<string, FlipCounts>, key: string, flip: Flip, by: 1 | -1) => {
  const counts = into[key] ?? { allowToBlock: 0, blockToAllow: 0 }
  if (flip.counterfactual === 'block') counts.allowToBlock += by
  else counts.blockToAllow += by
  if (counts.allowToBlock === 0 && counts.blockToAllow === 0) delete into[key]
  else into[key] = counts
}

/** Counts a flip into a tally (by -1: takes it out again, when the proposal was decided anew). */
export const tally = (into: FlipTally, flip: Flip, by: 1 | -1 = 1): FlipTally => {
  if (flip.counterfactual === 'block') into.allowToBlock += by
  else into.blockToAllow += by
  count(into.byAgent, flip.agentId, flip, by)
  count(into.byTool, `${flip.tool}.${flip.action}`, flip, by)
  count(into.byEnvironment, flip.environment, flip, by)
  for (const changed of flip.changedChecks) count(into.byCheck, changed.check, flip, by)
  return into
}

/** The flip between the verdict the ledger recorded and the one decided under another policy; null: none. */
export const flipOf = (proposalId: string, was: RecordedVerdict, now: Verdict): Flip | null =>
  was.decision === now.decision
    ? null
    : {
        proposalId,
        agentId: now.agentId,
        tool: now.tool,
        action: now.action,
        environment: now.environment,
        impact: now.impact,
        recorded: was.decision,
        counterfactual: now.decision,
        recordedPolicyVersion: was.policyVersion,
        changedChecks: changedChecks(was.checks, now.checks),
      }

/** Re-decides the ledger up to `range.to` with `policy` in force from `range.from`, and reports every flip. */
export const counterfactualReplay = async (
  store: EventStore,
  policy: PolicyDraft,
  range: CounterfactualRange = {},
): Promise<CounterfactualReport> => {
  const head = (await store.head()).position
  const from = Math.max(1, range.from ?? 1)
  const to = Math.min(head, range.to ?? head)
  const docs = new MemoryDocStore()
  let world = World.over(docs, NAMESPACE)
  const recorded = new Map<string, Verdict>()
  const counterfactual = new Map<string, Verdict>()
  const ignoredPolicyVersions: number[] = []
  let inForce = false
  let events = 0
  for await (const stored of everyEvent(store)) {
    if (stored.position > to) break
    events += 1
    const event = toLedgerEvent(stored)
    if (event.type === 'VerdictIssued' && stored.metadata.actor === DECISION_ACTOR) {
      recorded.set(event.data.proposalId, event.data)
    }
    const inRange = stored.position >= from
    if (inRange && !inForce) {
      inForce = true
      const data = { ...policy, publishedBy: COUNTERFACTUAL_PUBLISHER, approvedBy: null }
      for (const o of putInForce(world, event, data, NAMESPACE))
        if (o.type === 'VerdictIssued') counterfactual.set(o.data.proposalId, o.data)
    }
    if (inRange && event.type === 'PolicyPublished') {
      ignoredPolicyVersions.push(event.data.version)
      continue
    }
    for (const o of decideAndEvolve(world, event, 'what-if')) {
      if (inRange && o.type === 'VerdictIssued') counterfactual.set(o.data.proposalId, o.data)
    }
    if (stored.position % 1000 === 0) {
      docs.commit(NAMESPACE, world.changed(), stored.position)
      world = World.over(docs, NAMESPACE)
    }
  }
  const flips: Flip[] = []
  let compared = 0
  for (const [proposalId, now] of counterfactual) {
    const was = recorded.get(proposalId)
    if (!was) continue
    compared += 1
    const flip = flipOf(proposalId, was, now)
    if (flip) flips.push(flip)
  }
  const counts = flips.reduce((into, flip) => tally(into, flip), emptyTally())
  return {
    from,
    to,
    policyVersion: policy.version,
    events,
    ignoredPolicyVersions,
    compared,
    ...counts,
    flips,
  }
}
