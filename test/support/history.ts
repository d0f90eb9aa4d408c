// Generates a long, varied ledger history through the real application layer, deciders, store and decision
// service, as the service's users would drive it, each command as the principal entitled to it (or, now and
// then, one that is not, and is refused): every path of the rules (blocks, allows, refusals at the gate,
// failures, rollbacks, violations, kill switches, promotions earned and refused, identities unbound).
import { type AuthorityDoc, authority, trackDaysOf, trackRecord } from '../../projections/authority.js'
import { bindingsOf, isAgent, switchesOver } from '../../src/application/context.js'
import { approveChange, govern, refuseChange } from '../../src/application/govern.js'
import { handle, loadState } from '../../src/application/handle.js'
import { approvePromotion, requestPromotion } from '../../src/application/promotions.js'
import { type ProposalRequest, submitProposal } from '../../src/application/proposals.js'
import { agentLevel, ledgerTime } from '../../src/application/queries.js'
import { appendDueNotices } from '../../src/decision/scheduler.js'
import type { DecisionService } from '../../src/decision/service.js'
import type { Actor, Role } from '../../src/domain/actor.js'
import { agent, binding, killSwitch, proposal, resource } from '../../src/domain/deciders/index.js'
import type { ProposalCommand, ProposalState } from '../../src/domain/deciders/proposal.js'
import { defaultPolicy } from '../../src/domain/eligibility.js'
import { DomainError } from '../../src/domain/errors.js'
import {
  type AuthorityLevel,
  type BranchKind,
  type GovernanceChange,
  type ImpactClass,
  type KillSwitchRef,
  type PolicyDraft,
  type PromotionRequirement,
  type PromotionRequirements,
  streams,
  type TrackRecord,
  toLedgerEvent,
} from '../../src/domain/events.js'
import type { AppendResult, EventStore } from '../../src/store/port.js'

/** A clock the test moves by hand; the store stamps recordedAt from it. */
export class FakeClock {
  constructor(private ms = Date.parse('2026-01-05T08:00:00.000Z')) {}
  now = (): Date => new Date(this.ms)
  advance(seconds: number): void {
    this.ms += Math.round(seconds * 1000)
  }
}

/** mulberry32: a small seeded generator, so a failing history can be generated again. */
export const seeded = (seed: number) => {
  let a = seed >>> 0
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    chance: (p: number) => next() < p,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  }
}

/** A principal as its verified token states it. */
const principal = (sub: string, ...roles: Role[]): Actor => ({
  sub,
  roles,
  approvalRoles: roles.includes('approver') ? ['approver'] : [],
})

const ADMINS = [principal('admin-1', 'policy-admin'), principal('admin-2', 'policy-admin')] as const
const [ADMIN] = ADMINS
const OBSERVER = principal('observer-1', 'observer')
const SIMULATOR = principal('simulator-1', 'simulator')
const EXECUTOR = principal('executor-1', 'executor')
/** an executor bound to no identity: the gate refuses its starts */
const STRAY_EXECUTOR = principal('executor-2', 'executor')
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
const ADVERSARIAL: readonly BranchKind[] = [
  'dependency-down',
  'concurrent-change',
  'partial-failure',
  'stale-read',
  'rollback-failure',
]
const LADDER: readonly AuthorityLevel[] = ['observe', 'recommend', 'simulate', 'execute']
const DAY_MS = 86_400_000
/** how far an observer's clock may run ahead of ledger time, as the service is configured by default */
const OBSERVATION_MAX_SKEW_SECONDS = 5

const requirement = (overrides: Partial<PromotionRequirement> = {}): PromotionRequirement => ({
  windowDays: 30,
  minProposals: 0,
  minSimulationsPassed: 0,
  minSurvivalRate: 0,
  maxViolations: 0,
  maxFailedExecutions: 0,
  ...overrides,
})
/** The first policy asks no track record (everyone starts somewhere); failures and violations do not bar a climb. */
const OPEN_LADDER: PromotionRequirements = {
  recommend: requirement(),
  simulate: requirement({ maxViolations: 1000, maxFailedExecutions: 1000 }),
  execute: requirement({ maxViolations: 1000, maxFailedExecutions: 1000 }),
}
/** The second asks, to execute in production, a record earned there: a proposal and a simulation passed. */
const EARNED_IN_PRODUCTION: PromotionRequirements = {
  ...OPEN_LADDER,
  execute: requirement({
    minProposals: 1,
    minSimulationsPassed: 1,
    minSurvivalRate: 0.5,
    maxViolations: 1000,
    maxFailedExecutions: 1000,
  }),
}

export interface HistoryFigures {
  proposals: number
  refusedCommands: number
  promotionsRequested: number
  /** starts the execution gate refused (recorded, nothing ran) */
  refusedAtGate: number
}

/** Drives the service like its users would, stepping the decision service and the scheduler as it goes. */
export class History {
  readonly figures: HistoryFigures = {
    proposals: 0,
    refusedCommands: 0,
    promotionsRequested: 0,
    refusedAtGate: 0,
  }
  private readonly random
  private readonly agents: string[]
  private next = 0
  /** the authority projection, kept in memory and caught up before each promotion request */
  private readonly authorityDocs = new Map<string, AuthorityDoc>()
  private authorityAt = 0

  constructor(
    private readonly store: EventStore,
    private readonly decision: DecisionService,
    private readonly clock: FakeClock,
    seed: number,
    agentCount = 6,
  ) {
    this.random = seeded(seed)
    this.agents = Array.from({ length: agentCount }, (_, i) => `agent-${i + 1}`)
  }

  private id(prefix: string): string {
    this.next += 1
    return `${prefix}-${this.next}`
  }

  private now(): string {
    return this.clock.now().toISOString()
  }

  private options() {
    return { correlationId: this.id('corr') }
  }

  /** Runs a command; a refusal by the rules is counted, anything else fails the history. */
  private async attempt<T>(command: () => Promise<T>): Promise<T | null> {
    try {
      return await command()
    } catch (error) {
      if (error instanceof DomainError) {
        this.figures.refusedCommands += 1
        return null
      }
      throw error
    }
  }

  /** A governance change by one policy admin, approved by the other when it widens authority. */
  private async governed(change: GovernanceChange, draft: PolicyDraft | null = null): Promise<boolean> {
    const [requester, approver] = this.random.chance(0.5) ? ADMINS : ([ADMINS[1], ADMINS[0]] as const)
    const done = await this.attempt(async () => {
      const outcome = await govern(this.store, requester, change, draft, this.options())
      if (outcome.status === 'pending')
        await approveChange(this.store, approver, outcome.requestId, this.options())
      return true
    })
    return done ?? false
  }

  /** A command on a proposal, with the context its rules read loaded as the service loads it, at ledger time. */
  private onProposal(
    actor: Actor,
    proposalId: string,
    request: ProposalRequest,
  ): Promise<AppendResult | null> {
    const withContext = async (state: ProposalState): Promise<ProposalCommand> => {
      if (state.status === 'none') throw new DomainError('not-found', 'the proposal does not exist')
      const { agentId, environment, executingIdentity } = state.proposal
      switch (request.type) {
        case 'RequestSimulation': {
          const level = await agentLevel(this.store, agentId, environment)
          return { ...request, actor, context: { agentLevel: level } }
        }
        case 'AttachSimulation':
        case 'AttachRollbackTest':
          return { ...request, actor, context: { attesterIsAgent: await isAgent(this.store, actor.sub) } }
        case 'Approve': {
          const executors = (await bindingsOf(this.store, executingIdentity)).executor
          return {
            ...request,
            actor,
            context: { executors, attesterIsAgent: await isAgent(this.store, actor.sub) },
          }
        }
        case 'StartExecution': {
          const executors = (await bindingsOf(this.store, executingIdentity)).executor
          const engagedSwitches = await switchesOver(this.store, state.proposal)
          // the gate waits for the decision service to judge the ledger up to its head, as the service's does
          await this.settle()
          const context = { executors, engagedSwitches, gateClosed: null, now: this.now() }
          return { ...request, actor, context }
        }
        default:
          return { ...request, actor } as ProposalCommand
      }
    }
    return this.attempt(() =>
      handle(this.store, proposal, streams.proposal(proposalId), withContext, {
        actor: actor.sub,
        ...this.options(),
      }),
    )
  }

  private async settle(): Promise<void> {
    await this.decision.catchUp()
  }

  private tick(seconds: number): void {
    this.clock.advance(seconds)
  }

  async setUp(): Promise<void> {
    // the first policy of an empty ledger: one admin publishes it (approvedBy null)
    const first: PolicyDraft = { ...defaultPolicy(POLICY_OWNER, 1), promotion: OPEN_LADDER }
    await this.governed({ kind: 'publish-policy', policyVersion: 1 }, first)
    for (const t of TOOLS) {
      if (t.impact === null) continue
      await this.governed({
        kind: 'register-tool-action',
        tool: t.tool,
        action: t.action,
        impact: t.impact,
        reversible: t.impact !== 'critical',
        description: '',
      })
    }
    for (const agentId of this.agents) {
      await this.attempt(() =>
        handle(
          this.store,
          agent,
          streams.agent(agentId),
          { type: 'RegisterAgent', actor: ADMIN, agentId, owner: 'platform-team', description: '' },
          { actor: ADMIN.sub, ...this.options() },
        ),
      )
      // bound before any proposal: the agent acts through its identity, the executor runs as it
      const identity = `svc-${agentId}`
      await this.governed({ kind: 'bind-identity', principal: agentId, role: 'agent', identity })
      await this.governed({ kind: 'bind-identity', principal: EXECUTOR.sub, role: 'executor', identity })
      for (const environment of ENVIRONMENTS) {
        for (const t of TOOLS) {
          // most identities hold exact grants; some only a wildcard or an inherited one
          const exact = this.random.chance(0.8)
          await this.governed({
            kind: 'grant-scope',
            grantId: `g-${agentId}-${environment}-${t.tool}`,
            identity,
            tool: t.tool,
            action: exact ? t.action : '*',
            resourcePattern: exact ? `${t.tool}-service` : `${t.tool}-*`,
            environment,
            via: this.random.chance(0.9) ? 'direct' : 'inherited',
          })
        }
        await this.climb(
          agentId,
          environment,
          this.random.pick(['recommend', 'simulate', 'execute', 'execute'] as const),
        )
      }
    }
    await this.settle()
  }

  private async levelOf(agentId: string, environment: string): Promise<AuthorityLevel> {
    return (await agentLevel(this.store, agentId, environment)) ?? 'observe'
  }

  /** The track record the ledger computes from the authority projection, over the days up to ledger time. */
  private async trackRecordOf(agentId: string, environment: string, days: number): Promise<TrackRecord> {
    for (;;) {
      const batch = await this.store.readAll(this.authorityAt, 1000)
      if (batch.length === 0) break
      for (const stored of batch) {
        const changes = authority.evolve((key) => this.authorityDocs.get(key), toLedgerEvent(stored))
        for (const [key, doc] of changes) {
          if (doc === null) this.authorityDocs.delete(key)
          else this.authorityDocs.set(key, doc)
        }
        this.authorityAt = stored.position
      }
    }
    const windowEnd = (await ledgerTime(this.store)) ?? this.now()
    const windowStart = new Date(Date.parse(windowEnd) - days * DAY_MS).toISOString()
    return trackRecord(trackDaysOf(this.authorityDocs.values(), agentId, environment), windowStart, windowEnd)
  }

  /**
   * Promotion one rung at a time: the agent asks with the track record the ledger computes, two distinct
   * policy admins approve. Now and then it asks to skip a rung (refused and recorded); a record short of the
   * policy's minimum is refused and recorded too, and ends the climb until the agent has earned more.
   */
  async climb(agentId: string, environment: string, target: AuthorityLevel): Promise<void> {
    const self = principal(agentId, 'agent')
    for (let rungs = 0; rungs < 6; rungs += 1) {
      const level = await this.levelOf(agentId, environment)
      const index = LADDER.indexOf(level)
      if (index >= LADDER.indexOf(target)) return
      const skip = this.random.chance(0.15) && index + 2 < LADDER.length
      const to = LADDER[index + (skip ? 2 : 1)] as AuthorityLevel
      const requestId = this.id('promotion')
      this.figures.promotionsRequested += 1
      const requested = await this.attempt(() =>
        requestPromotion(
          this.store,
          self,
          agentId,
          { requestId, environment, to },
          (days) => this.trackRecordOf(agentId, environment, days),
          this.options(),
        ),
      )
      this.tick(5)
      if (requested === null) return
      if (requested.events.some((e) => e.type === 'PromotionRefused')) {
        if (skip) continue
        return
      }
      for (const admin of ADMINS) {
        await this.attempt(() =>
          approvePromotion(
            this.store,
            admin,
            agentId,
            requestId,
            (env, days) => this.trackRecordOf(agentId, env, days),
            this.options(),
          ),
        )
        this.tick(5)
      }
    }
  }

  private async observe(environment: string, name: string): Promise<string> {
    const version = this.id('v')
    await this.attempt(() =>
      handle(
        this.store,
        resource,
        streams.resource(environment, name),
        {
          type: 'ObserveState',
          actor: OBSERVER,
          context: { now: this.now(), maxSkewSeconds: OBSERVATION_MAX_SKEW_SECONDS },
          environment,
          resource: name,
          version,
          digest: `sha256-${version}`,
          observedAt: this.now(),
        },
        { actor: OBSERVER.sub, ...this.options() },
      ),
    )
    return version
  }

  /** One proposal from submission to its end, with evidence arriving piece by piece, some of it refused. */
  async lifecycle(): Promise<void> {
    const r = this.random
    const agentId = r.pick(this.agents)
    const self = principal(agentId, 'agent')
    const environment = r.pick(ENVIRONMENTS)
    const t = r.pick(TOOLS)
    const resourceName = `${t.tool}-service`
    const proposalId = this.id('p')
    // now and then an agent names an identity it is not bound to: refused
    const executingIdentity = r.chance(0.03) ? `svc-${r.pick(this.agents)}` : `svc-${agentId}`
    const plan = { steps: [`${t.tool} ${t.action}`, `target ${resourceName}`], batch: r.int(1, 5) }
    const version = await this.observe(environment, resourceName)
    this.tick(r.int(1, 20))
    const submitted = await this.attempt(() =>
      submitProposal(
        this.store,
        self,
        {
          proposalId,
          agentId,
          executingIdentity,
          tool: t.tool,
          action: t.action,
          resource: resourceName,
          environment,
          plan,
          expectedImpact: t.impact ?? 'critical',
          snapshot: { version },
          description: '',
        },
        this.options(),
      ),
    )
    if (submitted === null) return
    this.figures.proposals += 1
    await this.settle()
    const { actionDigest } = submitted
    const otherDigest = `sha256:${'ab'.repeat(32)}`
    const digest = (p: number) => (r.chance(p) ? actionDigest : otherDigest)

    const evidence: Array<() => Promise<unknown>> = [
      () => this.simulate(proposalId, self, digest),
      () => {
        // a rollback test by the simulator or an executor that ran it; now and then the agent tries: refused
        const tester = r.chance(0.05) ? self : r.chance(0.5) ? SIMULATOR : EXECUTOR
        return this.onProposal(tester, proposalId, {
          type: 'AttachRollbackTest',
          actionDigest: digest(0.92),
          playbook: `undo ${t.tool} ${t.action}`,
          testRunId: this.id('run'),
          testedAt: new Date(this.clock.now().getTime() - r.int(60, 3600) * 1000).toISOString(),
          outcome: r.chance(0.93) ? 'passed' : 'failed',
          expectedRecoverySeconds: r.int(30, 600),
          killSwitch: { scope: 'tool', target: t.tool },
        })
      },
      () => this.approve(proposalId, self, digest),
      () => this.approve(proposalId, self, digest),
    ]
    for (const attach of evidence) {
      if (r.chance(0.08)) continue
      this.tick(r.int(1, 30))
      await attach()
      await this.settle()
    }
    let unbound = false
    if (r.chance(0.03) && executingIdentity === `svc-${agentId}`) {
      // the identity is taken from the agent while its proposal is open: the verdict fails lineage
      this.tick(r.int(1, 30))
      unbound =
        (await this.attempt(() =>
          handle(
            this.store,
            binding,
            streams.identity(executingIdentity),
            {
              type: 'Unbind',
              actor: ADMIN,
              principal: agentId,
              role: 'agent',
              identity: executingIdentity,
              reason: 'credentials rotated',
            },
            { actor: ADMIN.sub, ...this.options() },
          ),
        )) !== null
      await this.settle()
    }
    let settled = true
    if (r.chance(0.1)) {
      // the world moves on: the proposal's snapshot is superseded, sometimes just as an executor starts, which
      // the gate then holds until the decision service has judged it, and refuses on the new verdict
      this.tick(r.int(1, 30))
      await this.observe(environment, resourceName)
      settled = !r.chance(0.4)
      if (settled) await this.settle()
    }
    this.tick(r.int(1, 60))
    await this.end(proposalId, settled)
    if (unbound) {
      this.tick(r.int(30, 300))
      await this.governed({
        kind: 'bind-identity',
        principal: agentId,
        role: 'agent',
        identity: executingIdentity,
      })
      await this.settle()
    }
  }

  /** The agent asks for a simulation (refused below 'simulate'); the simulator answers the request. */
  private async simulate(proposalId: string, self: Actor, digest: (p: number) => string): Promise<void> {
    const r = this.random
    const requestId = this.id('simreq')
    const kinds = ADVERSARIAL.slice(0, r.int(2, 5))
    const requested = await this.onProposal(self, proposalId, {
      type: 'RequestSimulation',
      requestId,
      actionDigest: digest(0.97),
      branchKinds: [...kinds],
    })
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
        counterfactual: `what if ${kind}`,
        outcome: r.chance(0.93) ? ('survived' as const) : ('failed' as const),
      })),
    ]
    if (requested === null) {
      // an agent that may not ask sometimes records its own results: refused
      if (r.chance(0.3)) {
        await this.onProposal(self, proposalId, {
          type: 'AttachSimulation',
          simulationId: this.id('sim'),
          requestId,
          actionDigest: digest(1),
          branches,
        })
      }
      return
    }
    await this.settle()
    this.tick(r.int(1, 30))
    await this.onProposal(SIMULATOR, proposalId, {
      type: 'AttachSimulation',
      simulationId: this.id('sim'),
      requestId,
      actionDigest: digest(0.9),
      branches,
    })
  }

  private async approve(proposalId: string, self: Actor, digest: (p: number) => string): Promise<unknown> {
    const r = this.random
    // now and then the proposing agent tries to approve its own action: refused
    const approver = r.chance(0.04) ? self : r.pick(APPROVERS)
    return this.onProposal(approver, proposalId, {
      type: 'Approve',
      role: 'approver',
      actionDigest: digest(0.93),
    })
  }

  /** Starts an execution; false when the gate refused it (recorded, nothing ran). */
  private async start(
    executor: Actor,
    proposalId: string,
    executionId: string,
    verdictId: string | null,
    actionDigest: string,
  ): Promise<boolean> {
    const result = await this.onProposal(executor, proposalId, {
      type: 'StartExecution',
      executionId,
      verdictId,
      actionDigest,
    })
    if (result?.events.some((e) => e.type === 'ExecutionRefused')) this.figures.refusedAtGate += 1
    return result?.events.some((e) => e.type === 'ExecutionStarted') ?? false
  }

  /** An action run outside the gate, as its executor reports it to the ledger: the decision service's to judge. */
  private async ranWithoutAllow(
    proposalId: string,
    executionId: string,
    verdictId: string | null,
    actionDigest: string,
  ): Promise<void> {
    const data = { proposalId, executionId, verdictId, actionDigest, executor: EXECUTOR.sub }
    const metadata = { actor: EXECUTOR.sub, correlationId: null, causationId: null }
    await this.store.append(
      streams.proposal(proposalId),
      [{ type: 'ExecutionStarted', data, metadata }],
      'any',
    )
  }

  private async end(proposalId: string, settled: boolean): Promise<void> {
    const r = this.random
    const stream = streams.proposal(proposalId)
    const { state } = await loadState(this.store, proposal, stream)
    if (state.status !== 'open') return
    const verdict = state.verdict
    const { actionDigest, agentId, environment, tool } = state.proposal
    const executionId = this.id('exec')
    let started = false
    let incident: KillSwitchRef | null = null
    if (verdict?.decision === 'allow' && !verdict.revoked && !verdict.expired) {
      if (r.chance(0.07)) this.tick(700) // too late: the verdict expires before the start
      if (r.chance(0.05)) await this.appendDeadlines()
      if (settled && r.chance(0.06)) {
        // an incident is declared just as the executor starts: before the decision service has revoked the
        // allow, the gate reads the engaged switch itself and refuses the start
        incident = r.pick<KillSwitchRef>([
          { scope: 'agent', target: agentId },
          { scope: 'tool', target: tool },
          { scope: 'environment', target: environment },
        ])
        const ref = incident
        const engaged = await this.attempt(() =>
          handle(
            this.store,
            killSwitch,
            streams.killSwitch(ref),
            { type: 'Engage', actor: ADMIN, ...ref, reason: 'incident declared' },
            { actor: ADMIN.sub, ...this.options() },
          ),
        )
        if (engaged === null) incident = null
      }
      // now and then an executor not bound to the identity tries, or names another action: refused
      const executor = r.chance(0.03) ? STRAY_EXECUTOR : EXECUTOR
      started = await this.start(
        executor,
        proposalId,
        executionId,
        verdict.verdictId,
        r.chance(0.95) ? actionDigest : `sha256:${'cd'.repeat(32)}`,
      )
    } else if (r.chance(0.12)) {
      // an executor trying to act without an allow: refused at the gate, nothing runs
      started = await this.start(EXECUTOR, proposalId, executionId, verdict?.verdictId ?? null, actionDigest)
      // ... and now and then it runs the action anyway, outside the gate, and reports it: a violation
      if (!started && r.chance(0.3)) {
        await this.ranWithoutAllow(proposalId, executionId, verdict?.verdictId ?? null, actionDigest)
        started = true
      }
    } else if (r.chance(0.03)) {
      // an approver trying to run it itself: refused at the gate
      started = await this.start(
        r.pick(APPROVERS),
        proposalId,
        executionId,
        verdict?.verdictId ?? null,
        actionDigest,
      )
    } else {
      if (r.chance(0.5)) {
        const withdrawer = r.chance(0.5) ? ADMIN : principal(agentId, 'agent')
        await this.onProposal(withdrawer, proposalId, { type: 'Withdraw', reason: 'no longer needed' })
      }
      return
    }
    await this.settle()
    if (incident !== null) await this.release(incident)
    if (!started) return
    this.tick(r.int(5, 120))
    if (r.chance(0.75)) {
      await this.onProposal(EXECUTOR, proposalId, {
        type: 'SucceedExecution',
        executionId,
        resourceVersionAfter: this.id('v'),
      })
      return
    }
    await this.onProposal(EXECUTOR, proposalId, {
      type: 'FailExecution',
      executionId,
      error: 'health checks failed',
      resourceVersionAfter: null,
    })
    await this.settle()
    if (r.chance(0.15)) {
      // not recovered in time: the recovery deadline passes and the agent is demoted
      this.tick(1000)
      await this.appendDeadlines()
      return
    }
    const rollbackId = this.id('rb')
    this.tick(r.int(5, 300))
    await this.onProposal(EXECUTOR, proposalId, { type: 'StartRollback', rollbackId, executionId })
    this.tick(r.int(5, 400))
    if (r.chance(0.1)) {
      await this.onProposal(EXECUTOR, proposalId, {
        type: 'FailRollback',
        rollbackId,
        error: 'rollback step timed out',
      })
      const retry = this.id('rb')
      this.tick(r.int(5, 200))
      await this.onProposal(EXECUTOR, proposalId, { type: 'StartRollback', rollbackId: retry, executionId })
      this.tick(r.int(5, 200))
      await this.onProposal(EXECUTOR, proposalId, {
        type: 'CompleteRollback',
        rollbackId: retry,
        resourceVersionAfter: this.id('v'),
      })
    } else {
      await this.onProposal(EXECUTOR, proposalId, {
        type: 'CompleteRollback',
        rollbackId,
        resourceVersionAfter: this.id('v'),
      })
    }
    await this.settle()
  }

  async appendDeadlines(): Promise<void> {
    await this.settle()
    const now = this.clock.now()
    await appendDueNotices(this.store, this.decision.world().deadlines(now.toISOString()), now)
    await this.settle()
  }

  /** A release widens authority: one admin asks, a second approves (after, now and then, a refusal). */
  private async release(ref: KillSwitchRef): Promise<void> {
    const r = this.random
    this.tick(r.int(30, 600))
    const change: GovernanceChange = { kind: 'release-kill-switch', ...ref, reason: 'incident resolved' }
    if (r.chance(0.2)) {
      // the second admin is not convinced yet
      await this.attempt(async () => {
        const outcome = await govern(this.store, ADMINS[0], change, null, this.options())
        if (outcome.status !== 'pending') return
        await refuseChange(this.store, ADMINS[1], outcome.requestId, 'not yet resolved', this.options())
      })
      this.tick(r.int(30, 300))
    }
    await this.governed(change)
    await this.settle()
  }

  /** A kill switch engaged while allows are outstanding, then released by two admins. */
  async killSwitchEpisode(): Promise<void> {
    const r = this.random
    const scope = r.pick(['global', 'environment', 'tool', 'agent'] as const)
    const target =
      scope === 'global'
        ? null
        : scope === 'environment'
          ? r.pick(ENVIRONMENTS)
          : scope === 'tool'
            ? r.pick(TOOLS).tool
            : r.pick(this.agents)
    const ref: KillSwitchRef = { scope, target }
    const engaged = await this.attempt(() =>
      handle(
        this.store,
        killSwitch,
        streams.killSwitch(ref),
        { type: 'Engage', actor: ADMIN, ...ref, reason: 'incident in progress' },
        { actor: ADMIN.sub, ...this.options() },
      ),
    )
    await this.settle()
    for (let i = 0; i < r.int(1, 3); i += 1) await this.lifecycle()
    if (engaged !== null) await this.release(ref)
  }

  /** Runs until the ledger holds at least `events` events; `beforeStep` may add to the ledger between steps. */
  async generate(events: number, beforeStep?: (step: number) => Promise<void>): Promise<void> {
    await this.setUp()
    let step = 0
    while ((await this.store.head()).position < events) {
      step += 1
      await beforeStep?.(step)
      if (step === 150) {
        // a stricter policy, asking a track record to execute in production: one admin publishes it, the
        // other approves it
        const stricter: PolicyDraft = {
          ...defaultPolicy(POLICY_OWNER, 2),
          freshnessMaxAgeSeconds: 240,
          survivalThreshold: 0.8,
          // proposals left open expire within the history, under the limit in force when they were submitted
          proposalMaxOpenSeconds: 1800,
          promotion: OPEN_LADDER,
          promotionByEnvironment: { production: EARNED_IN_PRODUCTION },
          // release gates: an agent's own recent runs in production, every agent's elsewhere
          releaseGates: [
            {
              workflow: '*',
              environment: 'production',
              impacts: ['medium', 'high', 'critical'],
              perAgent: true,
              runs: 3,
              survivalThreshold: 0.7,
              requiredBranchKinds: [],
            },
            {
              workflow: '*',
              environment: null,
              impacts: ['low', 'high', 'critical'],
              perAgent: false,
              runs: 4,
              survivalThreshold: 0.8,
              requiredBranchKinds: [],
            },
          ],
        }
        await this.governed({ kind: 'publish-policy', policyVersion: 2 }, stricter)
        await this.settle()
      } else if (step % 40 === 0) await this.killSwitchEpisode()
      else if (step % 25 === 0) {
        // demoted agents earn their way back
        for (const agentId of this.agents)
          for (const env of ENVIRONMENTS) await this.climb(agentId, env, 'execute')
      } else await this.lifecycle()
      if (step % 10 === 0) await this.appendDeadlines()
    }
    await this.appendDeadlines()
  }
}
