import {
  type AuthorityLevel,
  type CheckName,
  type CheckResult,
  clipReason,
  type DataOf,
  EvidenceCheck,
  ImpactClass,
  type ImpactRequirements,
  type KillSwitchRef,
  type PolicyDraft,
  PROPOSAL_MAX_OPEN_SECONDS,
  type PromotionRequirement,
  type PromotionRequirements,
} from './events.js'
import { describeRelease, type GateRun, gateFor, isReleased, releaseFigures } from './release.js'
import { runSurvival } from './survival.js'

// ---------- the question and its answer ----------

export type ProposalFacts = Pick<
  DataOf<'ProposalSubmitted'>,
  | 'proposalId'
  | 'agentId'
  | 'executingIdentity'
  | 'tool'
  | 'action'
  | 'resource'
  | 'environment'
  | 'planHash'
  | 'actionDigest'
  | 'expectedImpact'
  | 'snapshot'
>

type Policy = DataOf<'PolicyPublished'>
type Grant = DataOf<'ScopeGranted'>
type Observation = DataOf<'StateObserved'>
type Simulation = DataOf<'SimulationRecorded'>
type RollbackTest = DataOf<'RollbackTested'>
type Approval = DataOf<'ApprovalGranted'>

export interface EligibilityInput {
  /** ISO time of the ledger event that triggers the decision */
  now: string
  proposal: ProposalFacts
  /** the agent's level in the proposal's environment; null: agent not registered */
  agentLevel: AuthorityLevel | null
  /** inventory entry of (tool, action); null: unregistered */
  tool: { impact: ImpactClass; reversible: boolean } | null
  /** the policy in force; null: none published */
  policy: Policy | null
  /** the active (not revoked) grants of the executing identity */
  grants: readonly Grant[]
  /** whether the executing identity is still bound to the agent */
  identityBound: boolean
  /** the latest observation of (environment, resource) */
  observation: Observation | null
  /** all recorded on the proposal, in ledger order */
  simulations: readonly Simulation[]
  rollbackTests: readonly RollbackTest[]
  approvals: readonly Approval[]
  /** every engaged switch */
  killSwitches: readonly KillSwitchRef[]
  /** the recent simulation runs of the proposal's workflow, oldest first: every agent's, and its agent's own */
  workflowRuns: { readonly all: readonly GateRun[]; readonly agent: readonly GateRun[] }
}

export interface Eligibility {
  decision: 'allow' | 'block'
  impact: ImpactClass
  checks: CheckResult[]
  expiresAt: string
  resourceVersion: string | null
  policyVersion: number | null
}

/** The evidence checks run only once a policy is known. */
type EvidenceInput = EligibilityInput & { policy: Policy }

// ---------- the verdict ----------

/** Decides allow or block from the evidence; every check is listed, so a block names all its failures. */
export const evaluate = (input: EligibilityInput): Eligibility => {
  const impact = impactOf(input)
  const checks = [
    policyCheck(input.policy),
    inventoryCheck(input, impact),
    authorityCheck(input.proposal, input.agentLevel),
    killSwitchCheck(input.proposal, input.killSwitches),
    ...releaseGateCheck(input, impact),
    ...EvidenceCheck.options.map((check) => evidenceCheck(check, input, impact)),
  ]
  return {
    decision: checks.some((c) => c.status === 'fail') ? 'block' : 'allow',
    impact,
    checks,
    expiresAt: expiryOf(input, impact),
    resourceVersion: input.observation?.version ?? null,
    policyVersion: input.policy?.version ?? null,
  }
}

/** The higher of the inventory's and the proposal's impact; an unregistered action is critical. */
const impactOf = ({ tool, proposal }: EligibilityInput): ImpactClass => {
  if (tool === null) return 'critical'
  const rank = (impact: ImpactClass) => ImpactClass.options.indexOf(impact)
  return rank(tool.impact) >= rank(proposal.expectedImpact) ? tool.impact : proposal.expectedImpact
}

/** A verdict is good until its TTL, or until the evidence it relies on goes stale, whichever is first. */
const expiryOf = (input: EligibilityInput, impact: ImpactClass): string => {
  const { policy, observation, now } = input
  const nowMs = Date.parse(now)
  if (policy === null) return new Date(nowMs).toISOString()
  const required = policy.requirements[impact].checks
  const deadlines = [nowMs + policy.verdictTtlSeconds * 1000]
  if (required.includes('freshState') && observation !== null) {
    deadlines.push(Date.parse(observation.observedAt) + policy.freshnessMaxAgeSeconds * 1000)
  }
  const test = latestRollbackTest(input)
  if (required.includes('rollback') && test !== undefined) {
    deadlines.push(Date.parse(test.testedAt) + policy.rollbackTestMaxAgeSeconds * 1000)
  }
  return new Date(Math.max(nowMs, Math.min(...deadlines))).toISOString()
}

// ---------- the gates every proposal passes ----------

const policyCheck = (policy: Policy | null): CheckResult =>
  policy === null
    ? result('policy', 'fail', 'no policy published: fail closed')
    : result('policy', 'pass', `policy v${policy.version} owned by ${policy.owner} is in force`)

const inventoryCheck = ({ tool, proposal }: EligibilityInput, impact: ImpactClass): CheckResult => {
  const name = `${proposal.tool}.${proposal.action}`
  if (tool === null) {
    return result(
      'inventory',
      'fail',
      `${name} is not registered in the inventory: deny by default, treated as 'critical'`,
    )
  }
  const kind = tool.reversible ? 'reversible' : 'irreversible'
  return result(
    'inventory',
    'pass',
    `${name} is registered as '${tool.impact}' and ${kind}; the proposal expects '${proposal.expectedImpact}', so it is judged as '${impact}'`,
  )
}

const authorityCheck = (proposal: ProposalFacts, level: AuthorityLevel | null): CheckResult => {
  const { agentId, environment } = proposal
  if (level === null) return result('authority', 'fail', `agent ${agentId} is not registered`)
  if (level === 'execute') {
    return result('authority', 'pass', `agent ${agentId} holds 'execute' in ${environment}`)
  }
  return result(
    'authority',
    'fail',
    `agent ${agentId} holds '${level}' in ${environment}; an allow needs 'execute'`,
  )
}

const killSwitchCheck = (proposal: ProposalFacts, switches: readonly KillSwitchRef[]): CheckResult => {
  const engaged = switches.filter((s) => stops(s, proposal))
  if (engaged.length > 0) {
    return result(
      'killSwitch',
      'fail',
      `engaged kill switches stop this proposal: ${listed(engaged.map(describeSwitch))}`,
    )
  }
  const { environment, tool, agentId } = proposal
  return result(
    'killSwitch',
    'pass',
    `no engaged kill switch covers environment ${environment}, tool ${tool} or agent ${agentId} (${switches.length} engaged elsewhere)`,
  )
}

const stops = (killSwitch: KillSwitchRef, proposal: ProposalFacts): boolean => {
  switch (killSwitch.scope) {
    case 'global':
      return true
    case 'environment':
      return killSwitch.target === proposal.environment
    case 'tool':
      return killSwitch.target === proposal.tool
    case 'agent':
      return killSwitch.target === proposal.agentId
  }
}

const describeSwitch = ({ scope, target }: KillSwitchRef): string =>
  scope === 'global' ? 'the global switch' : `the ${scope} switch for ${target}`

/**
 * Under a policy with release gates, the gate that applies to the proposal must find its workflow released.
 * Listed only when the policy has gates, so verdicts under a policy without any are as they always were.
 */
const releaseGateCheck = (input: EligibilityInput, impact: ImpactClass): CheckResult[] => {
  const { policy, proposal, workflowRuns } = input
  if (policy === null || policy.releaseGates.length === 0) return []
  const { tool, action, environment, agentId } = proposal
  const gate = gateFor(policy.releaseGates, { tool, action, environment, impact })
  if (gate === null) {
    return [
      result(
        'releaseGate',
        'pass',
        `no release gate of policy v${policy.version} applies to ${tool}.${action} in ${environment} at '${impact}' impact`,
      ),
    ]
  }
  const figures = releaseFigures(gate, gate.perAgent ? workflowRuns.agent : workflowRuns.all)
  const words = describeRelease(proposal, gate.perAgent ? agentId : null, figures)
  return [result('releaseGate', isReleased(figures) ? 'pass' : 'fail', words)]
}

// ---------- the five evidence checks ----------

/** Runs one evidence check if the policy requires it for this impact class. */
const evidenceCheck = (check: EvidenceCheck, input: EligibilityInput, impact: ImpactClass): CheckResult => {
  const { policy } = input
  if (policy === null) return result(check, 'fail', 'no policy in force')
  if (!policy.requirements[impact].checks.includes(check)) {
    return result(check, 'not-required', `not required for '${impact}' impact by policy v${policy.version}`)
  }
  return evidenceRules[check]({ ...input, policy }, impact)
}

const scopedPermissionCheck = ({ proposal, grants }: EvidenceInput, impact: ImpactClass): CheckResult => {
  const { executingIdentity, tool, action, resource, environment } = proposal
  const scope = `${tool}.${action} on ${resource} in ${environment}`
  const matching = grants.filter((g) => grantCovers(g, proposal))
  // a wildcard or inherited grant is too broad a promise for high and critical impact
  const exactOnly = impact === 'high' || impact === 'critical'
  const satisfying = exactOnly ? matching.filter(isExact) : matching
  const grant = satisfying.find(isExact) ?? satisfying[0]
  if (grant !== undefined) {
    const kind = isExact(grant) ? 'an exact direct' : `a ${weaknessOf(grant)}`
    return result(
      'scopedPermission',
      'pass',
      `identity ${executingIdentity} holds ${kind} grant ${grant.grantId} for ${scope}, enough for '${impact}' impact`,
    )
  }
  if (matching.length > 0) {
    const found = listed(matching.map((g) => `${g.grantId} (${weaknessOf(g)})`))
    return result(
      'scopedPermission',
      'fail',
      `identity ${executingIdentity} holds only ${found} for ${scope}, and a wildcard or inherited grant does not satisfy '${impact}' impact`,
    )
  }
  return result('scopedPermission', 'fail', `identity ${executingIdentity} holds no grant for ${scope}`)
}

const grantCovers = (grant: Grant, proposal: ProposalFacts): boolean => {
  const field = (granted: string, wanted: string) => granted === '*' || granted === wanted
  return (
    grant.identity === proposal.executingIdentity &&
    field(grant.tool, proposal.tool) &&
    field(grant.action, proposal.action) &&
    field(grant.environment, proposal.environment) &&
    globMatches(grant.resourcePattern, proposal.resource)
  )
}

const hasWildcard = (grant: Grant): boolean =>
  [grant.tool, grant.action, grant.environment, grant.resourcePattern].some((f) => f.includes('*'))

const isExact = (grant: Grant): boolean => !hasWildcard(grant) && grant.via === 'direct'

/** What keeps a grant from being exact: 'wildcard', 'inherited' or both. */
const weaknessOf = (grant: Grant): string =>
  [hasWildcard(grant) ? 'wildcard' : null, grant.via === 'inherited' ? 'inherited' : null]
    .filter((w) => w !== null)
    .join(' and ')

/** '*' matches any run of characters, everything else is literal; no regex, so no pattern can backtrack exponentially. */
export const globMatches = (pattern: string, text: string): boolean => {
  let p = 0
  let t = 0
  let star = -1
  let resume = 0
  while (t < text.length) {
    if (pattern[p] === '*') {
      star = p++
      resume = t
    } else if (p < pattern.length && pattern[p] === text[t]) {
      p++
      t++
    } else if (star >= 0) {
      p = star + 1
      t = ++resume
    } else {
      return false
    }
  }
  while (pattern[p] === '*') p++
  return p === pattern.length
}

const freshStateCheck = ({ proposal, observation, policy, now }: EvidenceInput): CheckResult => {
  const { resource, environment, snapshot } = proposal
  const maxAge = policy.freshnessMaxAgeSeconds
  if (observation === null) {
    return result(
      'freshState',
      'fail',
      `no observation of ${resource} in ${environment} is recorded, so snapshot ${snapshot.version} cannot be confirmed`,
    )
  }
  const ageMs = Date.parse(now) - Date.parse(observation.observedAt)
  const problems: string[] = []
  if (observation.version !== snapshot.version) {
    problems.push(
      `the proposal is based on version ${snapshot.version}, but ${observation.version} was observed since (superseded snapshot)`,
    )
  }
  if (ageMs < 0) {
    problems.push(
      `the latest observation is dated ${observation.observedAt}, after the decision time ${now}: an observation from the future confirms nothing`,
    )
  }
  if (ageMs > maxAge * 1000) {
    problems.push(
      `the latest observation is ${seconds(ageMs)} s old, over the ${maxAge} s maximum (stale snapshot)`,
    )
  }
  if (problems.length > 0) return result('freshState', 'fail', problems.join('; and '))
  return result(
    'freshState',
    'pass',
    `snapshot ${snapshot.version} is the latest observed version of ${resource}, ${seconds(ageMs)} s old (maximum ${maxAge} s)`,
  )
}

const survivalCheck = ({ proposal, simulations, policy }: EvidenceInput): CheckResult => {
  const ignored: string[] = []
  const accepted: Simulation[] = []
  for (const simulation of simulations) {
    const why = simulationIgnoredBecause(simulation, proposal)
    if (why === null) accepted.push(simulation)
    else ignored.push(`${simulation.simulationId} (${why})`)
  }
  const ignoredNote = ignored.length > 0 ? `; ignored: ${listed(ignored)}` : ''
  const simulation = accepted.at(-1)
  if (simulation === undefined) {
    return result(
      'survival',
      'fail',
      `no accepted simulation of action ${proposal.actionDigest}${ignoredNote}`,
    )
  }
  // with no adversarial branch there is nothing to fail, and the branch count decides
  const { adversarial, survived, rate } = runSurvival(simulation.branches)
  const { minAdversarialBranches: minBranches, survivalThreshold: threshold } = policy
  const enough = adversarial >= minBranches
  const survivedEnough = rate >= threshold
  const summary =
    `simulation ${simulation.simulationId} by ${simulation.simulatedBy} has ${adversarial} adversarial ` +
    `branches (at least ${minBranches} required), of which ${survived} survived, a survival rate of ` +
    `${round(rate)} (threshold ${threshold})`
  const verdict = enough && survivedEnough ? 'pass' : 'fail'
  const shortfall = [
    enough ? null : 'too few adversarial branches',
    survivedEnough ? null : 'survival rate below threshold',
  ].filter((s) => s !== null)
  const shortfallNote = shortfall.length > 0 ? `: ${shortfall.join(' and ')}` : ''
  return result('survival', verdict, `${summary}${shortfallNote}${ignoredNote}`)
}

/** Evidence counts only for this exact action, and never from the agent's side (the ledger refuses it too). */
const attestedIgnoredBecause = (
  evidence: { readonly actionDigest: string },
  by: string,
  proposal: ProposalFacts,
): string | null => {
  if (evidence.actionDigest !== proposal.actionDigest) return 'for another action'
  if (by === proposal.agentId) return 'attested by the proposing agent'
  if (by === proposal.executingIdentity) return 'attested by the executing identity'
  return null
}

export const simulationIgnoredBecause = (simulation: Simulation, proposal: ProposalFacts): string | null =>
  attestedIgnoredBecause(simulation, simulation.simulatedBy, proposal)

const rollbackCheck = (input: EvidenceInput): CheckResult => {
  const { policy, now, rollbackTests, proposal } = input
  const maxAge = policy.rollbackTestMaxAgeSeconds
  const test = latestRollbackTest(input)
  if (test === undefined) {
    const others = rollbackTests.length
    const note =
      others > 0 ? `; ${others} test run(s) for another action or from the agent's side ignored` : ''
    return result(
      'rollback',
      'fail',
      `no rollback test is recorded for action ${proposal.actionDigest}${note}`,
    )
  }
  const run = `rollback test run ${test.testRunId}`
  const ageMs = Date.parse(now) - Date.parse(test.testedAt)
  if (test.outcome !== 'passed') return result('rollback', 'fail', `${run} at ${test.testedAt} failed`)
  if (ageMs < 0) {
    return result('rollback', 'fail', `${run} is dated ${test.testedAt}, after the decision time ${now}`)
  }
  if (ageMs > maxAge * 1000) {
    return result('rollback', 'fail', `${run} is ${seconds(ageMs)} s old, over the ${maxAge} s maximum`)
  }
  return result(
    'rollback',
    'pass',
    `${run} passed ${seconds(ageMs)} s ago (maximum ${maxAge} s), expects recovery in ` +
      `${test.expectedRecoverySeconds} s, and is stopped by ${describeSwitch(test.killSwitch)}`,
  )
}

/** The newest test of this exact plan: a later failure supersedes an earlier success. */
const latestRollbackTest = ({ rollbackTests, proposal }: EligibilityInput): RollbackTest | undefined =>
  rollbackTests.filter((t) => attestedIgnoredBecause(t, t.testedBy, proposal) === null).at(-1)

const lineageCheck = (
  { proposal, approvals, policy, identityBound }: EvidenceInput,
  impact: ImpactClass,
): CheckResult => {
  const required = policy.requirements[impact].approvals
  const counted: string[] = []
  const ignored: string[] = []
  for (const approval of approvals) {
    const why = approvalIgnoredBecause(approval, proposal, required, counted)
    if (why === null) counted.push(approval.approver)
    else ignored.push(`${approval.approver} (${why})`)
  }
  const gaps = [
    policy.owner === '' ? 'the policy names no owner' : null,
    identityBound
      ? null
      : `executing identity ${proposal.executingIdentity} is no longer bound to agent ${proposal.agentId}`,
  ].filter((g) => g !== null)
  const roles = required.roles.map((r) => `'${r}'`).join(' or ')
  const approvedBy = counted.length > 0 ? ` (${listed(counted)})` : ''
  const ignoredNote = ignored.length > 0 ? `; ignored: ${listed(ignored)}` : ''
  const summary =
    `policy v${policy.version} owned by ${policy.owner}, executing identity ${proposal.executingIdentity}, ` +
    `${counted.length} distinct approval(s) with role ${roles}${approvedBy} of ${required.count} required`
  const enough = counted.length >= required.count
  if (gaps.length > 0 || !enough) {
    const shortfall = [...gaps, ...(enough ? [] : ['too few approvals'])].join(' and ')
    return result('lineage', 'fail', `${summary}: ${shortfall}${ignoredNote}`)
  }
  return result('lineage', 'pass', `${summary}${ignoredNote}`)
}

/** An approval counts once per approver, for this plan, in an accepted role, and never from the proposer's side. */
const approvalIgnoredBecause = (
  approval: Approval,
  proposal: ProposalFacts,
  required: ImpactRequirements['approvals'],
  counted: readonly string[],
): string | null => {
  const sided = attestedIgnoredBecause(approval, approval.approver, proposal)
  if (sided !== null) return sided.replace('attested', 'approved')
  if (!required.roles.includes(approval.role)) return `role '${approval.role}' is not accepted`
  if (counted.includes(approval.approver)) return 'duplicate approver'
  return null
}

const evidenceRules: Record<EvidenceCheck, (input: EvidenceInput, impact: ImpactClass) => CheckResult> = {
  scopedPermission: scopedPermissionCheck,
  freshState: freshStateCheck,
  survival: survivalCheck,
  rollback: rollbackCheck,
  lineage: lineageCheck,
}

// ---------- the default policy (the rules in README.md and docs/governance.md) ----------

/** The documented defaults: which evidence each impact class needs, and the thresholds. */
export const defaultPolicy = (owner: string, version = 1): PolicyDraft => {
  const needs = (checks: EvidenceCheck[], count: number): ImpactRequirements => ({
    checks,
    approvals: { count, roles: ['approver'] },
  })
  const allFive = (): EvidenceCheck[] => [...EvidenceCheck.options]
  return {
    version,
    owner,
    requirements: {
      read: needs([], 0),
      low: needs(['scopedPermission', 'freshState'], 0),
      medium: needs(['scopedPermission', 'freshState', 'rollback', 'lineage'], 1),
      high: needs(allFive(), 1),
      critical: needs(allFive(), 2),
    },
    freshnessMaxAgeSeconds: 300,
    minAdversarialBranches: 3,
    survivalThreshold: 0.9,
    rollbackTestMaxAgeSeconds: 604_800,
    recoveryTimeObjectiveSeconds: 900,
    verdictTtlSeconds: 600,
    proposalMaxOpenSeconds: PROPOSAL_MAX_OPEN_SECONDS,
    releaseGates: [],
    promotion: DEFAULT_PROMOTION,
    promotionByEnvironment: {},
  }
}

/** A promotion requirement: no violation and no failed execution in 30 days, and the minimums given. */
export const trackRequirement = (requirement: Partial<PromotionRequirement>): PromotionRequirement => ({
  windowDays: 30,
  minProposals: 0,
  minSimulationsPassed: 0,
  minSurvivalRate: 0,
  maxViolations: 0,
  maxFailedExecutions: 0,
  ...requirement,
})

/**
 * The default track record a promotion needs over the last 30 days: no violation and no failed execution at
 * any rung; to simulate, proposals made at recommend; to execute, simulations passed and survived.
 */
export const DEFAULT_PROMOTION: PromotionRequirements = {
  recommend: trackRequirement({}),
  simulate: trackRequirement({ minProposals: 5 }),
  execute: trackRequirement({ minProposals: 10, minSimulationsPassed: 5, minSurvivalRate: 0.9 }),
}

// ---------- wording ----------

const result = (check: CheckName, status: CheckResult['status'], reason: string): CheckResult => ({
  check,
  status,
  reason: clipReason(reason),
})

/** Names the first few items and counts the rest, so a reason stays one readable sentence. */
const listed = (items: readonly string[], shown = 5): string => {
  const head = items.slice(0, shown).join(', ')
  return items.length > shown ? `${head} and ${items.length - shown} more` : head
}

const seconds = (ms: number): number => ms / 1000

const round = (rate: number): number => Math.round(rate * 1000) / 1000
