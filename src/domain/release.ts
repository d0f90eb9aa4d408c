import {
  AdversarialBranchKind,
  type DataOf,
  ImpactClass,
  MAX_GATE_RUNS,
  type ReleaseFigures,
  type ReleaseGate,
} from './events.js'
import { runSurvival, survivalRate } from './survival.js'
import { workflowName } from './workflow.js'

/**
 * Release gates: a workflow (a registered tool action) of a gated impact class is not proposed into production
 * on one proposal's simulation alone, but only once the workflow's recent simulation runs show it survives.
 * Pure: the decision service, the gate check and the verdict's `releaseGate` check all answer through here.
 */

/** One simulation run as a release gate counts it. */
export interface GateRun {
  readonly simulationId: string
  readonly adversarial: number
  readonly survived: number
  /** the adversarial branch kinds it exercised */
  readonly kinds: readonly AdversarialBranchKind[]
}

export const gateRun = (
  simulation: Pick<DataOf<'SimulationRecorded'>, 'simulationId' | 'branches'>,
): GateRun => {
  const run = runSurvival(simulation.branches)
  return {
    simulationId: simulation.simulationId,
    adversarial: run.adversarial,
    survived: run.survived,
    kinds: AdversarialBranchKind.options.filter((kind) => run.byKind[kind] !== undefined),
  }
}

/**
 * Keeps the newest runs a gate can count, oldest first. A run that exercised no adversarial branch put nothing
 * under pressure, and counts for nothing (as it passes nothing in the track record); a simulation recorded on
 * several proposals is one run, counted once.
 */
export const withRun = (runs: readonly GateRun[], run: GateRun): readonly GateRun[] =>
  run.adversarial === 0 || runs.some((r) => r.simulationId === run.simulationId)
    ? runs
    : [...runs.slice(Math.max(0, runs.length + 1 - MAX_GATE_RUNS)), run]

export interface GateSubject {
  readonly tool: string
  readonly action: string
  /** null: an environment no gate names */
  readonly environment: string | null
  readonly impact: ImpactClass
}

export const workflowOf = ({ tool, action }: Pick<GateSubject, 'tool' | 'action'>): string =>
  `${tool}.${action}`

const namesWorkflow = (gate: ReleaseGate, subject: Pick<GateSubject, 'tool' | 'action'>): boolean =>
  gate.workflow === '*' || gate.workflow === workflowName(subject)

/** The gate that applies: the first, in the policy's order, naming the workflow, the environment and the impact. */
export const gateFor = (gates: readonly ReleaseGate[], subject: GateSubject): ReleaseGate | null =>
  gates.find(
    (gate) =>
      namesWorkflow(gate, subject) &&
      (gate.environment === null || gate.environment === subject.environment) &&
      gate.impacts.includes(subject.impact),
  ) ?? null

/**
 * Every gate that can apply to a workflow's proposals: in the environment given (or in any), of the impact
 * given (or of any). What a gate check answers for.
 */
export const gatesFor = (
  gates: readonly ReleaseGate[],
  workflow: Pick<GateSubject, 'tool' | 'action'>,
  environment: string | undefined,
  impacts: readonly ImpactClass[],
): ReleaseGate[] => {
  const named = gates.filter((g) => namesWorkflow(g, workflow)).map((g) => g.environment)
  const environments =
    environment !== undefined ? [environment] : [...new Set(named.filter((e) => e !== null)), null]
  const found = environments.flatMap((env) =>
    impacts.map((impact) => gateFor(gates, { ...workflow, environment: env, impact })),
  )
  return gates.filter((gate) => found.includes(gate))
}

/** A gate's figures over a workflow's runs (oldest first): the last `gate.runs` of them count. */
export const releaseFigures = (gate: ReleaseGate, runs: readonly GateRun[]): ReleaseFigures => {
  const counted = runs.slice(-gate.runs)
  const adversarial = counted.reduce((sum, r) => sum + r.adversarial, 0)
  const survived = counted.reduce((sum, r) => sum + r.survived, 0)
  const exercised = new Set(counted.flatMap((r) => r.kinds))
  return {
    runs: counted.length,
    runsRequired: gate.runs,
    adversarial,
    survived,
    survivalRate: survivalRate(survived, adversarial),
    threshold: gate.survivalThreshold,
    kindsCovered: AdversarialBranchKind.options.filter((kind) => exercised.has(kind)),
    kindsMissing: gate.requiredBranchKinds.filter((kind) => !exercised.has(kind)),
  }
}

/** Released: enough runs, survival at the threshold or above, every required branch kind exercised. */
export const isReleased = (f: ReleaseFigures): boolean =>
  f.runs >= f.runsRequired && f.survivalRate >= f.threshold && f.kindsMissing.length === 0

/** The figures in one sentence: what a verdict, a release event and a gate check say. */
export const describeRelease = (
  subject: Pick<GateSubject, 'tool' | 'action'>,
  agentId: string | null,
  figures: ReleaseFigures,
): string => {
  const whose = agentId === null ? 'every agent' : `agent ${agentId}`
  const rate = Math.round(figures.survivalRate * 1000) / 1000
  const shortfall = [
    figures.runs < figures.runsRequired ? `only ${figures.runs} of ${figures.runsRequired} runs` : null,
    figures.survivalRate < figures.threshold ? 'survival below threshold' : null,
    figures.kindsMissing.length > 0 ? `branch kinds never run: ${figures.kindsMissing.join(', ')}` : null,
  ].filter((s) => s !== null)
  const kinds = figures.kindsCovered.length > 0 ? figures.kindsCovered.join(', ') : 'none'
  const head =
    `workflow ${workflowName(subject)} ${shortfall.length === 0 ? 'is released' : 'is not released'}: ` +
    `the last ${figures.runs} simulation run(s) of ${whose} (${figures.runsRequired} required) survived ` +
    `${figures.survived} of ${figures.adversarial} adversarial branches, a survival rate of ${rate} ` +
    `(threshold ${figures.threshold}), exercising ${kinds}`
  return shortfall.length === 0 ? head : `${head}: ${shortfall.join('; ')}`
}

// ---------- the gate check: what a pipeline asks before it ships ----------

export interface GateQuery {
  readonly tool: string
  readonly action: string
  /** the agent whose own runs a per-agent gate counts */
  readonly agentId?: string | undefined
  /** only the gates for this environment; every environment without it */
  readonly environment?: string | undefined
  /** only the gates for this impact class; every class without it */
  readonly impact?: ImpactClass | undefined
}

export interface GateResult {
  readonly gate: ReleaseGate
  /** whose runs were counted: the agent under a per-agent gate, null for every agent's */
  readonly agentId: string | null
  readonly passed: boolean
  /** null when the gate could not be judged (a per-agent gate asked about no agent) */
  readonly figures: ReleaseFigures | null
  readonly reason: string
}

export interface GateAnswer {
  readonly passed: boolean
  readonly policyVersion: number | null
  readonly gates: readonly GateResult[]
  readonly reason: string
}

/**
 * Whether a workflow passes every release gate that can apply to it (in the environment and at the impact
 * asked, or in any): passed only when each one does. No policy in force fails closed; no gate that applies
 * passes, since no proposal of the workflow would be blocked by one.
 */
export const checkGates = (
  policy: { readonly version: number; readonly releaseGates: readonly ReleaseGate[] } | null,
  runs: { readonly all: readonly GateRun[]; readonly agent: readonly GateRun[] },
  query: GateQuery,
): GateAnswer => {
  const workflow = workflowName(query)
  if (policy === null) {
    return { passed: false, policyVersion: null, gates: [], reason: 'no policy is in force: fail closed' }
  }
  const impacts = query.impact === undefined ? ImpactClass.options : [query.impact]
  const gates = gatesFor(policy.releaseGates, query, query.environment, impacts).map((gate): GateResult => {
    if (gate.perAgent && query.agentId === undefined) {
      const reason = `this gate counts each agent's own runs of ${workflow}: name the agent`
      return { gate, agentId: null, passed: false, figures: null, reason }
    }
    const agentId = gate.perAgent ? (query.agentId ?? null) : null
    const figures = releaseFigures(gate, agentId === null ? runs.all : runs.agent)
    return {
      gate,
      agentId,
      passed: isReleased(figures),
      figures,
      reason: describeRelease(query, agentId, figures),
    }
  })
  const where = [
    query.environment === undefined ? null : `in ${query.environment}`,
    query.impact === undefined ? null : `at '${query.impact}' impact`,
  ].filter((w) => w !== null)
  const scope = [workflow, ...where].join(' ')
  if (gates.length === 0) {
    const reason = `no release gate of policy v${policy.version} applies to ${scope}`
    return { passed: true, policyVersion: policy.version, gates, reason }
  }
  const failed = gates.filter((g) => !g.passed).length
  const reason =
    failed === 0
      ? `${scope} passes all ${gates.length} release gate(s) of policy v${policy.version}`
      : `${scope} fails ${failed} of ${gates.length} release gate(s) of policy v${policy.version}`
  return { passed: failed === 0, policyVersion: policy.version, gates, reason }
}
