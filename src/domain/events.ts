import { z } from 'zod'
import { type JsonLimits, jsonLimitViolation } from './limits.js'

// ---------- vocabulary ----------

export const AuthorityLevel = z.enum(['observe', 'recommend', 'simulate', 'execute'])
export type AuthorityLevel = z.infer<typeof AuthorityLevel>
export const AUTHORITY_LADDER: readonly AuthorityLevel[] = AuthorityLevel.options

export const ImpactClass = z.enum(['read', 'low', 'medium', 'high', 'critical'])
export type ImpactClass = z.infer<typeof ImpactClass>

/** The five checks before any high-impact action; which apply to which impact class is policy. */
export const EvidenceCheck = z.enum(['scopedPermission', 'freshState', 'survival', 'rollback', 'lineage'])
export type EvidenceCheck = z.infer<typeof EvidenceCheck>

/**
 * Every check a verdict lists: the always-on gates, the release gate (listed only under a policy that has
 * release gates), then the five evidence checks.
 */
export const CheckName = z.enum([
  'policy',
  'inventory',
  'authority',
  'killSwitch',
  'releaseGate',
  ...EvidenceCheck.options,
])
export type CheckName = z.infer<typeof CheckName>

export const KillSwitchScope = z.enum(['global', 'environment', 'tool', 'agent'])
export type KillSwitchScope = z.infer<typeof KillSwitchScope>

const name = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@/-]*$/, 'letters, digits and . _ : @ / - only')
export const Identifier = name
/**
 * A tool's or an action's name: no '.', so `<tool>.<action>` names exactly one registered pair and no tool
 * name is a prefix of another's pair (`aws` + `s3.delete` and `aws.s3` + `delete` cannot both exist).
 */
export const ToolName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, "letters, digits, '_' and '-' only (no '.')")
export const ActionName = ToolName
/** What a grant names: a tool or action name, or '*' for any. */
const GrantedName = z.union([ToolName, z.literal('*')])
export const Environment = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and - only')
export const MAX_RESOURCE_NAME_LENGTH = 500
/** What a proposal acts on and an observer observes: any text (`deployment/web`); one path segment in a URL. */
export const ResourceName = z.string().min(1).max(MAX_RESOURCE_NAME_LENGTH)
export const Timestamp = z.iso.datetime({ offset: false, precision: 3 })
const Hash = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>')
/**
 * What a verdict, every approval, simulation, rollback test and execution binds to: the digest of the whole
 * action (proposal id, tool, action, resource, environment, executing identity and plan), computed by the
 * ledger at submission, so evidence for one action never counts for another.
 */
export const ActionDigest = Hash
/** A reason a person reads, at most this long. */
export const MAX_REASON_LENGTH = 2000
const Reason = z.string().min(1).max(MAX_REASON_LENGTH)
/** A reason the service words itself, kept within what the model accepts. */
export const clipReason = (text: string): string => {
  if (text.length <= MAX_REASON_LENGTH) return text
  const cut = MAX_REASON_LENGTH - 1
  // never half of a surrogate pair: a lone surrogate is no text, and canonical JSON refuses it
  const end = /[\uD800-\uDBFF]/.test(text.charAt(cut - 1)) ? cut - 1 : cut
  return `${text.slice(0, end)}…`
}
const Seconds = z.number().int().nonnegative()
/** A token's jti as an identity provider may write it: printable ASCII without spaces. */
export const TokenId = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
/** A span of time in seconds: ten years at most, so every deadline it sets is a real date. */
const Duration = Seconds.max(315_360_000)
/** The time limit on open proposals of a policy that does not set one: a week. */
export const PROPOSAL_MAX_OPEN_SECONDS = 604_800

export const KillSwitchRef = z.object({
  scope: KillSwitchScope,
  /** null for the global switch; otherwise the environment, tool or agent it stops */
  target: Identifier.nullable(),
})
export type KillSwitchRef = z.infer<typeof KillSwitchRef>

/**
 * The least track record a promotion to a rung needs, over the window before the request: proposals made,
 * simulations passed and their survival rate, and at most so many violations and failed executions.
 */
export const PromotionRequirement = z.object({
  windowDays: z.number().int().min(1).max(366),
  minProposals: z.number().int().min(0),
  minSimulationsPassed: z.number().int().min(0),
  minSurvivalRate: z.number().min(0).max(1),
  maxViolations: z.number().int().min(0),
  maxFailedExecutions: z.number().int().min(0),
})
export type PromotionRequirement = z.infer<typeof PromotionRequirement>
/** Per rung a promotion reaches (observe is where every agent starts). */
export const PromotionRequirements = z.object({
  recommend: PromotionRequirement,
  simulate: PromotionRequirement,
  execute: PromotionRequirement,
})
export type PromotionRequirements = z.infer<typeof PromotionRequirements>

/** Whom an identity binding is for: an agent acts through it, an executor runs as it. */
export const BindingRole = z.enum(['agent', 'executor'])
export type BindingRole = z.infer<typeof BindingRole>

export const TrackRecord = z.object({
  windowStart: Timestamp,
  windowEnd: Timestamp,
  proposals: Seconds,
  simulationsPassed: Seconds,
  simulationSurvivalRate: z.number().min(0).max(1),
  violations: Seconds,
  failedExecutions: Seconds,
})
export type TrackRecord = z.infer<typeof TrackRecord>

export const CheckResult = z.object({
  check: CheckName,
  status: z.enum(['pass', 'fail', 'not-required']),
  reason: Reason,
})
export type CheckResult = z.infer<typeof CheckResult>

export const ApprovalRequirement = z.object({
  count: z.number().int().min(0).max(10),
  roles: z.array(Identifier).min(1),
})

export const ImpactRequirements = z.object({
  checks: z.array(EvidenceCheck),
  approvals: ApprovalRequirement,
})
export type ImpactRequirements = z.infer<typeof ImpactRequirements>

export const BranchKind = z.enum([
  'baseline',
  'dependency-down',
  'concurrent-change',
  'partial-failure',
  'stale-read',
  'rollback-failure',
  'other-adversarial',
])
export type BranchKind = z.infer<typeof BranchKind>
/** The branch kinds that put a plan under pressure: every kind but the baseline. */
export const AdversarialBranchKind = BranchKind.exclude(['baseline'])
export type AdversarialBranchKind = z.infer<typeof AdversarialBranchKind>

export const SimulationBranch = z.object({
  name: Identifier,
  kind: BranchKind,
  counterfactual: z.string().min(1).max(2000),
  outcome: z.enum(['survived', 'failed']),
  detail: z.string().max(4000).optional(),
})

/** A workflow: a registered tool action, `<tool>.<action>`, each part a ToolName (`toolActionOf` splits it). */
export const WorkflowName = z
  .string()
  .max(201)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}\.[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/,
    "a workflow: <tool>.<action>, each at most 100 letters, digits, '_' and '-'",
  )
/** The most simulation runs a release gate can count. */
export const MAX_GATE_RUNS = 100
/**
 * A release gate: a workflow's proposals of these impact classes are blocked (check `releaseGate`) until the
 * workflow is released, that is until its last `runs` simulation runs survived at `survivalThreshold` or above
 * (adversarial branches survived over adversarial branches run) and exercised every required branch kind.
 */
export const ReleaseGate = z
  .object({
    /** the workflow gated, `<tool>.<action>`, or '*' for every workflow */
    workflow: z.union([WorkflowName, z.literal('*')]),
    /** the environment whose proposals it gates; null: every environment */
    environment: Environment.nullable().default(null),
    /** the impact classes it gates */
    impacts: z.array(ImpactClass).min(1).max(5),
    /** survival counted over the proposing agent's own runs of the workflow, or over every agent's */
    perAgent: z.boolean().default(false),
    /** the last so many runs count; a workflow with fewer runs is not released */
    runs: z.number().int().min(1).max(MAX_GATE_RUNS),
    survivalThreshold: z.number().min(0).max(1),
    /** adversarial branch kinds the counted runs must all have exercised between them */
    requiredBranchKinds: z.array(AdversarialBranchKind).max(6).default([]),
  })
  .strict()
export type ReleaseGate = z.infer<typeof ReleaseGate>

/** A free-form JSON object as recorded: read back as it is, whatever an older ledger let in. */
export const JsonObject = z.record(z.string(), z.unknown())

/** A free-form JSON object on its way in: within its limits (limits.ts), or an issue naming the one passed. */
export const boundedJsonObject = (limits: JsonLimits) =>
  JsonObject.superRefine((value, ctx) => {
    const violation = jsonLimitViolation(value, limits)
    if (violation) {
      ctx.addIssue({
        code: 'custom',
        message: violation.message,
        params: { limit: violation.limit, tooLarge: violation.tooLarge },
      })
    }
  }).describe(
    `JSON of at most ${limits.maxBytes} bytes (canonical), ${limits.maxDepth} levels, ${limits.maxKeys} keys per object, ${limits.maxStringLength} characters per string and ${limits.maxArrayLength} items per array; numbers within ±(2^53-1)`,
  )

// ---------- the events, one schema each ----------

const event = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.object({ type: z.literal(type), data: z.object(data).strict() })

export const AgentRegistered = event('AgentRegistered', {
  agentId: Identifier,
  owner: Identifier,
  description: z.string().max(2000).default(''),
})
export const PromotionRequested = event('PromotionRequested', {
  agentId: Identifier,
  requestId: Identifier,
  environment: Environment,
  from: AuthorityLevel,
  to: AuthorityLevel,
  trackRecord: TrackRecord,
  /** the token subject that asked: the agent itself or a policy admin */
  requestedBy: Identifier,
})
/** One policy admin stands behind a pending promotion; it takes effect once two distinct admins do. */
export const PromotionApproved = event('PromotionApproved', {
  agentId: Identifier,
  requestId: Identifier,
  environment: Environment,
  approvedBy: Identifier,
})
export const PromotionRefused = event('PromotionRefused', {
  agentId: Identifier,
  requestId: Identifier,
  environment: Environment,
  from: AuthorityLevel,
  to: AuthorityLevel,
  reason: Reason,
})
export const AgentPromoted = event('AgentPromoted', {
  agentId: Identifier,
  requestId: Identifier,
  environment: Environment,
  from: AuthorityLevel,
  to: AuthorityLevel,
  approvedBy: Identifier,
  /** every distinct policy admin behind the promotion, the requester included when it was one */
  endorsedBy: z.array(Identifier).min(2),
})
export const AgentDemoted = event('AgentDemoted', {
  agentId: Identifier,
  environment: Environment,
  from: AuthorityLevel,
  to: AuthorityLevel,
  cause: z.enum(['violation', 'unrecovered-failure']),
  proposalId: Identifier,
  reason: Reason,
})
export const ToolActionRegistered = event('ToolActionRegistered', {
  tool: ToolName,
  action: ActionName,
  impact: ImpactClass,
  reversible: z.boolean(),
  description: z.string().max(2000).default(''),
})
export const ScopeGranted = event('ScopeGranted', {
  grantId: Identifier,
  identity: Identifier,
  tool: GrantedName,
  action: GrantedName,
  /** glob over resource names; '*' matches any run of characters */
  resourcePattern: z.string().min(1).max(500),
  environment: z.string().min(1).max(64),
  /** an inherited grant (from a group or role) never satisfies high or critical */
  via: z.enum(['direct', 'inherited']),
})
export const ScopeRevoked = event('ScopeRevoked', {
  grantId: Identifier,
  reason: Reason,
})
export const PolicyPublished = event('PolicyPublished', {
  version: z.number().int().positive(),
  /** the accountable team; who published and approved it come from their tokens */
  owner: Identifier,
  requirements: z.object({
    read: ImpactRequirements,
    low: ImpactRequirements,
    medium: ImpactRequirements,
    high: ImpactRequirements,
    critical: ImpactRequirements,
  }),
  freshnessMaxAgeSeconds: Duration,
  minAdversarialBranches: z.number().int().min(0).max(100),
  survivalThreshold: z.number().min(0).max(1),
  rollbackTestMaxAgeSeconds: Duration,
  recoveryTimeObjectiveSeconds: Duration,
  /** how long a proposal may stay open without executing before it expires (ProposalExpired) */
  proposalMaxOpenSeconds: Duration.min(60).default(PROPOSAL_MAX_OPEN_SECONDS),
  verdictTtlSeconds: Duration.min(1),
  /** tried in order: the first that names a proposal's workflow (or '*'), environment and impact applies */
  releaseGates: z.array(ReleaseGate).max(50).default([]),
  /** the least track record each rung needs, and per environment where one differs */
  promotion: PromotionRequirements,
  promotionByEnvironment: z.record(Environment, PromotionRequirements),
  publishedBy: Identifier,
  /** the second policy admin; null only for the first policy of an empty ledger, published by one */
  approvedBy: Identifier.nullable(),
})
/** A policy as its admin writes it: who published and approved it come from their tokens. */
export const PolicyDraft = PolicyPublished.shape.data.omit({ publishedBy: true, approvedBy: true })
export type PolicyDraft = z.infer<typeof PolicyDraft>
/**
 * A policy version in shadow mode: decided beside the live policy on every new event, never enforced, until its
 * version is published live (ShadowPolicyPromoted) or it is withdrawn. Two policy admins stand behind it.
 */
export const ShadowPolicyPublished = event('ShadowPolicyPublished', PolicyPublished.shape.data.shape)
/** The shadow policy stops being decided: a policy admin withdrew it, or another policy took its version live. */
export const ShadowPolicyWithdrawn = event('ShadowPolicyWithdrawn', {
  version: z.number().int().positive(),
  reason: Reason,
})
/** The shadow policy's version was published live with its very terms: it is the policy in force now. */
export const ShadowPolicyPromoted = event('ShadowPolicyPromoted', {
  version: z.number().int().positive(),
})
export const KillSwitchEngaged = event('KillSwitchEngaged', {
  ...KillSwitchRef.shape,
  reason: Reason,
})
export const KillSwitchReleased = event('KillSwitchReleased', {
  ...KillSwitchRef.shape,
  reason: Reason,
})
export const IdentityBound = event('IdentityBound', {
  principal: Identifier,
  role: BindingRole,
  identity: Identifier,
  requestedBy: Identifier,
  approvedBy: Identifier,
})
export const IdentityUnbound = event('IdentityUnbound', {
  principal: Identifier,
  role: BindingRole,
  identity: Identifier,
  reason: Reason,
})
/** A change that widens authority, waiting for a second, distinct policy admin. */
export const GovernanceChange = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('publish-policy'), policyVersion: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('publish-shadow-policy'), policyVersion: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('release-kill-switch'), ...KillSwitchRef.shape, reason: Reason }).strict(),
  z
    .object({
      kind: z.literal('register-tool-action'),
      tool: ToolName,
      action: ActionName,
      impact: ImpactClass,
      reversible: z.boolean(),
      description: z.string().max(2000),
    })
    .strict(),
  z.object({ kind: z.literal('grant-scope'), ...ScopeGranted.shape.data.shape }).strict(),
  z
    .object({
      kind: z.literal('bind-identity'),
      principal: Identifier,
      role: BindingRole,
      identity: Identifier,
    })
    .strict(),
])
export type GovernanceChange = z.infer<typeof GovernanceChange>
export const ChangeRequested = event('ChangeRequested', {
  requestId: Identifier,
  change: GovernanceChange,
  /** for a policy, the whole version proposed (kept here until a second admin approves it) */
  policy: JsonObject.nullable(),
  /** why it needs a second admin, in words */
  widens: Reason,
  requestedBy: Identifier,
  /** the stream it changes, at the version it was judged on: approved as requested, or not at all */
  basedOn: z.object({ stream: z.string().min(1).max(600), version: z.number().int().nonnegative() }),
})
export const ChangeApproved = event('ChangeApproved', {
  requestId: Identifier,
  approvedBy: Identifier,
})
export const ChangeRefused = event('ChangeRefused', {
  requestId: Identifier,
  refusedBy: Identifier,
  reason: Reason,
})
export const StateObserved = event('StateObserved', {
  environment: Environment,
  resource: ResourceName,
  version: z.string().min(1).max(200),
  digest: z.string().min(1).max(200),
  observedAt: Timestamp,
})
export const ProposalSubmitted = event('ProposalSubmitted', {
  proposalId: Identifier,
  agentId: Identifier,
  executingIdentity: Identifier,
  tool: ToolName,
  action: ActionName,
  resource: ResourceName,
  environment: Environment,
  plan: JsonObject,
  /** computed by the ledger from the canonical JSON of the plan, never taken from the caller */
  planHash: Hash,
  /** computed by the ledger over the whole action: what every piece of evidence and the verdict bind to */
  actionDigest: ActionDigest,
  expectedImpact: ImpactClass,
  snapshot: z.object({ version: z.string().min(1).max(200) }),
  description: z.string().max(4000).default(''),
})
/** The proposing agent, from the 'simulate' rung up, asks the harness to run its plan's branches. */
export const SimulationRequested = event('SimulationRequested', {
  proposalId: Identifier,
  requestId: Identifier,
  actionDigest: ActionDigest,
  /** branch kinds the agent asks for; the harness decides what it runs */
  branchKinds: z.array(BranchKind).max(20),
})
export const SimulationRecorded = event('SimulationRecorded', {
  proposalId: Identifier,
  simulationId: Identifier,
  /** the simulation request it answers */
  requestId: Identifier,
  actionDigest: ActionDigest,
  /** the simulator that ran it, from its token */
  simulatedBy: Identifier,
  branches: z.array(SimulationBranch).min(1).max(1000),
})
export const RollbackTested = event('RollbackTested', {
  proposalId: Identifier,
  actionDigest: ActionDigest,
  /** the simulator or executor that ran the test, from its token */
  testedBy: Identifier,
  playbook: z.string().min(1).max(20000),
  testRunId: Identifier,
  testedAt: Timestamp,
  outcome: z.enum(['passed', 'failed']),
  expectedRecoverySeconds: Duration,
  killSwitch: KillSwitchRef,
})
export const ApprovalGranted = event('ApprovalGranted', {
  proposalId: Identifier,
  actionDigest: ActionDigest,
  approver: Identifier,
  /** one of the approval roles the approver's token grants */
  role: Identifier,
})
export const VerdictIssued = event('VerdictIssued', {
  verdictId: z.uuid(),
  proposalId: Identifier,
  /** 1, 2, 3, ... per proposal: at most one verdict per revision */
  revision: z.number().int().positive(),
  decision: z.enum(['allow', 'block']),
  checks: z.array(CheckResult),
  agentId: Identifier,
  executingIdentity: Identifier,
  tool: ToolName,
  action: ActionName,
  resource: z.string(),
  environment: Environment,
  impact: ImpactClass,
  planHash: Hash,
  actionDigest: ActionDigest,
  resourceVersion: z.string().nullable(),
  policyVersion: z.number().int().positive().nullable(),
  decidedAt: Timestamp,
  expiresAt: Timestamp,
  supersedes: z.uuid().nullable(),
  /** the ledger event whose arrival led to this decision */
  basedOnEventId: z.uuid(),
  /**
   * compact JWS (EdDSA, typ verdict+jwt) over the canonical JSON of every other field and the registered claims
   * they give (iss, sub, aud, iat, exp, jti); recorded before the claims: typ verdict+jws, every other field alone
   */
  signature: z.string(),
})
export const VerdictRevoked = event('VerdictRevoked', {
  verdictId: z.uuid(),
  proposalId: Identifier,
  reason: Reason,
  killSwitch: KillSwitchRef.nullable(),
})
export const VerdictExpired = event('VerdictExpired', {
  verdictId: z.uuid(),
  proposalId: Identifier,
  expiresAt: Timestamp,
})
export const ExecutionStarted = event('ExecutionStarted', {
  proposalId: Identifier,
  executionId: Identifier,
  /** the live allow verdict the executor cites */
  verdictId: z.uuid().nullable(),
  actionDigest: ActionDigest,
  executor: Identifier,
})
/** A start the gate refused: nothing ran; counted as an unsafe action blocked before execution. */
export const ExecutionRefused = event('ExecutionRefused', {
  ...ExecutionStarted.shape.data.shape,
  reasons: z
    .array(z.object({ specification: Identifier, reason: Reason }))
    .min(1)
    .max(20),
})
export const ExecutionSucceeded = event('ExecutionSucceeded', {
  proposalId: Identifier,
  executionId: Identifier,
  resourceVersionAfter: z.string().min(1).max(200).nullable(),
})
export const ExecutionFailed = event('ExecutionFailed', {
  proposalId: Identifier,
  executionId: Identifier,
  error: Reason,
  resourceVersionAfter: z.string().min(1).max(200).nullable(),
})
export const ViolationRecorded = event('ViolationRecorded', {
  proposalId: Identifier,
  executionId: Identifier,
  agentId: Identifier,
  /** the principal that ran the action without a live allow */
  responsible: Identifier,
  verdictId: z.uuid().nullable(),
  kind: z.enum([
    'no-verdict',
    'unknown-verdict',
    'not-allowed',
    'expired',
    'revoked',
    'superseded',
    'mismatch',
  ]),
  reason: Reason,
})
export const RecoveryDeadlinePassed = event('RecoveryDeadlinePassed', {
  proposalId: Identifier,
  executionId: Identifier,
  failedAt: Timestamp,
  deadline: Timestamp,
})
export const RollbackStarted = event('RollbackStarted', {
  proposalId: Identifier,
  rollbackId: Identifier,
  executionId: Identifier,
})
export const RollbackCompleted = event('RollbackCompleted', {
  proposalId: Identifier,
  rollbackId: Identifier,
  resourceVersionAfter: z.string().min(1).max(200).nullable(),
})
export const RollbackFailed = event('RollbackFailed', {
  proposalId: Identifier,
  rollbackId: Identifier,
  error: Reason,
})
export const ProposalWithdrawn = event('ProposalWithdrawn', {
  proposalId: Identifier,
  reason: Reason,
  /** the proposal of the same agent that replaces this one, when it is withdrawn for a newer one */
  supersededBy: Identifier.optional(),
})
/**
 * An open proposal reached the policy's time limit on open proposals without executing: it ends, and a start
 * on it is refused. Written by the scheduler, like the other deadlines.
 */
export const ProposalExpired = event('ProposalExpired', {
  proposalId: Identifier,
  submittedAt: Timestamp,
  deadline: Timestamp,
})
/**
 * At start, the service found an event near the ledger's head without the answer the rules give it, a verdict of
 * this proposal (appended by a version that decided after the commit, and stopped before it did). This event is
 * the cause the proposal is decided again for, on the world as it is now, in the commit that appends it, so that
 * replay reproduces the answer. Written by the decision service.
 */
export const DecisionResumed = event('DecisionResumed', {
  proposalId: Identifier,
  /** the event the ledger holds without the answer the rules give it */
  unansweredEventId: z.string().max(200),
  reason: Reason,
})
/** A policy admin revoked a bearer token: the service refuses it from then on. */
export const TokenRevoked = event('TokenRevoked', {
  /** the token's jti */
  jti: TokenId,
  reason: Reason,
})

/** What a release gate counted: the figures a release, a revocation and a gate check give. */
export const ReleaseFigures = z.object({
  /** runs counted: the last `runsRequired` at most */
  runs: z.number().int().min(0),
  runsRequired: z.number().int().min(1),
  adversarial: z.number().int().min(0),
  survived: z.number().int().min(0),
  survivalRate: z.number().min(0).max(1),
  threshold: z.number().min(0).max(1),
  kindsCovered: z.array(AdversarialBranchKind),
  kindsMissing: z.array(AdversarialBranchKind),
})
export type ReleaseFigures = z.infer<typeof ReleaseFigures>
const releaseFields = {
  tool: ToolName,
  action: ActionName,
  /** the agent whose runs count, under a per-agent gate; null: every agent's */
  agentId: Identifier.nullable(),
  gate: ReleaseGate,
  policyVersion: z.number().int().positive(),
  figures: ReleaseFigures,
  /** the simulation whose record changed the answer; null when a policy did */
  simulationId: Identifier.nullable(),
  reason: Reason,
}
/** A workflow passed a release gate: decided by the decision service, from the ledger alone. */
export const WorkflowReleased = event('WorkflowReleased', releaseFields)
/** A released workflow no longer passes its gate, or the policy in force no longer has that gate. */
export const WorkflowReleaseRevoked = event('WorkflowReleaseRevoked', releaseFields)
export const DomainEvent = z.discriminatedUnion('type', [
  AgentRegistered,
  PromotionRequested,
  PromotionApproved,
  PromotionRefused,
  AgentPromoted,
  AgentDemoted,
  WorkflowReleased,
  WorkflowReleaseRevoked,
  ToolActionRegistered,
  ScopeGranted,
  ScopeRevoked,
  PolicyPublished,
  ShadowPolicyPublished,
  ShadowPolicyWithdrawn,
  ShadowPolicyPromoted,
  KillSwitchEngaged,
  KillSwitchReleased,
  IdentityBound,
  IdentityUnbound,
  ChangeRequested,
  ChangeApproved,
  ChangeRefused,
  StateObserved,
  ProposalSubmitted,
  SimulationRequested,
  SimulationRecorded,
  RollbackTested,
  ApprovalGranted,
  VerdictIssued,
  VerdictRevoked,
  VerdictExpired,
  ExecutionStarted,
  ExecutionRefused,
  ExecutionSucceeded,
  ExecutionFailed,
  ViolationRecorded,
  RecoveryDeadlinePassed,
  RollbackStarted,
  RollbackCompleted,
  RollbackFailed,
  ProposalWithdrawn,
  ProposalExpired,
  DecisionResumed,
  TokenRevoked,
])
export type DomainEvent = z.infer<typeof DomainEvent>
export type EventType = DomainEvent['type']
export type EventOf<T extends EventType> = Extract<DomainEvent, { type: T }>
export type DataOf<T extends EventType> = EventOf<T>['data']
export const EVENT_TYPES: readonly EventType[] = DomainEvent.options.map((o) => o.shape.type.value)

/** Events that only the decision service writes; its own state applies them when it decides. */
export const DECISION_OUTPUT_TYPES: ReadonlySet<EventType> = new Set([
  'VerdictIssued',
  'VerdictRevoked',
  'ViolationRecorded',
  'AgentDemoted',
  'WorkflowReleased',
  'WorkflowReleaseRevoked',
])

// ---------- the envelope ----------

export const EventMetadata = z.object({
  /** the authenticated principal, never one named in a request body */
  actor: Identifier,
  correlationId: z.string().max(200).nullable(),
  causationId: z.string().max(200).nullable(),
  idempotencyKey: z.string().max(300).nullable(),
  /** what the idempotency key was first used for (method, path, body), when the request can be told apart */
  requestDigest: Hash.optional(),
})
export type EventMetadata = z.infer<typeof EventMetadata>

export const EnvelopeFields = z.object({
  id: z.uuid(),
  stream: z.string().min(1).max(600),
  streamVersion: z.number().int().positive(),
  position: z.number().int().positive(),
  recordedAt: Timestamp,
  metadata: EventMetadata,
  prevHash: z.string().regex(/^[0-9a-f]{64}$/),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
})

/** A ledger event: a domain event in its envelope. */
export const Envelope = EnvelopeFields.extend({
  type: z.enum(DomainEvent.options.map((o) => o.shape.type.value) as [EventType, ...EventType[]]),
  data: JsonObject,
})
export type LedgerEvent<E extends { type: string; data: unknown } = DomainEvent> = z.infer<
  typeof EnvelopeFields
> &
  E

/** Parses a stored envelope into a typed domain event, or throws with the zod issues. */
export const parseDomainEvent = (stored: { type: string; data: unknown }): DomainEvent =>
  DomainEvent.parse({ type: stored.type, data: stored.data })

/**
 * The typed form of each stored envelope typed so far, by the envelope object: an event is typed once, when it is
 * appended (by the decision service, which reads every event of a commit), and every reader handed the same
 * envelope (the ledger's in-memory tail serves the same objects to every follower) shares that one decoded copy.
 */
const typedEnvelopes = new WeakMap<object, LedgerEvent>()

/** Types a stored envelope; an event the model cannot read is an error that names its position, never skipped. */
export const toLedgerEvent = (
  stored: z.infer<typeof EnvelopeFields> & { type: string; data: unknown },
): LedgerEvent => {
  const known = typedEnvelopes.get(stored)
  if (known) return known
  const parsed = DomainEvent.safeParse({ type: stored.type, data: stored.data })
  if (!parsed.success) {
    throw new Error(
      `ledger event at position ${stored.position} (${stored.type}) does not match the model: ${parsed.error.message}`,
    )
  }
  const typed = { ...stored, ...parsed.data } as LedgerEvent
  typedEnvelopes.set(stored, typed)
  return typed
}

// ---------- stream names ----------

export const streams = {
  agent: (agentId: string) => `agent-${agentId}`,
  tool: (tool: string, action: string) => `tool-${tool}.${action}`,
  /** a workflow's releases and their revocations */
  workflow: (tool: string, action: string) => `workflow-${tool}.${action}`,
  grant: (grantId: string) => `grant-${grantId}`,
  policy: () => 'policy',
  killSwitch: (ref: KillSwitchRef) => `killswitch-${ref.scope}${ref.target === null ? '' : `.${ref.target}`}`,
  resource: (environment: string, resource: string) => `resource-${environment}.${resource}`,
  proposal: (proposalId: string) => `proposal-${proposalId}`,
  /** the principals bound to one executing identity: the agents acting through it, the executors running as it */
  identity: (identity: string) => `identity-${identity}`,
  /** a governance change waiting for its second policy admin */
  change: (requestId: string) => `change-${requestId}`,
  /** every token revocation, in one stream the service reads whole at start */
  tokenRevocations: () => 'token-revocations',
} as const
