import { BranchKind, type DomainEvent, type LedgerEvent } from '../src/domain/events.js'
import {
  type AdversarialKind,
  isAdversarial,
  type KindCount,
  type RunSurvival,
  runSurvival,
} from '../src/domain/survival.js'
import { type ToolAction, workflowName } from '../src/domain/workflow.js'
import { metricsKeys, type WindowKind, windowStartOf } from './metrics.js'
import type { DocChange, DocReader, Projection } from './projection.js'

/** Every adversarial branch kind, in the order of the vocabulary: the baseline shows only that the plan works. */
export const ADVERSARIAL_KINDS: readonly AdversarialKind[] = BranchKind.options.filter(
  (kind): kind is AdversarialKind => isAdversarial({ kind }),
)

/** What simulation runs said about survival, counted run by run through runSurvival. */
export interface SurvivalCounts {
  /** simulation runs recorded */
  readonly runs: number
  /** runs that ran at least one adversarial branch and survived every one */
  readonly runsPassed: number
  /** adversarial branches run */
  readonly adversarial: number
  /** adversarial branches survived */
  readonly survived: number
  /** per adversarial kind, every kind present: branches run (`runs`) and survived */
  readonly byKind: Readonly<Record<AdversarialKind, KindCount>>
}

/**
 * key `<hour|day>:<window>:<tool>.<action>:<environment>:<agentId>` (the window as in the metrics keys): the
 * simulation runs of one workflow, environment and agent recorded in one UTC hour or day. Tool, action and
 * environment hold no ':' or '.', so a prefix up to any of them names exactly those documents.
 */
export interface SurvivalWindowDoc extends SurvivalCounts, ToolAction {
  readonly kind: 'window'
  readonly window: WindowKind
  readonly start: string
  readonly environment: string
  readonly agentId: string
}

/** key `total:<tool>.<action>`: every run of a workflow, all time; present at zero from its registration */
export interface SurvivalTotalDoc extends SurvivalCounts, ToolAction {
  readonly kind: 'total'
}

/** key `proposal:<proposalId>`: the workflow, agent and environment a simulation of the proposal counts for */
export interface SimulatedProposalDoc extends ToolAction {
  readonly kind: 'proposal'
  readonly agentId: string
  readonly environment: string
}

export type SurvivalDoc = SurvivalWindowDoc | SurvivalTotalDoc | SimulatedProposalDoc

export const survivalKeys = {
  /** the documents of one window, narrowed to a workflow and an environment when given */
  window: (window: WindowKind, at: string, workflow?: ToolAction, environment?: string): string => {
    const base = `${metricsKeys[window](at)}:`
    if (workflow === undefined) return base
    const named = `${base}${workflowName(workflow)}:`
    return environment === undefined ? named : `${named}${environment}:`
  },
  doc: (window: WindowKind, at: string, proposal: Omit<SimulatedProposalDoc, 'kind'>): string =>
    `${survivalKeys.window(window, at, proposal, proposal.environment)}${proposal.agentId}`,
  total: (workflow?: ToolAction): string =>
    workflow === undefined ? 'total:' : `total:${workflowName(workflow)}`,
  proposal: (proposalId: string): string => `proposal:${proposalId}`,
} as const

export const zeroCounts = (): SurvivalCounts => ({
  runs: 0,
  runsPassed: 0,
  adversarial: 0,
  survived: 0,
  byKind: Object.fromEntries(ADVERSARIAL_KINDS.map((kind) => [kind, { runs: 0, survived: 0 }])) as Record<
    AdversarialKind,
    KindCount
  >,
})

/** Counts plus one run, as runSurvival judged it. */
export const withRun = (counts: SurvivalCounts, run: RunSurvival): SurvivalCounts =>
  plus(counts, {
    runs: 1,
    runsPassed: run.passed ? 1 : 0,
    adversarial: run.adversarial,
    survived: run.survived,
    byKind: Object.fromEntries(
      ADVERSARIAL_KINDS.map((kind) => [kind, run.byKind[kind] ?? { runs: 0, survived: 0 }]),
    ) as Record<AdversarialKind, KindCount>,
  })

/** Two counts summed. */
export const plus = (a: SurvivalCounts, b: SurvivalCounts): SurvivalCounts => ({
  runs: a.runs + b.runs,
  runsPassed: a.runsPassed + b.runsPassed,
  adversarial: a.adversarial + b.adversarial,
  survived: a.survived + b.survived,
  byKind: Object.fromEntries(
    ADVERSARIAL_KINDS.map((kind) => [
      kind,
      {
        runs: (a.byKind[kind]?.runs ?? 0) + (b.byKind[kind]?.runs ?? 0),
        survived: (a.byKind[kind]?.survived ?? 0) + (b.byKind[kind]?.survived ?? 0),
      },
    ]),
  ) as Record<AdversarialKind, KindCount>,
})

/** Only the counts of a document. */
export const countsOf = (doc: SurvivalCounts): SurvivalCounts => {
  const { runs, runsPassed, adversarial, survived, byKind } = doc
  return { runs, runsPassed, adversarial, survived, byKind }
}

// ---------- evolve ----------

type Read = DocReader<SurvivalDoc>
type Change = DocChange<SurvivalDoc>

const totalOf = (read: Read, workflow: ToolAction): SurvivalTotalDoc => {
  const found = read(survivalKeys.total(workflow))
  return found?.kind === 'total'
    ? found
    : { kind: 'total', tool: workflow.tool, action: workflow.action, ...zeroCounts() }
}

const simulationRecorded = (
  read: Read,
  event: LedgerEvent<DomainEvent>,
  proposalId: string,
  run: RunSurvival,
) => {
  const found = read(survivalKeys.proposal(proposalId))
  if (found?.kind !== 'proposal') return []
  const { tool, action, agentId, environment } = found
  const proposal = { tool, action, agentId, environment }
  const changes: Change[] = []
  for (const window of ['hour', 'day'] as const) {
    const key = survivalKeys.doc(window, event.recordedAt, proposal)
    const doc = read(key)
    const counts = doc?.kind === 'window' ? doc : zeroCounts()
    const start = windowStartOf(window, event.recordedAt)
    changes.push([key, { kind: 'window', window, start, ...proposal, ...withRun(countsOf(counts), run) }])
  }
  const total = totalOf(read, proposal)
  changes.push([
    survivalKeys.total(proposal),
    { kind: 'total', tool: total.tool, action: total.action, ...withRun(countsOf(total), run) },
  ])
  return changes
}

const evolve = (read: Read, event: LedgerEvent<DomainEvent>): Change[] => {
  switch (event.type) {
    case 'ToolActionRegistered': {
      // a registered workflow is reported from its registration, at zero until it is simulated
      const key = survivalKeys.total(event.data)
      return read(key) === undefined ? [[key, totalOf(read, event.data)]] : []
    }
    case 'ProposalSubmitted': {
      const { proposalId, tool, action, agentId, environment } = event.data
      return [[survivalKeys.proposal(proposalId), { kind: 'proposal', tool, action, agentId, environment }]]
    }
    case 'SimulationRecorded':
      return simulationRecorded(read, event, event.data.proposalId, runSurvival(event.data.branches))
    default:
      return []
  }
}

/** Branch survival over time: simulation runs per workflow, environment and agent, per UTC hour and day. */
export const survival: Projection<SurvivalDoc> = {
  name: 'survival',
  version: 1,
  evolve,
}
