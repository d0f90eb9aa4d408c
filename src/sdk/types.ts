import type { Flip } from '../decision/counterfactual.js'
import type { ShadowReport } from '../decision/shadow.js'
import type {
  AuthorityLevel,
  CheckName,
  CheckResult,
  DataOf,
  ImpactClass,
  KillSwitchScope,
  PolicyDraft,
  TrackRecord,
} from '../domain/events.js'

// The wire types of the API, inferred from the event model wherever an event is what travels.

export type Verdict = DataOf<'VerdictIssued'>
export type VerdictRevocation = DataOf<'VerdictRevoked'>
export type VerdictExpiry = DataOf<'VerdictExpired'>
export type Policy = DataOf<'PolicyPublished'>
/** A policy as an admin writes it; who published and approved it come from their tokens. */
export type PolicyInput = PolicyDraft
/** GET /v1/policies/shadow: the shadow policy, its would-flip counts (null until decided on), the flips. */
export interface ShadowPolicyView {
  readonly policy: Policy
  readonly wouldFlip: ShadowReport | null
  readonly flips: readonly Flip[]
}
export type SimulationRequest = DataOf<'SimulationRequested'>
export type Observation = DataOf<'StateObserved'>
export type Simulation = DataOf<'SimulationRecorded'>
export type RollbackTest = DataOf<'RollbackTested'>
export type Approval = DataOf<'ApprovalGranted'>
export type ProposalFacts = DataOf<'ProposalSubmitted'>
export type Grant = DataOf<'ScopeGranted'>
export type ToolAction = DataOf<'ToolActionRegistered'>

/** A verdict as the API shows it: with its ledger position and whether it still stands. */
export type VerdictView = Verdict & { position: number; revoked: boolean; expired: boolean }

export interface ProposalView {
  proposal: ProposalFacts
  status: string
  simulationRequests: SimulationRequest[]
  simulations: Simulation[]
  rollbackTests: RollbackTest[]
  approvals: Approval[]
  verdict: VerdictView | null
  executionId: string | null
  rollbackId: string | null
  violation: string | null
}

export interface EventSummary {
  id: string
  type: string
  stream: string
  streamVersion: number
  position: number
  recordedAt: string
  hash: string
}

/** What every command answers: the events it appended, or the first answer when it was a retry. */
export interface CommandResult {
  duplicate: boolean
  events: EventSummary[]
}

export interface CommandOptions {
  /**
   * a retry with the same key returns the first answer and appends nothing; generated when absent; the key
   * sent with another request (another path or body) is refused with 422 idempotency-key-reused
   */
  idempotencyKey?: string
}

export type ProposalInput = Omit<
  ProposalFacts,
  'planHash' | 'actionDigest' | 'proposalId' | 'description' | 'agentId'
> & {
  proposalId?: string
  description?: string
  /** defaults to the client's agent */
  agentId?: string
}

export type SimulationInput = Omit<Simulation, 'proposalId' | 'simulatedBy' | 'simulationId'> & {
  simulationId?: string
}

export type RollbackTestInput = Omit<RollbackTest, 'proposalId' | 'testedBy'>

/** What a governance command answers: applied, or pending the approval of a second policy admin. */
export interface GovernedResult extends CommandResult {
  status: 'applied' | 'pending'
  /** the change request to approve, when pending */
  requestId: string | null
  /** why it needs a second policy admin */
  widens: string | null
}

export type VerdictStreamEvent = {
  position: number
  eventId: string
  recordedAt: string
} & (
  | { type: 'VerdictIssued'; data: Verdict }
  | { type: 'VerdictRevoked'; data: VerdictRevocation }
  | { type: 'VerdictExpired'; data: VerdictExpiry }
)

export interface KillSwitchInput {
  scope: KillSwitchScope
  target: string | null
  reason: string
}

export type GrantInput = Omit<Grant, 'grantId' | 'via'> & { grantId?: string; via?: Grant['via'] }

export interface PromotionResult extends CommandResult {
  requestId: string
  /** approved: one policy admin stands behind it, and a second, distinct one must approve it too */
  outcome: 'requested' | 'approved' | 'promoted' | 'refused'
  reason?: string
}

// ---------- read models, as the service answers them ----------

export interface AgentAuthority {
  agentId: string
  owner: string | null
  /** per environment; an environment not listed is at observe */
  levels: Record<
    string,
    { level: AuthorityLevel; since: string; cause: 'promotion' | 'demotion'; eventId: string }
  >
  pendingPromotions: {
    requestId: string
    environment: string
    from: AuthorityLevel
    to: AuthorityLevel
    requestedAt: string
    eventId: string
  }[]
  refusedPromotions: number
}

export type AgentTrackRecord = TrackRecord & { agentId: string; environment: string; days: number }

export interface TimelineEntry {
  position: number
  eventId: string
  type: string
  recordedAt: string
  actor: string
  hash: string
}

/** What changed, who changed it, how fast it can be undone: one action. */
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
    approvers: { approver: string; role: string; actionDigest: string; eventId: string }[]
    policyVersion: number | null
    policyOwner: string | null
    killSwitchActors: {
      actor: string
      scope: KillSwitchScope
      target: string | null
      action: 'engaged' | 'released'
      eventId: string
    }[]
  }
  howFast: {
    rollbackExpectedSeconds: number | null
    failedAt: string | null
    recoveredAt: string | null
    timeToRecoverySeconds: number | null
  }
  /** where the action stands: submitted, allowed, blocked, executing, succeeded, failed, recovered, ... */
  outcome: string
  violation: boolean
  verdicts: { verdictId: string; revision: number; decision: 'allow' | 'block'; eventId: string }[]
  currentVerdict: {
    verdictId: string
    revision: number
    decision: 'allow' | 'block'
    impact: ImpactClass
    policyVersion: number | null
    decidedAt: string
    expiresAt: string
    revoked: boolean
    expired: boolean
    checks: CheckResult[]
  } | null
  timeline: TimelineEntry[]
  /** the ledger position the audit view reflects */
  asOf: number
}

export interface OpenAction {
  proposalId: string
  agentId: string
  tool: string
  action: string
  resource: string
  environment: string
  impact: ImpactClass
  state: 'awaiting-evidence' | 'blocked' | 'allowed' | 'executing' | 'failed'
  since: string
  ageSeconds: number
  submittedAt: string
  verdict: {
    verdictId: string
    decision: 'allow' | 'block'
    failedChecks: CheckName[]
    expiresAt: string
    ended: 'revoked' | 'expired' | null
  } | null
}

export interface OpenActionsPage {
  actions: OpenAction[]
  next: string | null
  asOf: number
}

export interface LedgerHead {
  position: number
  hash: string
}

/** The Merkle tree's head over the ledger's first `size` events (RFC 9162), the hash in standard base64. */
export interface LedgerTreeHead {
  size: number
  rootHash: string
}

/** An event as the ledger holds it, with its place in the chain. */
export interface LedgerEntry {
  id: string
  type: string
  stream: string
  streamVersion: number
  position: number
  recordedAt: string
  data: unknown
  metadata: Record<string, unknown>
  prevHash: string
  hash: string
}

/** The proof that an event is in the tree of `treeSize` leaves (RFC 9162 section 2.1.3), hashes in base64. */
export interface InclusionProof {
  position: number
  leafIndex: number
  treeSize: number
  rootHash: string
  hashes: string[]
  event: LedgerEntry
}

/** The proof that the tree of `from` leaves is a prefix of the tree of `to` (RFC 9162 section 2.1.4). */
export interface ConsistencyProof {
  from: number
  to: number
  fromRoot: string
  toRoot: string
  hashes: string[]
}

export interface LedgerVerification {
  ok: boolean
  checked: number
  head: LedgerHead
  firstFault: { kind: 'gap' | 'broken-link' | 'bad-hash'; position: number; expectedPosition?: number } | null
}

export interface EngagedKillSwitch {
  scope: KillSwitchScope
  target: string | null
  reason: string
  engagedAt: string
  engagedBy: string
  eventId: string
}
