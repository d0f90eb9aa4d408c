// The shapes of the API's answers that the console reads (see /docs/json for the whole of each).
export type Counts = Record<string, number>

export interface Recovery {
  count: number
  p50: number | null
  p90: number | null
  max: number | null
}

export interface WindowFigures {
  start: string
  end: string
  verdicts: number
  allowed: number
  blockedVerdicts: number
  actionsEnded: { count: number; byEnd: Counts }
  unsafeBlocked: {
    count: number
    byHow: Counts
    byEnd: Counts
    byCheck: Counts
    byAgent: Counts
    byTool: Counts
    byEnvironment: Counts
    byImpact: Counts
  }
  unsafeRate: number | null
  refusedAtGate: { count: number; byRule: Counts }
  failedDespiteAllow: number
  violations: { count: number; byKind: Counts; byAgent: Counts }
  timeToRecovery: {
    overall: Recovery
    byAgent: Record<string, Recovery>
    byTool: Record<string, Recovery>
    byEnvironment: Record<string, Recovery>
  }
}

export interface Headline {
  window: 'hour' | 'day'
  series: WindowFigures[]
  totals: WindowFigures
  awaitingEvidence: { count: number; byCheck: Counts; byEnvironment: Counts }
  unrecoveredFailures: Array<{
    proposalId: string
    agentId: string
    tool: string
    action: string
    environment: string
    failedAt: string
    error: string
    rollback: string
    recoveryOverdue: boolean
    ageSeconds: number
  }>
  asOf: number
}

export type OpenState = 'awaiting-evidence' | 'blocked' | 'allowed' | 'executing' | 'failed'

export interface OpenAction {
  proposalId: string
  agentId: string
  tool: string
  action: string
  resource: string
  environment: string
  impact: string
  state: OpenState
  since: string
  ageSeconds: number
  submittedAt: string
  verdict: {
    verdictId: string
    decision: 'allow' | 'block'
    failedChecks: string[]
    expiresAt: string
  } | null
}

export interface CheckResult {
  check: string
  status: 'pass' | 'fail' | 'not-required'
  reason: string
}

export interface ActionAudit {
  proposalId: string
  submittedAt: string
  what: {
    tool: string
    action: string
    resource: string
    environment: string
    plan: Record<string, unknown>
    planHash: string
    actionDigest: string
    resourceVersionBefore: string
    resourceVersionAfter: string | null
  }
  who: {
    agentId: string
    executingIdentity: string
    executor: string | null
    approvers: Array<{ approver: string; role: string; eventId: string }>
    policyVersion: number | null
    policyOwner: string | null
    killSwitchActors: Array<{
      actor: string
      scope: string
      target: string | null
      action: string
      eventId: string
    }>
  }
  howFast: {
    rollbackExpectedSeconds: number | null
    failedAt: string | null
    recoveredAt: string | null
    timeToRecoverySeconds: number | null
  }
  verdicts: Array<{ verdictId: string; revision: number; decision: 'allow' | 'block'; eventId: string }>
  outcome: string
  violation: boolean
  currentVerdict: {
    verdictId: string
    revision: number
    decision: 'allow' | 'block'
    impact: string
    decidedAt: string
    expiresAt: string
    revoked: boolean
    expired: boolean
    checks: CheckResult[]
  } | null
  timeline: Array<{
    position: number
    eventId: string
    type: string
    recordedAt: string
    actor: string
    hash: string
  }>
  asOf: number
}

export interface InclusionProof {
  position: number
  leafIndex: number
  treeSize: number
  rootHash: string
  hashes: string[]
  event: { id: string; type: string; data: unknown; hash: string }
}

export type Level = 'observe' | 'recommend' | 'simulate' | 'execute'
export const LEVELS: readonly Level[] = ['observe', 'recommend', 'simulate', 'execute']

export interface Agent {
  agentId: string
  owner: string | null
  levels: Record<string, { level: Level; since: string; cause: string }>
  pendingPromotions: Array<{
    requestId: string
    environment: string
    from: Level
    to: Level
    requestedAt: string
  }>
  refusedPromotions: number
}

export interface LadderEvent {
  position: number
  eventId: string
  type:
    | 'AgentRegistered'
    | 'PromotionRequested'
    | 'PromotionApproved'
    | 'PromotionRefused'
    | 'AgentPromoted'
    | 'AgentDemoted'
  recordedAt: string
  actor: string
  environment: string | null
  requestId: string | null
  from: Level | null
  to: Level | null
  reason: string | null
  demotionCause: string | null
  proposalId: string | null
}

export interface TrackRecord {
  windowStart: string
  windowEnd: string
  proposals: number
  simulationsPassed: number
  simulationSurvivalRate: number
  violations: number
  failedExecutions: number
}

export interface ActionSummary {
  proposalId: string
  submittedAt: string
  tool: string
  action: string
  resource: string
  environment: string
  outcome: string
  latestDecision: 'allow' | 'block' | null
  violation: boolean
  timeToRecoverySeconds: number | null
}

export interface KillSwitch {
  scope: 'global' | 'agent' | 'tool' | 'environment' | string
  target: string | null
  reason: string
  engagedAt: string
  engagedBy: string
  eventId: string
}
