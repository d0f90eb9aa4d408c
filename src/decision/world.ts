import { canonicalize, sha256Hex } from '../domain/canonical.js'
import type { ProposalFacts } from '../domain/eligibility.js'
import type {
  AuthorityLevel,
  DataOf,
  DomainEvent,
  ImpactClass,
  KillSwitchRef,
  LedgerEvent,
  ReleaseGate,
} from '../domain/events.js'
import { type GateRun, withRun } from '../domain/release.js'
import type { DocStore } from '../store/docs.js'

/**
 * The decision service's view of the world, kept as documents by key (so it never has to sit in memory
 * whole). Every document here is derived from the ledger and rebuilt by replaying it.
 */

export interface CurrentVerdict {
  readonly verdictId: string
  readonly revision: number
  readonly decision: 'allow' | 'block'
  readonly actionDigest: string
  readonly expiresAt: string
  readonly fingerprint: string
  readonly revoked: boolean
  readonly expired: boolean
}

export type ProposalPhase =
  | 'open'
  | 'executing'
  | 'succeeded'
  | 'failed'
  | 'recovered'
  | 'withdrawn'
  | 'expired'

export interface ProposalDoc {
  readonly facts: ProposalFacts
  readonly phase: ProposalPhase
  readonly simulations: readonly DataOf<'SimulationRecorded'>[]
  readonly rollbackTests: readonly DataOf<'RollbackTested'>[]
  readonly approvals: readonly DataOf<'ApprovalGranted'>[]
  readonly verdict: CurrentVerdict | null
  /** every verdict id ever issued for the proposal, to tell a superseded verdict from an unknown one */
  readonly verdictIds: readonly string[]
  /**
   * The current verdict as the ledger recorded it: what the execution gate judged a start against. On the write path
   * it is `verdict` itself; a what-if re-decider (counterfactual, shadow policy) decides verdicts of its own, while
   * the starts the ledger holds stay judged against the verdicts they were judged against.
   */
  readonly ledgerVerdict: LedgerVerdict | null
  readonly execution: { readonly executionId: string; readonly failedAt: string | null } | null
  /** set once the agent was demoted for this failure, so a second deadline event changes nothing */
  readonly demotedForFailure: boolean
}

export interface LedgerVerdict {
  readonly verdictId: string
  readonly decision: 'allow' | 'block'
  readonly actionDigest: string
  readonly expiresAt: string
  readonly revoked: boolean
  readonly expired: boolean
}

export interface VerdictDeadline {
  readonly verdictId: string
  readonly expiresAt: string
}

export interface RecoveryDeadline {
  readonly executionId: string
  readonly failedAt: string
  readonly deadline: string
}

export interface ProposalDeadline {
  readonly submittedAt: string
  readonly deadline: string
}

export interface Deadlines {
  /** live allow verdicts by proposal: when they expire */
  readonly verdicts: Readonly<Record<string, VerdictDeadline>>
  /** failed executions not yet recovered: when the recovery time objective passes */
  readonly recoveries: Readonly<Record<string, RecoveryDeadline>>
  /** open proposals not yet executed: when the policy's time limit on open proposals passes */
  readonly proposals: Readonly<Record<string, ProposalDeadline>>
}

/** One deadline in time order: what the scheduler reads, the earliest first. */
export type DueEntry =
  | { readonly kind: 'verdict'; readonly proposalId: string; readonly entry: VerdictDeadline }
  | { readonly kind: 'recovery'; readonly proposalId: string; readonly entry: RecoveryDeadline }
  | { readonly kind: 'proposal'; readonly proposalId: string; readonly entry: ProposalDeadline }

export interface WorldDocs {
  agent: { readonly levels: Readonly<Record<string, AuthorityLevel>> }
  tool: { readonly impact: ImpactClass; readonly reversible: boolean }
  grants: { readonly active: Readonly<Record<string, DataOf<'ScopeGranted'>>> }
  grant: { readonly identity: string }
  /** the agents bound to act through an executing identity */
  binding: { readonly agents: readonly string[] }
  policy: DataOf<'PolicyPublished'>
  killSwitches: { readonly engaged: readonly KillSwitchRef[] }
  resource: { readonly observation: DataOf<'StateObserved'> | null }
  proposal: ProposalDoc
  open: OpenEntry
  verdictDeadline: VerdictDeadline
  recoveryDeadline: RecoveryDeadline
  proposalDeadline: ProposalDeadline
  due: DueEntry
  /** a workflow's newest simulation runs, oldest first: every agent's, or one agent's */
  runs: { readonly runs: readonly GateRun[] }
  /** a workflow that passes a gate of the policy in force; present only while it does */
  released: Released
}

/** Who a release is for: a workflow, and the agent whose own runs count under a per-agent gate. */
export interface Released {
  readonly gate: ReleaseGate
  readonly tool: string
  readonly action: string
  readonly agentId: string | null
}

export const keys = {
  agent: (agentId: string) => `agent:${agentId}`,
  tool: (tool: string, action: string) => `tool:${tool}.${action}`,
  grants: (identity: string) => `grants:${identity}`,
  grant: (grantId: string) => `grant:${grantId}`,
  binding: (identity: string) => `binding:${identity}`,
  policy: () => 'policy',
  killSwitches: () => 'killswitches',
  resource: (environment: string, resource: string) => `resource:${environment}.${resource}`,
  proposal: (proposalId: string) => `proposal:${proposalId}`,
  open: (proposalId: string) => `open:${proposalId}`,
  verdictDeadline: (proposalId: string) => `deadline-verdict:${proposalId}`,
  recoveryDeadline: (proposalId: string) => `deadline-recovery:${proposalId}`,
  proposalDeadline: (proposalId: string) => `deadline-proposal:${proposalId}`,
  runs: (tool: string, action: string) => `runs:${tool}.${action}`,
  /** tool and action names hold no ':', so the agent's id ends the key unambiguously */
  agentRuns: (tool: string, action: string, agentId: string) => `runs-agent:${tool}.${action}:${agentId}`,
  released: ({ gate, tool, action, agentId }: Released) =>
    `${releasesOf(gate, tool, action)}${agentId ?? ''}`,
  /** timestamps are fixed-width UTC (YYYY-MM-DDTHH:mm:ss.sssZ), so key order is time order */
  due: (at: string, kind: DueEntry['kind'], proposalId: string) => `due:${at}:${kind}:${proposalId}`,
} as const

/** the prefix of a gate's releases of a workflow: every agent's, and the one for every agent */
const releasesOf = (gate: ReleaseGate, tool: string, action: string) =>
  `released:${slot(canonicalize(gate))}:${tool}.${action}:`

const dueAt = (due: DueEntry): string => (due.kind === 'verdict' ? due.entry.expiresAt : due.entry.deadline)

/** Where each kind of deadline is kept by proposal. */
const deadlineDoc = {
  verdict: 'verdictDeadline',
  recovery: 'recoveryDeadline',
  proposal: 'proposalDeadline',
} as const satisfies Record<DueEntry['kind'], keyof WorldDocs>

/** How many deadline documents the scheduler reads at once. */
const DUE_PAGE = 256

export type Scan = (
  prefix: string,
  options?: { readonly after?: string; readonly limit?: number },
) => Array<[string, unknown]>

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
 * A scan of stored documents with `changes` laid over them (null: deleted), in key order. A page (`limit`) stays
 * a page of the merged view: it is cut at the last stored key the page read, so a short page still means the end.
 */
export const scanWith =
  (stored: Scan, changes: ReadonlyMap<string, unknown>): Scan =>
  (prefix, options = {}) => {
    const { after, limit } = options
    let deleted = 0
    for (const [key, doc] of changes) if (doc === null && key.startsWith(prefix)) deleted += 1
    const page = stored(prefix, limit === undefined ? options : { after, limit: limit + deleted })
    const full = limit !== undefined && page.length === limit + deleted
    const last = page.at(-1)?.[0]
    const found = new Map(page)
    for (const [key, doc] of changes) {
      if (!key.startsWith(prefix) || (after !== undefined && key <= after)) continue
      // beyond a full page's last stored key, a change belongs to a later page
      if (full && last !== undefined && key > last) continue
      if (doc === null) found.delete(key)
      else found.set(key, doc)
    }
    const merged = [...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return limit === undefined ? merged : merged.slice(0, limit)
  }

/**
 * Typed access to the world, read through whatever holds the documents, with the changes made through it laid
 * over them. Open proposals are one document each (and one per index), so that a decision costs the same whether
 * ten or ten thousand proposals are open.
 */
export class World {
  private readonly changes = new Map<string, unknown>()

  constructor(
    private readonly read: (key: string) => unknown,
    private readonly scan: Scan,
  ) {}

  static over(docs: DocStore, namespace: string): World {
    return new World(
      (key) => docs.get(namespace, key),
      (prefix, options) => docs.list(namespace, prefix, options),
    )
  }

  /** A world that reads this one as it stands, and keeps its own changes apart until they are adopted. */
  layer(): World {
    return new World(
      (key) => this.lookup(key),
      (prefix, options) => this.entries(prefix, options),
    )
  }

  /** Takes the changes of a layer of this world as its own. */
  adopt(layer: World): void {
    for (const [key, doc] of layer.changes) this.changes.set(key, doc)
  }

  get<K extends keyof WorldDocs>(_kind: K, key: string): WorldDocs[K] | undefined {
    return this.lookup(key) as WorldDocs[K] | undefined
  }

  private lookup(key: string): unknown {
    return this.changes.has(key) ? (this.changes.get(key) ?? undefined) : this.read(key)
  }

  put<K extends keyof WorldDocs>(_kind: K, key: string, doc: WorldDocs[K] | null): void {
    this.changes.set(key, doc)
  }

  /** the documents changed since this view was opened (null: deleted) */
  changed(): ReadonlyMap<string, unknown> {
    return this.changes
  }

  /** the documents under a key prefix (a page of them with `limit`), as stored and as changed since, in key order */
  private entries(prefix: string, options?: Parameters<Scan>[1]): Array<[string, unknown]> {
    return scanWith(this.scan, this.changes)(prefix, options)
  }

  private openEntriesUnder(prefix: string): OpenEntry[] {
    return this.entries(prefix).map(([, doc]) => doc as OpenEntry)
  }

  /** the deadline documents due at `until` or before (all of them without it), read a page at a time */
  private due(until?: string): Array<[string, unknown]> {
    const due: Array<[string, unknown]> = []
    const last = until === undefined ? undefined : `due:${until};`
    let after: string | undefined
    for (;;) {
      const page = this.entries('due:', { after, limit: DUE_PAGE })
      for (const entry of page) {
        if (last !== undefined && entry[0] >= last) return due
        due.push(entry)
      }
      if (page.length < DUE_PAGE) return due
      after = page.at(-1)?.[0]
    }
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
    return this.openEntriesUnder('open:')
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
    return this.openEntriesUnder(`open-${index}:${slot(...values)}:`).map((e) => e.proposalId)
  }

  /** whether an agent is bound to act through an executing identity */
  bound(agentId: string, identity: string): boolean {
    return this.get('binding', keys.binding(identity))?.agents.includes(agentId) ?? false
  }

  killSwitches(): readonly KillSwitchRef[] {
    return this.get('killSwitches', keys.killSwitches())?.engaged ?? []
  }

  /** the live deadlines, only those due at `until` or before when it is given */
  deadlines(until?: string): Deadlines {
    const verdicts: Record<string, VerdictDeadline> = {}
    const recoveries: Record<string, RecoveryDeadline> = {}
    const proposals: Record<string, ProposalDeadline> = {}
    for (const [, doc] of this.due(until)) {
      const due = doc as DueEntry
      if (until !== undefined && dueAt(due) > until) continue
      if (due.kind === 'verdict') verdicts[due.proposalId] = due.entry
      else if (due.kind === 'recovery') recoveries[due.proposalId] = due.entry
      else proposals[due.proposalId] = due.entry
    }
    return { verdicts, recoveries, proposals }
  }

  /** the newest simulation runs of a workflow: every agent's, and one agent's own */
  workflowRuns(
    tool: string,
    action: string,
    agentId: string,
  ): { all: readonly GateRun[]; agent: readonly GateRun[] } {
    return {
      all: this.get('runs', keys.runs(tool, action))?.runs ?? [],
      agent: this.get('runs', keys.agentRuns(tool, action, agentId))?.runs ?? [],
    }
  }

  /** the workflows with recorded runs, as [tool, action] */
  workflowsWithRuns(): Array<[string, string]> {
    return this.entries('runs:').map(([key]) => key.slice('runs:'.length).split('.') as [string, string])
  }

  /** the agents with recorded runs of a workflow */
  agentsWithRuns(tool: string, action: string): string[] {
    const prefix = keys.agentRuns(tool, action, '')
    return this.entries(prefix).map(([key]) => key.slice(prefix.length))
  }

  /** the releases of a workflow by a gate that stand: one for every agent, or one per agent */
  releases(gate: ReleaseGate, tool: string, action: string): Released[] {
    return this.entries(releasesOf(gate, tool, action)).map(([, doc]) => doc as Released)
  }

  verdictDeadline(proposalId: string): VerdictDeadline | undefined {
    return this.get('verdictDeadline', keys.verdictDeadline(proposalId))
  }

  // -- writes --

  /** Counts a simulation run for its workflow, and for its agent's own runs of it. */
  recordRun(tool: string, action: string, agentId: string, run: GateRun): void {
    for (const key of [keys.runs(tool, action), keys.agentRuns(tool, action, agentId)]) {
      this.put('runs', key, { runs: withRun(this.get('runs', key)?.runs ?? [], run) })
    }
  }

  updateProposal(proposalId: string, update: (doc: ProposalDoc) => ProposalDoc): void {
    const doc = this.proposal(proposalId)
    if (doc) this.put('proposal', keys.proposal(proposalId), update(doc))
  }

  /** Sets (or, with null, drops) the proposal's allow deadline. */
  setVerdictDeadline(proposalId: string, entry: VerdictDeadline | null): void {
    this.setDeadline('verdict', proposalId, entry)
  }

  /** Sets (or, with null, drops) the deadline for recovering the proposal's failed execution. */
  setRecoveryDeadline(proposalId: string, entry: RecoveryDeadline | null): void {
    this.setDeadline('recovery', proposalId, entry)
  }

  /** Sets (or, with null, drops) the time limit on the open proposal. */
  setProposalDeadline(proposalId: string, entry: ProposalDeadline | null): void {
    this.setDeadline('proposal', proposalId, entry)
  }

  proposalDeadline(proposalId: string): ProposalDeadline | undefined {
    return this.get('proposalDeadline', keys.proposalDeadline(proposalId))
  }

  /** A deadline is one document by proposal, and one under the time it falls due (what the scheduler reads). */
  private setDeadline(kind: DueEntry['kind'], proposalId: string, entry: DueEntry['entry'] | null): void {
    const doc = deadlineDoc[kind]
    const pointer = keys[doc](proposalId)
    const dueOf = (e: DueEntry['entry']) => ({ kind, proposalId, entry: e }) as DueEntry
    const old = this.get(doc, pointer)
    if (old) this.changes.set(keys.due(dueAt(dueOf(old)), kind, proposalId), null)
    this.changes.set(pointer, entry)
    if (entry) {
      const due = dueOf(entry)
      this.changes.set(keys.due(dueAt(due), kind, proposalId), due)
    }
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
