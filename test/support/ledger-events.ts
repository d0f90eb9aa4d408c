import type { z } from 'zod'
import type { UnsignedVerdict } from '../../src/decision/decide.js'
import { everyEvent } from '../../src/decision/replay.js'
import { actionDigestOf, planHashOf } from '../../src/domain/canonical.js'
import { DEFAULT_PROMOTION } from '../../src/domain/eligibility.js'
import {
  type CheckName,
  type CheckResult,
  type DomainEvent,
  type EventType,
  type LedgerEvent,
  parseDomainEvent,
  streams,
} from '../../src/domain/events.js'
import { uuidFromName } from '../../src/domain/ids.js'
import type { EventStore, NewEvent, StoredEvent } from '../../src/store/port.js'

/** What a test writes for an event's data: defaults may be left out, as on the wire. */
export type DataIn<T extends EventType> = Extract<z.input<typeof DomainEvent>, { type: T }>['data']

export interface EventOptions {
  readonly actor?: string
}

const fakeHash = (position: number): string => position.toString(16).padStart(64, '0')

/** The stream a domain event belongs to, as the service would choose it. */
export const streamOf = (event: DomainEvent): string => {
  const data = event.data as Record<string, unknown>
  if (typeof data.proposalId === 'string' && event.type !== 'AgentDemoted')
    return streams.proposal(data.proposalId)
  switch (event.type) {
    case 'ToolActionRegistered':
      return streams.tool(event.data.tool, event.data.action)
    case 'ScopeGranted':
    case 'ScopeRevoked':
      return streams.grant(event.data.grantId)
    case 'PolicyPublished':
      return streams.policy()
    case 'WorkflowReleased':
    case 'WorkflowReleaseRevoked':
      return streams.workflow(event.data.tool, event.data.action)
    case 'KillSwitchEngaged':
    case 'KillSwitchReleased':
      return streams.killSwitch(event.data)
    case 'StateObserved':
      return streams.resource(event.data.environment, event.data.resource)
    case 'IdentityBound':
    case 'IdentityUnbound':
      return streams.identity(event.data.identity)
    case 'ChangeRequested':
    case 'ChangeApproved':
    case 'ChangeRefused':
      return streams.change(event.data.requestId)
    default:
      return streams.agent(typeof data.agentId === 'string' ? data.agentId : 'unknown')
  }
}

/**
 * Builds ledger envelopes for domain events in order: increasing positions, the time the test sets,
 * deterministic ids and fake (well-formed, unchained) hashes. Data is validated by the real schemas.
 */
export class LedgerBuilder {
  private position = 0
  private now: number
  private readonly versions = new Map<string, number>()

  constructor(start = '2024-05-01T10:00:00.000Z') {
    this.now = Date.parse(start)
  }

  /** sets the time of the next events */
  at(time: string): this {
    this.now = Date.parse(time)
    return this
  }

  /** moves the time of the next events forward */
  after(seconds: number): this {
    this.now += seconds * 1000
    return this
  }

  event<T extends EventType>(type: T, data: DataIn<T>, options: EventOptions = {}): LedgerEvent {
    const domain = parseDomainEvent({ type, data })
    const stream = streamOf(domain)
    const streamVersion = (this.versions.get(stream) ?? 0) + 1
    this.versions.set(stream, streamVersion)
    this.position += 1
    return {
      id: uuidFromName(`event-${this.position}`),
      stream,
      streamVersion,
      position: this.position,
      recordedAt: new Date(this.now).toISOString(),
      metadata: {
        actor: options.actor ?? defaultActor(domain),
        correlationId: null,
        causationId: null,
        idempotencyKey: null,
      },
      prevHash: fakeHash(this.position - 1),
      hash: fakeHash(this.position),
      ...domain,
    }
  }
}

/** The principal that would write each kind of event. */
const defaultActor = (event: DomainEvent): string => {
  switch (event.type) {
    case 'ProposalSubmitted':
      return event.data.agentId
    case 'SimulationRecorded':
      return event.data.simulatedBy
    case 'RollbackTested':
      return event.data.testedBy
    case 'ApprovalGranted':
      return event.data.approver
    case 'ExecutionStarted':
    case 'ExecutionRefused':
      return event.data.executor
    case 'PromotionRequested':
    case 'ChangeRequested':
      return event.data.requestedBy
    case 'PromotionApproved':
    case 'AgentPromoted':
    case 'IdentityBound':
    case 'ChangeApproved':
      return event.data.approvedBy
    case 'ChangeRefused':
      return event.data.refusedBy
    case 'PolicyPublished':
      return event.data.approvedBy ?? event.data.publishedBy
    default:
      return 'governance-service'
  }
}

/** The same event as a writer hands it to the ledger. */
export const toNewEvent = (event: LedgerEvent): NewEvent => ({
  type: event.type,
  data: event.data,
  metadata: { actor: event.metadata.actor },
})

// ---------- data factories for the common events ----------

export const plan = { steps: ['scale deployment web to 3 replicas'] }
export const planHash = planHashOf(plan)

export const verdictIdOf = (proposalId: string, revision: number): string =>
  uuidFromName(`verdict-${proposalId}-${revision}`)

export interface ProposalFacts {
  readonly proposalId: string
  readonly agentId?: string
  readonly executingIdentity?: string
  readonly tool?: string
  readonly action?: string
  readonly resource?: string
  readonly environment?: string
  readonly expectedImpact?: DataIn<'ProposalSubmitted'>['expectedImpact']
  readonly snapshot?: string
}

export const EXECUTING_IDENTITY = 'svc-deployer'

/** The action a proposal names, and so what its digest covers. */
export const actionOf = (facts: ProposalFacts) => ({
  proposalId: facts.proposalId,
  tool: facts.tool ?? 'kubectl',
  action: facts.action ?? 'scale',
  resource: facts.resource ?? 'deployment/web',
  environment: facts.environment ?? 'production',
  executingIdentity: facts.executingIdentity ?? EXECUTING_IDENTITY,
  plan,
})

/** The action digest the ledger computes at submission. */
export const actionDigestFor = (facts: ProposalFacts): string => actionDigestOf(actionOf(facts))

export const proposalData = (facts: ProposalFacts): DataIn<'ProposalSubmitted'> => {
  const action = actionOf(facts)
  return {
    ...action,
    agentId: facts.agentId ?? 'agent-1',
    planHash,
    actionDigest: actionDigestOf(action),
    expectedImpact: facts.expectedImpact ?? 'high',
    snapshot: { version: facts.snapshot ?? 'v41' },
  }
}

/** A binding of an agent (or an executor) to an identity, by two policy admins. */
export const bindingData = (
  principal: string,
  identity = EXECUTING_IDENTITY,
  role: 'agent' | 'executor' = 'agent',
): DataIn<'IdentityBound'> => ({
  principal,
  role,
  identity,
  requestedBy: 'admin-1',
  approvedBy: 'admin-2',
})

/** Every check, passing except the failed ones. */
export const checks = (failed: readonly CheckName[] = []): CheckResult[] =>
  (
    [
      'policy',
      'inventory',
      'authority',
      'killSwitch',
      'scopedPermission',
      'freshState',
      'survival',
      'rollback',
      'lineage',
    ] as const
  ).map((check) => ({
    check,
    status: failed.includes(check) ? 'fail' : 'pass',
    reason: failed.includes(check) ? `${check} failed` : `${check} passed`,
  }))

export interface VerdictFacts {
  readonly revision: number
  readonly decision: 'allow' | 'block'
  readonly failed?: readonly CheckName[]
  readonly impact?: DataIn<'VerdictIssued'>['impact']
  readonly policyVersion?: number | null
  readonly decidedAt: string
  readonly expiresAt?: string
}

export const verdictData = (proposal: ProposalFacts, facts: VerdictFacts): DataIn<'VerdictIssued'> => {
  const p = proposalData(proposal)
  return {
    verdictId: verdictIdOf(p.proposalId, facts.revision),
    proposalId: p.proposalId,
    revision: facts.revision,
    decision: facts.decision,
    checks: checks(facts.failed),
    agentId: p.agentId,
    executingIdentity: p.executingIdentity,
    tool: p.tool,
    action: p.action,
    resource: p.resource,
    environment: p.environment,
    impact: facts.impact ?? p.expectedImpact,
    planHash,
    actionDigest: p.actionDigest,
    resourceVersion: p.snapshot.version,
    policyVersion: facts.policyVersion === undefined ? 1 : facts.policyVersion,
    decidedAt: facts.decidedAt,
    expiresAt: facts.expiresAt ?? new Date(Date.parse(facts.decidedAt) + 15 * 60_000).toISOString(),
    supersedes: facts.revision > 1 ? verdictIdOf(p.proposalId, facts.revision - 1) : null,
    basedOnEventId: uuidFromName(`basis-${p.proposalId}-${facts.revision}`),
    signature: 'header.payload.signature',
  }
}

const requirement = (checks: DataIn<'PolicyPublished'>['requirements']['read']['checks'], count: number) => ({
  checks,
  approvals: { count, roles: ['sre'] },
})

/**
 * A policy with the default requirements of the design: the first published by one admin on an empty ledger,
 * every later one approved by a second.
 */
export const policyData = (version: number, owner: string): DataIn<'PolicyPublished'> => ({
  version,
  owner,
  requirements: {
    read: requirement([], 0),
    low: requirement(['scopedPermission', 'freshState'], 0),
    medium: requirement(['scopedPermission', 'freshState', 'rollback', 'lineage'], 1),
    high: requirement(['scopedPermission', 'freshState', 'survival', 'rollback', 'lineage'], 1),
    critical: requirement(['scopedPermission', 'freshState', 'survival', 'rollback', 'lineage'], 2),
  },
  freshnessMaxAgeSeconds: 300,
  minAdversarialBranches: 3,
  survivalThreshold: 0.9,
  rollbackTestMaxAgeSeconds: 86_400,
  recoveryTimeObjectiveSeconds: 900,
  verdictTtlSeconds: 900,
  promotion: DEFAULT_PROMOTION,
  promotionByEnvironment: {},
  publishedBy: 'admin-1',
  approvedBy: version === 1 ? null : 'admin-2',
})

/** Every event of a ledger in order, read page by page (one read stops at its byte budget). */
export const wholeLedger = async (store: EventStore): Promise<StoredEvent[]> => {
  const events: StoredEvent[] = []
  for await (const event of everyEvent(store)) events.push(event)
  return events
}

/** One verdict with every field, the same in every test of signing and verifying; `overrides` change some. */
export const sampleVerdict = (overrides: Partial<UnsignedVerdict> = {}): UnsignedVerdict => ({
  verdictId: '01890a5d-ac96-774b-bcce-b302099a8057',
  proposalId: 'proposal-1',
  revision: 2,
  decision: 'allow',
  checks: [{ check: 'authority', status: 'pass', reason: "agent a1 holds 'execute' in production" }],
  agentId: 'a1',
  executingIdentity: 'svc-deployer',
  tool: 'kubectl',
  action: 'scale',
  resource: 'deployment/web-a',
  environment: 'production',
  impact: 'high',
  planHash: `sha256:${'0'.repeat(64)}`,
  actionDigest: `sha256:${'1'.repeat(64)}`,
  resourceVersion: 'v7',
  policyVersion: 1,
  decidedAt: '2025-06-01T11:59:00.000Z',
  expiresAt: '2025-06-01T12:09:00.999Z',
  supersedes: null,
  basedOnEventId: '01890a5d-ac96-774b-bcce-b302099a8058',
  ...overrides,
})
