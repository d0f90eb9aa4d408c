// Builds a large, realistic ledger fast: commands go through the real deciders (against state kept in memory
// rather than re-read from the store), each as the principal entitled to it, their events are written in big
// appendMany batches through the real SQLite store (so ids, positions and the hash chain are real), and the real
// DecisionService answers them with signed verdicts, revocations, violations and demotions. What widens authority
// (a policy after the first, an identity binding, a grant reaching high impact, a release) is requested by one
// policy admin and approved by another, as the service's governance takes it; promotions carry the track record
// the authority projection computes and take two admins. Lifecycles follow test/support/history.ts: evidence with
// flaws, blocks and allows, starts the gate refuses, executions that fail and roll back, kill switches, demotions
// and re-promotions.
import type { KeyObject } from 'node:crypto'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AuthorityDoc, authority, trackDaysOf, trackRecord } from '../projections/authority.js'
import { promotionRequirement } from '../src/application/context.js'
import { appendDueNotices } from '../src/decision/scheduler.js'
import { DECISION_ACTOR, DecisionService } from '../src/decision/service.js'
import { createVerdictSigner, loadOrCreateSigningKey } from '../src/decision/signer.js'
import type { Actor, Role } from '../src/domain/actor.js'
import { levelIn } from '../src/domain/authority.js'
import type { AgentState } from '../src/domain/deciders/agent.js'
import type { BindingState } from '../src/domain/deciders/binding.js'
import { type Approval, widens } from '../src/domain/deciders/governance.js'
import {
  agent,
  binding,
  type Decider,
  governance,
  grant,
  inventory,
  killSwitch,
  policy,
  proposal,
  resource,
} from '../src/domain/deciders/index.js'
import type { InventoryState } from '../src/domain/deciders/inventory.js'
import type { KillSwitchState } from '../src/domain/deciders/kill-switch.js'
import type { PolicyState } from '../src/domain/deciders/policy.js'
import type { ProposalState } from '../src/domain/deciders/proposal.js'
import { defaultPolicy } from '../src/domain/eligibility.js'
import { DomainError } from '../src/domain/errors.js'
import {
  type AuthorityLevel,
  type BranchKind,
  type DataOf,
  type DomainEvent,
  type GovernanceChange,
  type ImpactClass,
  type KillSwitchRef,
  type PolicyDraft,
  type PromotionRequirements,
  streams,
  type TrackRecord,
  toLedgerEvent,
} from '../src/domain/events.js'
import { MemoryDocStore } from '../src/store/memory/doc-store.js'
import type { AppendResult, EventStore, NewEvent, StoredEvent, StreamWrite } from '../src/store/port.js'
import { openSqliteEventStore, type SqliteEventStore } from '../src/store/sqlite/event-store.js'
// seeded, so the same size gives the same ledger
import { seeded } from '../test/support/history.js'

/** A principal as its verified token states it. */
const principal = (sub: string, ...roles: Role[]): Actor => ({
  sub,
  roles,
  approvalRoles: roles.includes('approver') ? ['approver'] : [],
})

const ADMIN = principal('admin-1', 'policy-admin')
/** the second, distinct policy admin what widens authority takes */
const SECOND_ADMIN = principal('admin-2', 'policy-admin')
const SIMULATOR = principal('simulator-1', 'simulator')
const EXECUTOR = principal('executor-1', 'executor')
const OBSERVER = principal('observer-1', 'observer')
const APPROVERS = ['approver-1', 'approver-2', 'approver-3'].map((sub) => principal(sub, 'approver'))
const POLICY_OWNER = 'risk-office'
const ENVIRONMENTS = ['staging', 'production'] as const
const TOOLS: ReadonlyArray<{ tool: string; action: string; impact: ImpactClass | null }> = [
  { tool: 'metrics', action: 'read', impact: 'read' },
  { tool: 'cache', action: 'flush', impact: 'low' },
  { tool: 'config', action: 'set', impact: 'medium' },
  { tool: 'deploy', action: 'rollout', impact: 'high' },
  { tool: 'db', action: 'migrate', impact: 'critical' },
  // never registered: deny by default
  { tool: 'shell', action: 'exec', impact: null },
]
const RESOURCES_PER_TOOL = 25
const ADVERSARIAL: readonly BranchKind[] = [
  'dependency-down',
  'concurrent-change',
  'partial-failure',
  'stale-read',
  'rollback-failure',
]
/** the level each agent works at: most execute, a few never get past simulate or recommend */
const AGENT_TARGETS: readonly AuthorityLevel[] = [
  'execute',
  'execute',
  'execute',
  'execute',
  'execute',
  'execute',
  'execute',
  'execute',
  'execute',
  'simulate',
  'simulate',
  'recommend',
]
const LADDER: readonly AuthorityLevel[] = ['observe', 'recommend', 'simulate', 'execute']
/**
 * The policies ask no track record to climb (a bench service promotes its own agent on them at once), and
 * failures and violations do not bar a climb back.
 */
const OPEN_LADDER: PromotionRequirements = (() => {
  const open = {
    windowDays: 30,
    minProposals: 0,
    minSimulationsPassed: 0,
    minSurvivalRate: 0,
    maxViolations: 1_000_000,
    maxFailedExecutions: 1_000_000,
  }
  return { recommend: open, simulate: open, execute: open }
})()
/** the events the authority projection reads to compute track records */
const AUTHORITY_TYPES = new Set([
  'AgentRegistered',
  'PromotionRequested',
  'PromotionRefused',
  'AgentPromoted',
  'AgentDemoted',
  'ProposalSubmitted',
  'SimulationRecorded',
  'ViolationRecorded',
  'ExecutionFailed',
])
const DAY_MS = 86_400_000
/** how far an observer's clock may run ahead of ledger time, as the service is configured by default */
const OBSERVATION_MAX_SKEW_SECONDS = 5
/** ledger time per event: 10^6 events span about a month; every size is generated at the same rate */
const LEDGER_SECONDS_PER_EVENT = 2.6
const LIFECYCLES_PER_CHUNK = 100

export interface GenerateOptions {
  readonly path: string
  /** generate until the ledger holds at least this many events */
  readonly events: number
  /** the service's verdict key, so that its decision service would sign exactly the same verdicts */
  readonly verdictKey: KeyObject
  readonly seed?: number
  /** the ledger's last events are recorded about now (ms); it must not end in the future */
  readonly endAt?: number
  readonly onProgress?: (events: number) => void
}

export interface GeneratedLedger {
  readonly events: number
  readonly proposals: readonly string[]
  readonly verdicts: number
  readonly refusedCommands: number
  readonly seconds: number
}

interface Flight {
  readonly proposalId: string
  readonly agentId: string
  readonly environment: string
  readonly tool: string
  readonly resource: string
  readonly impact: ImpactClass | null
  actionDigest: string
  executionId: string | null
}

type AnyDecider = Decider<unknown, unknown, DomainEvent>
type Acted = { readonly actor: Actor }

/** A command of one decider on one stream, ready to decide. */
interface Effect {
  readonly decider: AnyDecider
  readonly stream: string
  readonly command: Acted
}

const effect = <C extends Acted, S, E extends DomainEvent>(
  decider: Decider<C, S, E>,
  stream: string,
  command: C,
): Effect => ({ decider: decider as unknown as AnyDecider, stream, command })

class LedgerBuilder {
  readonly store: SqliteEventStore
  readonly decision: DecisionService
  readonly proposals: string[] = []
  refused = 0
  private clockMs: number
  private readonly random
  private readonly states = new Map<string, unknown>()
  /** each stream's version as the builder wrote it, for what a change request is based on */
  private readonly versions = new Map<string, number>()
  private writes: StreamWrite[] = []
  /** what the decision service and the scheduler appended, still to fold into the states in memory */
  private answers: StoredEvent[] = []
  private next = 0
  private readonly granted = new Set<string>()
  private readonly agents = AGENT_TARGETS.map((target, i) => ({ agentId: `agent-${i + 1}`, target }))
  private lateRollbacks: Flight[] = []
  private policyVersion = 1
  /** nothing written yet: the first policy is published by one admin */
  private empty = true
  /** the authority projection, caught up from the store before promotions, for the track records */
  private readonly authorityDocs = new Map<string, AuthorityDoc>()
  private authorityAt = 0
  private ledgerTime: string | null = null

  constructor(
    path: string,
    verdictKey: KeyObject,
    seed: number,
    startMs: number,
    private readonly endMs: number,
    private readonly target: number,
  ) {
    this.clockMs = startMs
    this.random = seeded(seed)
    this.store = openSqliteEventStore({ path, clock: () => new Date(this.clockMs) })
    this.decision = new DecisionService(this.store, new MemoryDocStore(), createVerdictSigner(verdictKey))
    // every append is answered in its own commit, as the service answers it
    this.store.answerWith(this.decision)
  }

  private id(prefix: string): string {
    this.next += 1
    return `${prefix}-${this.next}`
  }

  private iso(offsetSeconds = 0): string {
    return new Date(this.clockMs + offsetSeconds * 1000).toISOString()
  }

  private tick(seconds: number): void {
    this.clockMs += Math.round(seconds * 1000)
  }

  private stateOf(e: Effect): unknown {
    return this.states.get(e.stream) ?? e.decider.initialState()
  }

  /** Whether the command would be taken now, without queuing anything. */
  private wouldTake(e: Effect): boolean {
    try {
      e.decider.decide(e.command, this.stateOf(e))
      return true
    } catch (error) {
      if (error instanceof DomainError) return false
      throw error
    }
  }

  /**
   * Decides a command against the stream's state in memory and queues its events, written by the command's
   * principal; null when refused.
   */
  private run(e: Effect): DomainEvent[] | null {
    const state = this.stateOf(e)
    let events: DomainEvent[]
    try {
      events = e.decider.decide(e.command, state)
    } catch (error) {
      if (error instanceof DomainError) {
        this.refused += 1
        return null
      }
      throw error
    }
    this.states.set(
      e.stream,
      events.reduce((s, event) => e.decider.evolve(s, event), state),
    )
    this.versions.set(e.stream, (this.versions.get(e.stream) ?? 0) + events.length)
    if (events.length === 0) return events
    this.empty = false
    const metadata = { actor: e.command.actor.sub, correlationId: this.id('corr'), causationId: null }
    const toAppend: NewEvent[] = events.map((event) => ({ type: event.type, data: event.data, metadata }))
    const last = this.writes.at(-1)
    if (last?.stream === e.stream)
      this.writes[this.writes.length - 1] = { ...last, events: [...last.events, ...toAppend] }
    else this.writes.push({ stream: e.stream, events: toAppend, expectedVersion: 'any' })
    return events
  }

  private command<C extends Acted, S, E extends DomainEvent>(
    decider: Decider<C, S, E>,
    stream: string,
    command: C,
  ): E[] | null {
    return this.run(effect(decider, stream, command)) as E[] | null
  }

  /** The change itself, decided on the stream it changes, as `actor` with `approval` behind it. */
  private effectOf(
    actor: Actor,
    change: GovernanceChange,
    draft: PolicyDraft | null,
    approval: Approval,
  ): Effect {
    switch (change.kind) {
      case 'publish-policy':
        return effect(policy, streams.policy(), {
          type: 'PublishPolicy',
          actor,
          policy: draft as PolicyDraft,
          approval,
        })
      case 'publish-shadow-policy':
        return effect(policy, streams.policy(), {
          type: 'PublishShadowPolicy',
          actor,
          policy: draft as PolicyDraft,
          approval,
        })
      case 'release-kill-switch': {
        const { scope, target, reason } = change
        return effect(killSwitch, streams.killSwitch({ scope, target }), {
          type: 'Release',
          actor,
          reason,
          approval,
        })
      }
      case 'register-tool-action': {
        const { kind: _kind, ...entry } = change
        return effect(inventory, streams.tool(change.tool, change.action), {
          type: 'RegisterToolAction',
          actor,
          ...entry,
          approval,
        })
      }
      case 'grant-scope': {
        const { kind: _kind, ...scope } = change
        return effect(grant, streams.grant(change.grantId), { type: 'GrantScope', actor, ...scope })
      }
      case 'bind-identity': {
        const { principal: bound, role, identity } = change
        return effect(binding, streams.identity(identity), {
          type: 'Bind',
          actor,
          principal: bound,
          role,
          identity,
          approval,
        })
      }
    }
  }

  /**
   * A governance change as the service takes it: applied at once by one admin when it does not widen
   * authority; otherwise requested by one admin and approved by the other, the approval and the change
   * written together (and nothing at all when the change could not apply).
   */
  private governed(change: GovernanceChange, draft: PolicyDraft | null = null): boolean {
    const registered = (tool: string, action: string) => {
      const state = this.states.get(streams.tool(tool, action)) as InventoryState | undefined
      return state?.status === 'registered' ? state.current : null
    }
    const why = widens(change, { ledgerEmpty: this.empty, registered })
    if (why === null) {
      return (
        this.run(this.effectOf(ADMIN, change, draft, { requestedBy: ADMIN.sub, approvedBy: null })) !== null
      )
    }
    const approval = { requestedBy: ADMIN.sub, approvedBy: SECOND_ADMIN.sub }
    const target = this.effectOf(SECOND_ADMIN, change, draft, approval)
    if (!this.wouldTake(target)) {
      this.refused += 1
      return false
    }
    const requestId = this.id('change')
    const stream = streams.change(requestId)
    const policyBody = draft === null ? null : { ...draft }
    this.command(governance, stream, {
      type: 'RequestChange',
      actor: ADMIN,
      requestId,
      change,
      policy: policyBody,
      widens: why,
      basedOn: { stream: target.stream, version: this.versions.get(target.stream) ?? 0 },
    })
    this.command(governance, stream, { type: 'ApproveChange', actor: SECOND_ADMIN })
    return this.run(this.effectOf(SECOND_ADMIN, change, draft, approval)) !== null
  }

  /** Writes the queued events in one transaction, answered by the decision service in it. */
  private async flush(): Promise<void> {
    if (this.writes.length > 0) {
      const writes = this.writes
      this.writes = []
      await this.recording().appendMany(writes)
    }
    // the decision world is committed off the write path, as the service's projection runner commits it
    await this.decision.catchUp()
    await this.fold()
  }

  /** The store, as the builder and the scheduler write to it: the answers their appends drew are kept to be folded. */
  private recording(): EventStore {
    const store = this.store
    const keep = async (result: Promise<AppendResult>) => {
      const r = await result
      this.answers.push(...(r.answers ?? []))
      return r
    }
    return new Proxy(store, {
      get: (target, property, receiver) => {
        if (property === 'append')
          return (...args: Parameters<EventStore['append']>) => keep(target.append(...args))
        if (property === 'appendMany')
          return (...args: Parameters<EventStore['appendMany']>) => keep(target.appendMany(...args))
        const value = Reflect.get(target, property, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  }

  /** Folds what the decision service and the scheduler wrote into the deciders' states kept in memory. */
  private async fold(): Promise<void> {
    const answers = this.answers.sort((a, b) => a.position - b.position)
    this.answers = []
    for (const e of answers) {
      const decider = (
        e.stream.startsWith('proposal-') ? proposal : e.stream.startsWith('agent-') ? agent : null
      ) as AnyDecider | null
      const state = this.states.get(e.stream)
      if (!decider || state === undefined) continue
      this.states.set(e.stream, decider.evolve(state, { type: e.type, data: e.data } as DomainEvent))
    }
  }

  /** The authority projection over everything written so far, as the service keeps it. */
  private async catchUpAuthority(): Promise<void> {
    for (;;) {
      const batch = await this.store.readAll(this.authorityAt, 10_000)
      const last = batch.at(-1)
      if (!last) return
      for (const stored of batch) {
        if (!AUTHORITY_TYPES.has(stored.type)) continue
        const changes = authority.evolve((key) => this.authorityDocs.get(key), toLedgerEvent(stored))
        for (const [key, doc] of changes) {
          if (doc === null) this.authorityDocs.delete(key)
          else this.authorityDocs.set(key, doc)
        }
      }
      this.authorityAt = last.position
      this.ledgerTime = last.recordedAt
    }
  }

  /** The track record the service computes: the authority projection's days, up to ledger time. */
  private trackRecordOf(agentId: string, environment: string, days: number): TrackRecord {
    const windowEnd = this.ledgerTime ?? this.iso()
    const windowStart = new Date(Date.parse(windowEnd) - days * DAY_MS).toISOString()
    return trackRecord(trackDaysOf(this.authorityDocs.values(), agentId, environment), windowStart, windowEnd)
  }

  private policyInForce(): DataOf<'PolicyPublished'> | null {
    const state = this.states.get(streams.policy()) as PolicyState | undefined
    return state?.status === 'published' ? state.current : null
  }

  private agentState(agentId: string): AgentState {
    return (this.states.get(streams.agent(agentId)) as AgentState | undefined) ?? agent.initialState()
  }

  private proposalState(proposalId: string): ProposalState {
    return (
      (this.states.get(streams.proposal(proposalId)) as ProposalState | undefined) ?? proposal.initialState()
    )
  }

  private bindingState(identity: string): BindingState {
    return (this.states.get(streams.identity(identity)) as BindingState | undefined) ?? binding.initialState()
  }

  /** The engaged kill switches over an action, as their own streams (in memory) say. */
  private switchesOver(f: Flight): KillSwitchRef[] {
    const scopes: KillSwitchRef[] = [
      { scope: 'global', target: null },
      { scope: 'environment', target: f.environment },
      { scope: 'tool', target: f.tool },
      { scope: 'agent', target: f.agentId },
    ]
    return scopes.filter(
      (ref) =>
        (this.states.get(streams.killSwitch(ref)) as KillSwitchState | undefined)?.status === 'engaged',
    )
  }

  private levelOf(agentId: string, environment: string): AuthorityLevel | null {
    const state = this.agentState(agentId)
    return state.status === 'registered' ? levelIn(state.levels, environment) : null
  }

  async setUp(): Promise<void> {
    // the first policy of an empty ledger: one admin publishes it
    this.governed(
      { kind: 'publish-policy', policyVersion: 1 },
      { ...defaultPolicy(POLICY_OWNER, 1), promotion: OPEN_LADDER },
    )
    for (const t of TOOLS) {
      if (t.impact === null) continue
      this.governed({
        kind: 'register-tool-action',
        tool: t.tool,
        action: t.action,
        impact: t.impact,
        reversible: t.impact !== 'critical',
        description: `${t.tool} ${t.action}`,
      })
    }
    for (const { agentId } of this.agents) {
      this.command(agent, streams.agent(agentId), {
        type: 'RegisterAgent',
        actor: ADMIN,
        agentId,
        owner: 'platform-team',
        description: '',
      })
      // bound before any proposal: the agent acts through its identity, the executor runs as it
      const identity = `svc-${agentId}`
      this.governed({ kind: 'bind-identity', principal: agentId, role: 'agent', identity })
      this.governed({ kind: 'bind-identity', principal: EXECUTOR.sub, role: 'executor', identity })
    }
    await this.climbAll()
    await this.flush()
  }

  /**
   * Every agent below its working level climbs back, one rung at a time, sometimes trying to skip one: it asks
   * with the track record the ledger computes, and two distinct policy admins approve.
   */
  private async climbAll(): Promise<void> {
    await this.flush()
    await this.catchUpAuthority()
    for (const { agentId, target } of this.agents) {
      const self = principal(agentId, 'agent')
      for (const environment of ENVIRONMENTS) {
        for (let guard = 0; guard < 6; guard += 1) {
          const level = this.levelOf(agentId, environment) ?? 'observe'
          const index = LADDER.indexOf(level)
          if (index >= LADDER.indexOf(target)) break
          const skip = this.random.chance(0.15) && index + 2 < LADDER.length
          const to = LADDER[index + (skip ? 2 : 1)] as AuthorityLevel
          const requestId = this.id('promotion')
          const stream = streams.agent(agentId)
          const requirement = promotionRequirement(this.policyInForce(), environment, to)
          const asked = this.command(agent, stream, {
            type: 'RequestPromotion',
            actor: self,
            requestId,
            environment,
            to,
            trackRecord: this.trackRecordOf(agentId, environment, requirement?.windowDays ?? 30),
            context: { requirement },
          })
          if (asked?.some((e) => e.type === 'PromotionRequested') !== true) {
            if (skip) continue
            break
          }
          for (const admin of [ADMIN, SECOND_ADMIN]) {
            const trackRecord = this.trackRecordOf(agentId, environment, requirement?.windowDays ?? 30)
            const context = { requirement, trackRecord }
            this.command(agent, stream, { type: 'ApprovePromotion', actor: admin, requestId, context })
          }
        }
      }
    }
  }

  /** An admin grants what an identity needs the first time it needs it: mostly exact, some too broad. */
  private grantFor(identity: string, tool: string, action: string, name: string, environment: string): void {
    const key = `${identity}|${tool}.${action}|${name}|${environment}`
    if (this.granted.has(key)) return
    this.granted.add(key)
    const grantId = this.id('g')
    const wildcard = this.random.chance(0.07)
    this.governed({
      kind: 'grant-scope',
      grantId,
      identity,
      tool,
      action,
      resourcePattern: wildcard ? `${tool}-*` : name,
      environment,
      via: this.random.chance(0.95) ? 'direct' : 'inherited',
    })
  }

  private observe(environment: string, name: string): string {
    const version = this.id('v')
    this.command(resource, streams.resource(environment, name), {
      type: 'ObserveState',
      actor: OBSERVER,
      context: { now: this.iso(), maxSkewSeconds: OBSERVATION_MAX_SKEW_SECONDS },
      environment,
      resource: name,
      version,
      digest: `sha256:${version}`,
      observedAt: this.iso(-2),
    })
    return version
  }

  private startFlight(): Flight | null {
    const r = this.random
    const { agentId } = r.pick(this.agents)
    const environment = r.pick(ENVIRONMENTS)
    const t = r.pick(TOOLS)
    const name = `${t.tool}-service-${r.int(1, RESOURCES_PER_TOOL)}`
    const identity = `svc-${agentId}`
    this.grantFor(identity, t.tool, t.action, name, environment)
    const version = this.observe(environment, name)
    const proposalId = this.id('p')
    const plan = {
      steps: [`${t.tool} ${t.action}`, `target ${name}`],
      batch: r.int(1, 5),
      canary: r.chance(0.5),
    }
    const submitted = this.command(proposal, streams.proposal(proposalId), {
      type: 'SubmitProposal',
      actor: principal(agentId, 'agent'),
      proposal: {
        proposalId,
        agentId,
        executingIdentity: identity,
        tool: t.tool,
        action: t.action,
        resource: name,
        environment,
        plan,
        expectedImpact: t.impact ?? 'critical',
        // now and then the agent works from an older snapshot
        snapshot: { version: r.chance(0.04) ? `${version}-old` : version },
        description: `${t.tool} ${t.action} on ${name}`,
      },
      context: {
        agentLevel: this.levelOf(agentId, environment),
        boundAgents: this.bindingState(identity).agent,
      },
    })
    const first = submitted?.[0]
    if (first?.type !== 'ProposalSubmitted') return null
    this.proposals.push(proposalId)
    const flight: Flight = {
      proposalId,
      agentId,
      environment,
      tool: t.tool,
      resource: name,
      impact: t.impact,
      actionDigest: first.data.actionDigest,
      executionId: null,
    }
    this.attachEvidence(flight)
    return flight
  }

  /** The evidence the impact class needs, each piece sometimes missing or refused. */
  private attachEvidence(f: Flight): void {
    const r = this.random
    const stream = streams.proposal(f.proposalId)
    const impact = f.impact ?? 'critical'
    const otherDigest = `sha256:${'ab'.repeat(32)}`
    const self = principal(f.agentId, 'agent')
    const level = this.levelOf(f.agentId, f.environment)
    if ((impact === 'high' || impact === 'critical') && !r.chance(0.06)) {
      // the agent asks for a simulation (from 'simulate' up), the simulator answers its request
      const requestId = this.id('simreq')
      const kinds = ADVERSARIAL.slice(0, r.int(3, 5))
      const requested = this.command(proposal, stream, {
        type: 'RequestSimulation',
        actor: self,
        requestId,
        actionDigest: f.actionDigest,
        branchKinds: [...kinds],
        context: { agentLevel: level },
      })
      if (requested !== null) {
        const branches = [
          {
            name: 'baseline',
            kind: 'baseline' as const,
            counterfactual: 'as planned',
            outcome: 'survived' as const,
          },
          ...kinds.map((kind) => ({
            name: kind,
            kind,
            counterfactual: `what if ${kind} during the change`,
            outcome: r.chance(0.97) ? ('survived' as const) : ('failed' as const),
          })),
        ]
        this.command(proposal, stream, {
          type: 'AttachSimulation',
          actor: SIMULATOR,
          simulationId: this.id('sim'),
          requestId,
          actionDigest: r.chance(0.96) ? f.actionDigest : otherDigest,
          branches,
          context: { attesterIsAgent: false },
        })
      }
    }
    if (impact !== 'read' && impact !== 'low' && !r.chance(0.06)) {
      this.command(proposal, stream, {
        type: 'AttachRollbackTest',
        actor: r.chance(0.5) ? SIMULATOR : EXECUTOR,
        actionDigest: r.chance(0.96) ? f.actionDigest : otherDigest,
        playbook: `undo ${f.tool}: restore the previous version, then verify health`,
        testRunId: this.id('run'),
        testedAt: this.iso(-r.int(60, 3600)),
        outcome: r.chance(0.96) ? 'passed' : 'failed',
        expectedRecoverySeconds: r.int(30, 600),
        killSwitch: { scope: 'tool', target: f.tool },
        context: { attesterIsAgent: false },
      })
    }
    const approvals = impact === 'critical' ? 2 : impact === 'medium' || impact === 'high' ? 1 : 0
    const approvers = [...APPROVERS].sort(() => (r.chance(0.5) ? 1 : -1))
    const executors = this.bindingState(`svc-${f.agentId}`).executor
    for (let i = 0; i < approvals; i += 1) {
      if (r.chance(0.05)) continue
      this.command(proposal, stream, {
        type: 'Approve',
        actor: approvers[i] as Actor,
        role: 'approver',
        actionDigest: r.chance(0.97) ? f.actionDigest : otherDigest,
        context: { executors, attesterIsAgent: false },
      })
    }
  }

  /** Starts an execution as the executor; the gate may refuse it (recorded, nothing runs). */
  private start(f: Flight, verdictId: string | null, actionDigest: string): 'executing' | 'done' {
    const executionId = this.id('exec')
    const events = this.command(proposal, streams.proposal(f.proposalId), {
      type: 'StartExecution',
      actor: EXECUTOR,
      executionId,
      verdictId,
      actionDigest,
      context: {
        executors: this.bindingState(`svc-${f.agentId}`).executor,
        engagedSwitches: this.switchesOver(f),
        // the builder judges starts on the states it holds; its decision service catches up at each flush
        gateClosed: null,
        now: this.iso(),
      },
    })
    if (events?.some((e) => e.type === 'ExecutionStarted') !== true) return 'done'
    f.executionId = executionId
    return 'executing'
  }

  /** What happens once the verdicts are in: execute an allow, mostly withdraw a block. */
  private decideFate(f: Flight): 'executing' | 'done' {
    const r = this.random
    const state = this.proposalState(f.proposalId)
    if (state.status !== 'open') return 'done'
    const stream = streams.proposal(f.proposalId)
    const v = state.verdict
    const live = v !== null && v.decision === 'allow' && !v.revoked && !v.expired
    if (live) {
      // an allow left unused expires; the scheduler says so
      if (r.chance(0.02)) return 'done'
      // the world moves on just as the executor starts: the start is recorded on the allow the ledger holds,
      // which the decision service supersedes right after
      if (r.chance(0.01)) this.observe(f.environment, f.resource)
      return this.start(f, v.verdictId, r.chance(0.99) ? f.actionDigest : `sha256:${'cd'.repeat(32)}`)
    }
    // starting without a live allow: the gate refuses it, nothing runs
    if (r.chance(v?.revoked ? 0.1 : 0.03)) return this.start(f, v?.verdictId ?? null, f.actionDigest)
    // most blocked proposals are withdrawn; a few are abandoned and stay open
    if (!r.chance(0.02)) {
      this.command(proposal, stream, {
        type: 'Withdraw',
        actor: principal(f.agentId, 'agent'),
        reason: 'blocked: not worth the evidence',
        context: { replacement: null },
      })
    }
    return 'done'
  }

  private finishExecution(f: Flight): 'failed' | 'done' {
    if (f.executionId === null) return 'done'
    const stream = streams.proposal(f.proposalId)
    const executionId = f.executionId
    if (this.random.chance(0.82)) {
      this.command(proposal, stream, {
        type: 'SucceedExecution',
        actor: EXECUTOR,
        executionId,
        resourceVersionAfter: this.id('v'),
      })
      return 'done'
    }
    this.command(proposal, stream, {
      type: 'FailExecution',
      actor: EXECUTOR,
      executionId,
      error: 'health checks failed after the change',
      resourceVersionAfter: null,
    })
    return 'failed'
  }

  private rollBack(f: Flight, firstTryFails: boolean): void {
    if (f.executionId === null) return
    const stream = streams.proposal(f.proposalId)
    const rollbackId = this.id('rb')
    const executionId = f.executionId
    this.command(proposal, stream, { type: 'StartRollback', actor: EXECUTOR, rollbackId, executionId })
    if (firstTryFails) {
      this.command(proposal, stream, {
        type: 'FailRollback',
        actor: EXECUTOR,
        rollbackId,
        error: 'rollback step timed out',
      })
      const retry = this.id('rb')
      this.command(proposal, stream, {
        type: 'StartRollback',
        actor: EXECUTOR,
        rollbackId: retry,
        executionId,
      })
      this.command(proposal, stream, {
        type: 'CompleteRollback',
        actor: EXECUTOR,
        rollbackId: retry,
        resourceVersionAfter: this.id('v'),
      })
      return
    }
    this.command(proposal, stream, {
      type: 'CompleteRollback',
      actor: EXECUTOR,
      rollbackId,
      resourceVersionAfter: this.id('v'),
    })
  }

  /** One chunk: a hundred lifecycles moving in lock step, ledger time advancing between the phases. */
  async chunk(): Promise<void> {
    const r = this.random
    const head = (await this.store.head()).position
    const remaining = Math.max(1, this.target - head)
    const span = ((this.endMs - this.clockMs) * Math.min(1, 1000 / remaining)) / 1000
    const chunkStart = this.clockMs

    // failures left unrecovered last time are rolled back late; demoted agents climb back
    for (const f of this.lateRollbacks) this.rollBack(f, false)
    this.lateRollbacks = []
    await this.climbAll()
    if (this.policyVersion === 1 && head > this.target * 0.4) {
      this.policyVersion = 2
      // a stricter policy: one admin publishes it, the other approves it
      const stricter = {
        ...defaultPolicy(POLICY_OWNER, 2),
        freshnessMaxAgeSeconds: 240,
        survivalThreshold: 0.8,
        promotion: OPEN_LADDER,
      }
      this.governed({ kind: 'publish-policy', policyVersion: 2 }, stricter)
    }
    await this.flush()

    this.tick(5)
    const flights = Array.from({ length: LIFECYCLES_PER_CHUNK }, () => this.startFlight()).filter(
      (f): f is Flight => f !== null,
    )
    await this.flush()

    let engaged: KillSwitchRef | null = null
    if (r.chance(0.03)) {
      this.tick(20)
      const scope = r.pick(['environment', 'tool', 'tool', 'agent', 'agent'] as const)
      const target =
        scope === 'environment'
          ? r.pick(ENVIRONMENTS)
          : scope === 'tool'
            ? r.pick(TOOLS).tool
            : r.pick(this.agents).agentId
      engaged = { scope, target }
      this.command(killSwitch, streams.killSwitch(engaged), {
        type: 'Engage',
        actor: ADMIN,
        ...engaged,
        reason: 'incident in progress',
      })
      await this.flush()
    }

    this.tick(r.int(30, 90))
    const executing = flights.filter((f) => this.decideFate(f) === 'executing')
    await this.flush()

    this.tick(r.int(60, 180))
    const failed = executing.filter((f) => this.finishExecution(f) === 'failed')
    await this.flush()

    this.tick(r.int(60, 300))
    for (const f of failed) {
      // some failures are not recovered within the policy's time: the deadline passes, the agent is demoted
      if (r.chance(0.08)) this.lateRollbacks.push(f)
      else this.rollBack(f, r.chance(0.1))
    }
    await this.flush()

    if (engaged) {
      this.tick(r.int(30, 300))
      // a release widens authority again: one admin asks, the other approves
      this.governed({ kind: 'release-kill-switch', ...engaged, reason: 'incident resolved' })
    }
    this.clockMs = Math.max(this.clockMs, chunkStart + span * 1000)
    await this.flush()
    const now = new Date(this.clockMs)
    await appendDueNotices(this.recording(), this.decision.world().deadlines(now.toISOString()), now)
    await this.flush()
    // a finished lifecycle's state is no longer needed in memory
    for (const f of flights) {
      const status = this.proposalState(f.proposalId).status
      if (status === 'succeeded' || status === 'recovered' || status === 'withdrawn')
        this.states.delete(streams.proposal(f.proposalId))
    }
  }
}

/** Generates a ledger of at least `events` events at `path`; its time ends about `endAt` (default: an hour ago). */
export const generateLedger = async (options: GenerateOptions): Promise<GeneratedLedger> => {
  const started = performance.now()
  const endMs = options.endAt ?? Date.now() - 3_600_000
  const startMs = endMs - options.events * LEDGER_SECONDS_PER_EVENT * 1000
  const builder = new LedgerBuilder(
    options.path,
    options.verdictKey,
    options.seed ?? 7,
    startMs,
    endMs,
    options.events,
  )
  try {
    await builder.setUp()
    let reported = 0
    for (;;) {
      const head = (await builder.store.head()).position
      if (head >= options.events) break
      if (head - reported >= options.events / 10) {
        reported = head
        options.onProgress?.(head)
      }
      await builder.chunk()
    }
    const head = (await builder.store.head()).position
    let verdicts = 0
    for (let after = 0; ; ) {
      const batch = await builder.store.readAll(after, 10_000)
      const last = batch.at(-1)
      if (!last) break
      for (const e of batch)
        if (e.type === 'VerdictIssued' && e.metadata.actor === DECISION_ACTOR) verdicts += 1
      after = last.position
    }
    return {
      events: head,
      proposals: builder.proposals,
      verdicts,
      refusedCommands: builder.refused,
      seconds: (performance.now() - started) / 1000,
    }
  } finally {
    await builder.store.close()
  }
}

// ---------- generated once, kept in the system temp folder ----------

/** Bump when the generator changes what it writes: cached ledgers of another version are not reused. */
const GENERATOR_VERSION = 5
const CACHE = join(tmpdir(), 'governance-ledger-bench')

export interface LedgerFixture extends Omit<GeneratedLedger, 'seconds'> {
  /** a ledger.db and keys/verdict-signing.pem, to copy, never to write to */
  readonly folder: string
  /** how long generating it took, and whether this run did it */
  readonly generatedSeconds: number
  readonly generatedAt: string
  readonly reused: boolean
}

/**
 * A generated ledger of about `events` events, from the cache when a run has made it before (generation is
 * a fixture, not a figure: the figures time what the service does with the ledger).
 */
export const ledgerFixture = async (events: number, log: (line: string) => void): Promise<LedgerFixture> => {
  const folder = join(CACHE, `ledger-${events}-v${GENERATOR_VERSION}`)
  const manifestPath = join(folder, 'manifest.json')
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Omit<
      LedgerFixture,
      'folder' | 'reused'
    >
    log(`  ledger of ${manifest.events} events from the cache (${folder})`)
    return { ...manifest, folder, reused: true }
  }
  mkdirSync(CACHE, { recursive: true })
  const building = mkdtempSync(join(CACHE, 'building-'))
  try {
    const { key } = loadOrCreateSigningKey(join(building, 'keys', 'verdict-signing.pem'))
    log(`  generating a ledger of ${events} events (once; cached in ${CACHE})`)
    const generated = await generateLedger({
      path: join(building, 'ledger.db'),
      events,
      verdictKey: key,
      onProgress: (n) => log(`    ${n} events`),
    })
    const { seconds, ...rest } = generated
    const manifest = { ...rest, generatedSeconds: seconds, generatedAt: new Date().toISOString() }
    writeFileSync(join(building, 'manifest.json'), JSON.stringify(manifest))
    rmSync(folder, { recursive: true, force: true })
    renameSync(building, folder)
    log(`  generated ${generated.events} events in ${seconds.toFixed(1)} s`)
    return { ...manifest, folder, reused: false }
  } finally {
    rmSync(building, { recursive: true, force: true })
  }
}

/** A data folder for the service holding a copy of the fixture's ledger and verdict key, nothing derived. */
export const copyFixture = (fixture: LedgerFixture, dataDir: string): void => {
  mkdirSync(join(dataDir, 'keys'), { recursive: true, mode: 0o700 })
  copyFileSync(join(fixture.folder, 'ledger.db'), join(dataDir, 'ledger.db'))
  copyFileSync(
    join(fixture.folder, 'keys', 'verdict-signing.pem'),
    join(dataDir, 'keys', 'verdict-signing.pem'),
  )
}
