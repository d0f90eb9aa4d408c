import { sha256Hex } from '../domain/canonical.js'
import type { ProposalFacts } from '../domain/eligibility.js'
import type {
  AuthorityLevel,
  DataOf,
  DomainEvent,
  ImpactClass,
  KillSwitchRef,
  LedgerEvent,
} from '../domain/events.js'
import type { DocStore } from '../store/docs.js'

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
  resource: { readonly observation: DataOf<'StateObserved'> | null }
  proposal: ProposalDoc
  open: OpenEntry
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
  open: (proposalId: string) => `open:${proposalId}`,
  deadlines: () => 'deadlines',
} as const

/** One open proposal in the open set and in each index of it: what the rules select open proposals by. */
export type OpenEntry = Pick<
  ProposalFacts,
  'proposalId' | 'agentId' | 'executingIdentity' | 'tool' | 'action' | 'resource' | 'environment'
>

/** The indexes of the open set: fixed-length slots, so that no value is a prefix of another. */
export type OpenIndex = 'resource' | 'identity' | 'agent' | 'tool'
const slot = (...parts: string[]): string => sha256Hex(parts.join('\u0000')).slice(0, 16)
const indexSlots = (e: OpenEntry): Record<OpenIndex, string> => ({
  resource: slot(e.environment, e.resource),
  identity: slot(e.executingIdentity),
  agent: slot(e.agentId, e.environment),
  tool: slot(e.tool, e.action),
})

/**
 * Typed access to the world, read through whatever holds the documents. Open proposals are one document each
 * (and one per index), so that a decision costs the same whether ten or ten thousand proposals are open.
 */
export class World {
  private readonly changes = new Map<string, unknown>()

  constructor(
    private readonly read: (key: string) => unknown,
    private readonly scan: (prefix: string) => Array<[string, unknown]>,
  ) {}

  static over(docs: DocStore, namespace: string): World {
    return new World(
      (key) => docs.get(namespace, key),
      (prefix) => docs.list(namespace, prefix),
    )
  }

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

  /** the open entries under a key prefix, as stored and as changed since, in key order */
  private entries(prefix: string): OpenEntry[] {
    const found = new Map(this.scan(prefix))
    for (const [key, doc] of this.changes) {
      if (!key.startsWith(prefix)) continue
      if (doc === null) found.delete(key)
      else found.set(key, doc)
    }
    return [...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, doc]) => doc as OpenEntry)
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

  /** every open proposal, in id order */
  openEntries(): OpenEntry[] {
    return this.entries('open:')
  }

  openIds(): string[] {
    return this.openEntries().map((e) => e.proposalId)
  }

  /**
   * The open proposals one index holds for these values (resource: environment and resource; identity: the
   * executing identity; agent: agent and environment; tool: tool and action). A collision of the 64-bit slot
   * would only decide one more proposal again, which changes nothing when its answer did not change.
   */
  openBy(index: OpenIndex, ...values: string[]): string[] {
    return this.entries(`open-${index}:${slot(...values)}:`).map((e) => e.proposalId)
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

  setOpen(facts: ProposalFacts, open: boolean): void {
    const { proposalId, agentId, executingIdentity, tool, action, resource, environment } = facts
    const entry: OpenEntry = { proposalId, agentId, executingIdentity, tool, action, resource, environment }
    this.put('open', keys.open(proposalId), open ? entry : null)
    for (const [index, at] of Object.entries(indexSlots(entry))) {
      this.put('open', `open-${index}:${at}:${proposalId}`, open ? entry : null)
    }
  }
}

export type Ledgered = LedgerEvent<DomainEvent>
