// A complete, passing eligibility input that each test breaks one thing of.
import { actionDigestOf, planHashOf } from '../../src/domain/canonical.js'
import { defaultPolicy, type EligibilityInput, type ProposalFacts } from '../../src/domain/eligibility.js'
import type { BranchKind, DataOf, ImpactClass } from '../../src/domain/events.js'

type Branch = DataOf<'SimulationRecorded'>['branches'][number]

export const NOW = '2025-06-01T12:00:00.000Z'
export const AGENT = 'agent-a1'
export const EXECUTING_IDENTITY = 'deploy-bot'
export const TOOL = 'kubectl'
export const ACTION = 'scale'
export const RESOURCE = 'db/orders'
export const ENVIRONMENT = 'production'
export const SNAPSHOT_VERSION = 'v4'
export const POLICY_OWNER = 'policy-admin'
export const PROPOSAL_ID = 'proposal-1'
export const PLAN = { steps: ['scale db/orders to 3 replicas'] }
export const PLAN_HASH = planHashOf(PLAN)
export const OTHER_PLAN_HASH = planHashOf({ steps: ['drop db/orders'] })
/** The digest of the proposal's whole action, which every piece of evidence binds to. */
export const ACTION_DIGEST = actionDigestOf({
  proposalId: PROPOSAL_ID,
  tool: TOOL,
  action: ACTION,
  resource: RESOURCE,
  environment: ENVIRONMENT,
  executingIdentity: EXECUTING_IDENTITY,
  plan: PLAN,
})
/** The same plan, run on another resource: another action. */
export const OTHER_ACTION_DIGEST = actionDigestOf({
  proposalId: PROPOSAL_ID,
  tool: TOOL,
  action: ACTION,
  resource: 'db/payments',
  environment: ENVIRONMENT,
  executingIdentity: EXECUTING_IDENTITY,
  plan: PLAN,
})

/** The ISO time that lies the given number of seconds before `from`. */
export const secondsBefore = (seconds: number, from = NOW): string =>
  new Date(Date.parse(from) - seconds * 1000).toISOString()

export const secondsAfter = (seconds: number, from = NOW): string => secondsBefore(-seconds, from)

export const proposal = (impact: ImpactClass, overrides: Partial<ProposalFacts> = {}): ProposalFacts => ({
  proposalId: PROPOSAL_ID,
  agentId: AGENT,
  executingIdentity: EXECUTING_IDENTITY,
  tool: TOOL,
  action: ACTION,
  resource: RESOURCE,
  environment: ENVIRONMENT,
  planHash: PLAN_HASH,
  actionDigest: ACTION_DIGEST,
  expectedImpact: impact,
  snapshot: { version: SNAPSHOT_VERSION },
  ...overrides,
})

/** An exact, direct grant of the proposal's scope to its executing identity. */
export const grant = (overrides: Partial<DataOf<'ScopeGranted'>> = {}): DataOf<'ScopeGranted'> => ({
  grantId: 'grant-exact',
  identity: EXECUTING_IDENTITY,
  tool: TOOL,
  action: ACTION,
  resourcePattern: RESOURCE,
  environment: ENVIRONMENT,
  via: 'direct',
  ...overrides,
})

/** The latest observation: the proposal's snapshot, one minute old. */
export const observation = (overrides: Partial<DataOf<'StateObserved'>> = {}): DataOf<'StateObserved'> => ({
  environment: ENVIRONMENT,
  resource: RESOURCE,
  version: SNAPSHOT_VERSION,
  digest: 'sha256:orders-v4',
  observedAt: secondsBefore(60),
  ...overrides,
})

/** One baseline branch, then `adversarial` adversarial branches of which the first `survived` survived. */
export const branches = (adversarial: number, survived = adversarial): Branch[] => {
  const kinds: BranchKind[] = [
    'dependency-down',
    'concurrent-change',
    'partial-failure',
    'stale-read',
    'rollback-failure',
  ]
  const branch = (i: number): Branch => ({
    name: `branch-${i + 1}`,
    kind: kinds[i % kinds.length] ?? 'other-adversarial',
    counterfactual: `adversarial case ${i + 1}`,
    outcome: i < survived ? 'survived' : 'failed',
  })
  const baseline: Branch = {
    name: 'baseline',
    kind: 'baseline',
    counterfactual: 'nothing goes wrong',
    outcome: 'survived',
  }
  return [baseline, ...Array.from({ length: adversarial }, (_, i) => branch(i))]
}

/** A simulator's run of this action, answering the agent's request: four adversarial branches, all survived. */
export const simulation = (
  overrides: Partial<DataOf<'SimulationRecorded'>> = {},
): DataOf<'SimulationRecorded'> => ({
  proposalId: PROPOSAL_ID,
  simulationId: 'sim-1',
  requestId: 'simreq-1',
  actionDigest: ACTION_DIGEST,
  simulatedBy: 'simulator-1',
  branches: branches(4),
  ...overrides,
})

/** A passed rollback test of this action by a simulator, one hour old. */
export const rollbackTest = (
  overrides: Partial<DataOf<'RollbackTested'>> = {},
): DataOf<'RollbackTested'> => ({
  proposalId: PROPOSAL_ID,
  actionDigest: ACTION_DIGEST,
  testedBy: 'simulator-1',
  playbook: 'kubectl scale db/orders --replicas=1',
  testRunId: 'run-7',
  testedAt: secondsBefore(3600),
  outcome: 'passed',
  expectedRecoverySeconds: 120,
  killSwitch: { scope: 'tool', target: TOOL },
  ...overrides,
})

export const approval = (
  approver: string,
  overrides: Partial<DataOf<'ApprovalGranted'>> = {},
): DataOf<'ApprovalGranted'> => ({
  proposalId: PROPOSAL_ID,
  actionDigest: ACTION_DIGEST,
  approver,
  role: 'approver',
  ...overrides,
})

/** The default policy as published: by one admin, on an empty ledger. */
export const policy = (version = 1): DataOf<'PolicyPublished'> => ({
  ...defaultPolicy(POLICY_OWNER, version),
  publishedBy: 'admin-1',
  approvedBy: version === 1 ? null : 'admin-2',
})

/** Everything an allow needs at the given impact, and more: all five checks would pass even at 'critical'. */
export const eligibleInput = (
  impact: ImpactClass = 'critical',
  overrides: Partial<EligibilityInput> = {},
): EligibilityInput => ({
  now: NOW,
  proposal: proposal(impact),
  agentLevel: 'execute',
  tool: { impact, reversible: true },
  policy: policy(),
  grants: [grant()],
  identityBound: true,
  observation: observation(),
  simulations: [simulation()],
  rollbackTests: [rollbackTest()],
  workflowRuns: { all: [], agent: [] },
  approvals: [approval('approver-1'), approval('approver-2')],
  killSwitches: [],
  ...overrides,
})
