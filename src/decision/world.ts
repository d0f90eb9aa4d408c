import type { ProposalFacts } from '../domain/eligibility.js'
import type {
  AuthorityLevel,
  DataOf,
  DomainEvent,
  ImpactClass,
  KillSwitchRef,
  LedgerEvent,
} from '../domain/events.js'

/**
 * The decision service's view of the world, kept as documents by key (so it never has to sit in memory
 * whole). Every document here is derived from the ledger and rebuilt by replaying it.
 */

export interface CurrentVerdict {
  readonly verdictId: string
  readonly revision: number
  readonly decision: 'allow' | 'block'
  readonly planHash: string
  readonly expiresAt: string
  readonly fingerprint: string
  readonly revoked: boolean
  readonly expired: boolean
}

export type ProposalPhase = 'open' | 'executing' | 'succeeded' | 'failed' | 'recovered' | 'withdrawn'

export interface ProposalDoc {
  readonly facts: ProposalFacts
  readonly phase: ProposalPhase
  readonly simulations: readonly DataOf<'SimulationRecorded'>[]
  readonly rollbackTests: readonly DataOf<'RollbackTested'>[]
  readonly approvals: readonly DataOf<'ApprovalGranted'>[]
  readonly verdict: CurrentVerdict | null
  /** every verdict id ever issued for the proposal, to tell a superseded verdict from an unknown one */
  readonly verdictIds: readonly string[]
  readonly execution: { readonly executionId: string; readonly failedAt: string | null } | null
  /** set once the agent was demoted for this failure, so a second deadline event changes nothing */
  readonly demotedForFailure: boolean
}

export interface Deadlines {
  /** live allow verdicts by proposal: when they expire */
  readonly verdicts: Readonly<Record<string, { readonly verdictId: string; readonly expiresAt: string }>>
  /** failed executions not yet recovered: when the recovery time objective passes */
  readonly recoveries: Readonly<
    Record<string, { readonly executionId: string; readonly failedAt: string; readonly deadline: string }>
  >
}

export interface WorldDocs {
  agent: { readonly levels: Readonly<Record<string, AuthorityLevel>> }
  tool: { readonly impact: ImpactClass; readonly reversible: boolean }
  grants: { readonly active: Readonly<Record<string, DataOf<'ScopeGranted'>>> }
  grant: { readonly identity: string }
  policy: DataOf<'PolicyPublished'>
  killSwitches: { readonly engaged: readonly KillSwitchRef[] }
  resource: { readonly observation: DataOf<'StateObserved'> | null; readonly open: readonly string[] }
  proposal: ProposalDoc
  open: { readonly ids: readonly string[] }
  deadlines: Deadlines
}

export const keys = {
  agent: (agentId: string) => `agent:${agentId}`,
  tool: (tool: string, action: string) => `tool:${tool}.${action}`,
  grants: (identity: string) => `grants:${identity}`,
  grant: (grantId: string) => `grant:${grantId}`,
  policy: () => 'policy',
  killSwitches: () => 'killswitches',
  resource: (environment: string, resource: string) => `resource:${environment}.${resource}`,
  proposal: (proposalId: string) => `proposal:${proposalId}`,
  open: () => 'open',
  deadlines: () => 'deadlines',
} as const

/** Typed access to the world, read through whatever holds the documents. */
export class World {
  private readonly changes = new Map<string, unknown>()

  constructor(private readonly read: (key: string) => unknown) {}

  get<K extends keyof WorldDocs>(_kind: K, key: string): WorldDocs[K] | undefined {
    if (this.changes.has(key)) return (this.changes.get(key) ?? undefined) as WorldDocs[K] | undefined
    return this.read(key) as WorldDocs[K] | undefined
  }

  put<K extends keyof WorldDocs>(_kind: K, key: string, doc: WorldDocs[K] | null): void {
    this.changes.set(key, doc)
  }

  /** the documents changed since this view was opened (null: deleted) */
  changed(): ReadonlyMap<string, unknown> {
    return this.changes
  }

  // -- reads the rules need --

  levelOf(agentId: string, environment: string): AuthorityLevel | null {
    const agent = this.get('agent', keys.agent(agentId))
    return agent ? (agent.levels[environment] ?? 'observe') : null
  }

  policy(): DataOf<'PolicyPublished'> | null {
    return this.get('policy', keys.policy()) ?? null
  }

  proposal(proposalId: string): ProposalDoc | undefined {
    return this.get('proposal', keys.proposal(proposalId))
  }

  openIds(): readonly string[] {
    return this.get('open', keys.open())?.ids ?? []
  }

  killSwitches(): readonly KillSwitchRef[] {
    return this.get('killSwitches', keys.killSwitches())?.engaged ?? []
  }

  deadlines(): Deadlines {
    return this.get('deadlines', keys.deadlines()) ?? { verdicts: {}, recoveries: {} }
  }

  // -- writes --

  updateProposal(proposalId: string, update: (doc: ProposalDoc) => ProposalDoc): void {
    const doc = this.proposal(proposalId)
    if (doc) this.put('proposal', keys.proposal(proposalId), update(doc))
  }

  updateDeadlines(update: (deadlines: Deadlines) => Deadlines): void {
    this.put('deadlines', keys.deadlines(), update(this.deadlines()))
  }

  setOpen(proposalId: string, facts: ProposalFacts, open: boolean): void {
    const withOrWithout = (ids: readonly string[]) =>
      open ? (ids.includes(proposalId) ? ids : [...ids, proposalId]) : ids.filter((id) => id !== proposalId)
    this.put('open', keys.open(), { ids: withOrWithout(this.openIds()) })
    const resourceKey = keys.resource(facts.environment, facts.resource)
    const resource = this.get('resource', resourceKey) ?? { observation: null, open: [] }
    this.put('resource', resourceKey, { ...resource, open: withOrWithout(resource.open) })
  }
}

export type Ledgered = LedgerEvent<DomainEvent>
