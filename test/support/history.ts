// Generates a long, varied ledger history through the real deciders, store and decision service:
// every path of the rules (blocks, allows, failures, rollbacks, violations, kill switches, promotions).
import { handle, loadState } from '../../src/application/handle.js'
import { appendDueNotices } from '../../src/decision/scheduler.js'
import type { DecisionService } from '../../src/decision/service.js'
import {
  agent,
  type Decider,
  grant,
  inventory,
  killSwitch,
  policy,
  proposal,
  resource,
} from '../../src/domain/deciders/index.js'
import { defaultPolicy } from '../../src/domain/eligibility.js'
import { DomainError } from '../../src/domain/errors.js'
import {
  type AuthorityLevel,
  type BranchKind,
  type DomainEvent,
  type ImpactClass,
  type KillSwitchRef,
  streams,
} from '../../src/domain/events.js'
import type { EventStore } from '../../src/store/port.js'

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

const ADMIN = 'admin-1'
const APPROVERS = ['approver-1', 'approver-2', 'approver-3']
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
const track = {
  windowStart: '2026-01-01T00:00:00.000Z',
  windowEnd: '2026-01-05T00:00:00.000Z',
  proposals: 0,
  simulationsPassed: 0,
  simulationSurvivalRate: 1,
  violations: 0,
  failedExecutions: 0,
}

export interface HistoryFigures {
  proposals: number
  refusedCommands: number
  promotionsRequested: number
}

/** Drives the service like its users would, stepping the decision service and the scheduler as it goes. */
export class History {
  readonly figures: HistoryFigures = { proposals: 0, refusedCommands: 0, promotionsRequested: 0 }
  private readonly random
  private readonly agents: string[]
  private next = 0

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

  /** Runs a command; a refusal by the rules is counted, anything else fails the history. */
  private async command<C, S, E extends DomainEvent>(
    decider: Decider<C, S, E>,
    stream: string,
    command: C,
    actor: string,
  ): Promise<boolean> {
    try {
      await handle(this.store, decider, stream, command, { actor, correlationId: this.id('corr') })
      return true
    } catch (error) {
      if (error instanceof DomainError) {
        this.figures.refusedCommands += 1
        return false
      }
      throw error
    }
  }

  private async settle(): Promise<void> {
    await this.decision.catchUp()
  }

  private tick(seconds: number): void {
    this.clock.advance(seconds)
  }

  async setUp(): Promise<void> {
    await this.command(
      policy,
      streams.policy(),
      { type: 'PublishPolicy', policy: defaultPolicy(ADMIN, 1) },
      ADMIN,
    )
    for (const t of TOOLS) {
      if (t.impact === null) continue
      await this.command(
        inventory,
        streams.tool(t.tool, t.action),
        {
          type: 'RegisterToolAction',
          tool: t.tool,
          action: t.action,
          impact: t.impact,
          reversible: t.impact !== 'critical',
          description: '',
        },
        ADMIN,
      )
    }
    for (const agentId of this.agents) {
      await this.command(
        agent,
        streams.agent(agentId),
        { type: 'RegisterAgent', agentId, owner: 'platform-team', description: '' },
        ADMIN,
      )
      for (const environment of ENVIRONMENTS) {
        for (const t of TOOLS) {
          // most identities hold exact grants; some only a wildcard or an inherited one
          const exact = this.random.chance(0.8)
          await this.command(
            grant,
            streams.grant(`g-${agentId}-${environment}-${t.tool}`),
            {
              type: 'GrantScope',
              grantId: `g-${agentId}-${environment}-${t.tool}`,
              identity: `svc-${agentId}`,
              tool: t.tool,
              action: exact ? t.action : '*',
              resourcePattern: exact ? `${t.tool}-service` : `${t.tool}-*`,
              environment,
              via: this.random.chance(0.9) ? 'direct' : 'inherited',
            },
            ADMIN,
          )
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
    const { state } = await loadState(this.store, agent, streams.agent(agentId))
    return state.status === 'registered' ? (state.levels[environment] ?? 'observe') : 'observe'
  }

  /** Promotion one rung at a time, with an occasional request that skips a rung (refused and recorded). */
  async climb(agentId: string, environment: string, target: AuthorityLevel): Promise<void> {
    const ladder: AuthorityLevel[] = ['observe', 'recommend', 'simulate', 'execute']
    for (;;) {
      const level = await this.levelOf(agentId, environment)
      const index = ladder.indexOf(level)
      if (index >= ladder.indexOf(target)) return
      const skip = this.random.chance(0.15) && index + 2 < ladder.length
      const to = ladder[index + (skip ? 2 : 1)] as AuthorityLevel
      const requestId = this.id('promotion')
      this.figures.promotionsRequested += 1
      await this.command(
        agent,
        streams.agent(agentId),
        { type: 'RequestPromotion', requestId, environment, to, trackRecord: track },
        agentId,
      )
      if (!skip)
        await this.command(
          agent,
          streams.agent(agentId),
          { type: 'ApprovePromotion', requestId, approver: ADMIN },
          ADMIN,
        )
      this.tick(5)
    }
  }

  private async observe(environment: string, name: string): Promise<string> {
    const version = this.id('v')
    await this.command(
      resource,
      streams.resource(environment, name),
      {
        type: 'ObserveState',
        environment,
        resource: name,
        version,
        digest: `sha256-${version}`,
        observedAt: this.clock.now().toISOString(),
      },
      'observer-1',
    )
    return version
  }

  /** One proposal from submission to its end, with evidence arriving piece by piece, some of it flawed. */
  async lifecycle(): Promise<void> {
    const r = this.random
    const agentId = r.pick(this.agents)
    const environment = r.pick(ENVIRONMENTS)
    const t = r.pick(TOOLS)
    const resourceName = `${t.tool}-service`
    const proposalId = this.id('p')
    const stream = streams.proposal(proposalId)
    const executingIdentity = `svc-${agentId}`
    const plan = { steps: [`${t.tool} ${t.action}`, `target ${resourceName}`], batch: r.int(1, 5) }
    let version = await this.observe(environment, resourceName)
    this.tick(r.int(1, 20))
    const submitted = await this.command(
      proposal,
      stream,
      {
        type: 'SubmitProposal',
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
        context: { agentLevel: await this.levelOf(agentId, environment) },
      },
      agentId,
    )
    if (!submitted) return
    this.figures.proposals += 1
    await this.settle()
    const planHash = await this.planHash(proposalId)
    const otherHash = `sha256:${'ab'.repeat(32)}`

    const evidence: Array<() => Promise<unknown>> = [
      () => {
        const branches = [
          {
            name: 'baseline',
            kind: 'baseline' as const,
            counterfactual: 'as planned',
            outcome: 'survived' as const,
          },
          ...ADVERSARIAL.slice(0, r.int(2, 5)).map((kind) => ({
            name: kind,
            kind,
            counterfactual: `what if ${kind}`,
            outcome: r.chance(0.93) ? ('survived' as const) : ('failed' as const),
          })),
        ]
        return this.command(
          proposal,
          stream,
          {
            type: 'AttachSimulation',
            simulationId: this.id('sim'),
            planHash: r.chance(0.9) ? planHash : otherHash,
            simulatedBy: r.chance(0.5) ? agentId : 'simulator-1',
            branches,
          },
          r.chance(0.5) ? agentId : 'simulator-1',
        )
      },
      () =>
        this.command(
          proposal,
          stream,
          {
            type: 'AttachRollbackTest',
            planHash: r.chance(0.92) ? planHash : otherHash,
            playbook: `undo ${t.tool} ${t.action}`,
            testRunId: this.id('run'),
            testedAt: new Date(this.clock.now().getTime() - r.int(60, 3600) * 1000).toISOString(),
            outcome: r.chance(0.93) ? 'passed' : 'failed',
            expectedRecoverySeconds: r.int(30, 600),
            killSwitch: { scope: 'tool', target: t.tool },
          },
          agentId,
        ),
      () => this.approve(stream, planHash, otherHash, agentId),
      () => this.approve(stream, planHash, otherHash, agentId),
    ]
    for (const attach of evidence) {
      if (r.chance(0.08)) continue
      this.tick(r.int(1, 30))
      await attach()
      await this.settle()
    }
    if (r.chance(0.1)) {
      // the world moves on: the proposal's snapshot is superseded
      this.tick(r.int(1, 30))
      version = await this.observe(environment, resourceName)
      await this.settle()
    }
    this.tick(r.int(1, 60))
    await this.end(proposalId, stream, planHash, otherHash)
  }

  private async approve(
    stream: string,
    planHash: string,
    otherHash: string,
    agentId: string,
  ): Promise<unknown> {
    const r = this.random
    const self = r.chance(0.04)
    const approver = self ? agentId : r.pick(APPROVERS)
    return this.command(
      proposal,
      stream,
      { type: 'Approve', approver, role: 'approver', planHash: r.chance(0.93) ? planHash : otherHash },
      approver,
    )
  }

  private async planHash(proposalId: string): Promise<string> {
    const { state } = await loadState(this.store, proposal, streams.proposal(proposalId))
    if (state.status === 'none') throw new Error(`proposal ${proposalId} missing`)
    return state.proposal.planHash
  }

  private async end(_proposalId: string, stream: string, planHash: string, otherHash: string): Promise<void> {
    const r = this.random
    const { state } = await loadState(this.store, proposal, stream)
    if (state.status !== 'open') return
    const verdict = state.verdict
    const executor = 'executor-1'
    const executionId = this.id('exec')
    if (verdict?.decision === 'allow' && !verdict.revoked && !verdict.expired) {
      if (r.chance(0.07)) this.tick(700) // too late: the verdict expires before the start
      if (r.chance(0.05)) await this.appendDeadlines()
      await this.command(
        proposal,
        stream,
        {
          type: 'StartExecution',
          executionId,
          verdictId: verdict.verdictId,
          planHash: r.chance(0.95) ? planHash : otherHash,
          executor,
        },
        executor,
      )
    } else if (r.chance(0.12)) {
      // an executor acting without an allow: a violation
      await this.command(
        proposal,
        stream,
        { type: 'StartExecution', executionId, verdictId: verdict?.verdictId ?? null, planHash, executor },
        executor,
      )
    } else {
      if (r.chance(0.5))
        await this.command(proposal, stream, { type: 'Withdraw', reason: 'no longer needed' }, ADMIN)
      return
    }
    await this.settle()
    this.tick(r.int(5, 120))
    if (r.chance(0.75)) {
      await this.command(
        proposal,
        stream,
        { type: 'SucceedExecution', executionId, resourceVersionAfter: this.id('v') },
        executor,
      )
      return
    }
    await this.command(
      proposal,
      stream,
      { type: 'FailExecution', executionId, error: 'health checks failed', resourceVersionAfter: null },
      executor,
    )
    await this.settle()
    if (r.chance(0.15)) {
      // not recovered in time: the recovery deadline passes and the agent is demoted
      this.tick(1000)
      await this.appendDeadlines()
      return
    }
    const rollbackId = this.id('rb')
    this.tick(r.int(5, 300))
    await this.command(proposal, stream, { type: 'StartRollback', rollbackId, executionId }, executor)
    this.tick(r.int(5, 400))
    if (r.chance(0.1)) {
      await this.command(
        proposal,
        stream,
        { type: 'FailRollback', rollbackId, error: 'rollback step timed out' },
        executor,
      )
      const retry = this.id('rb')
      this.tick(r.int(5, 200))
      await this.command(
        proposal,
        stream,
        { type: 'StartRollback', rollbackId: retry, executionId },
        executor,
      )
      this.tick(r.int(5, 200))
      await this.command(
        proposal,
        stream,
        { type: 'CompleteRollback', rollbackId: retry, resourceVersionAfter: this.id('v') },
        executor,
      )
    } else {
      await this.command(
        proposal,
        stream,
        { type: 'CompleteRollback', rollbackId, resourceVersionAfter: this.id('v') },
        executor,
      )
    }
    await this.settle()
  }

  async appendDeadlines(): Promise<void> {
    await this.settle()
    const now = this.clock.now()
    await appendDueNotices(this.store, this.decision.world().deadlines(now.toISOString()), now)
    await this.settle()
  }

  /** A kill switch engaged while allows are outstanding, then released by an admin. */
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
    await this.command(
      killSwitch,
      streams.killSwitch(ref),
      { type: 'Engage', ...ref, reason: 'incident in progress' },
      ADMIN,
    )
    await this.settle()
    for (let i = 0; i < r.int(1, 3); i += 1) await this.lifecycle()
    this.tick(r.int(30, 600))
    await this.command(
      killSwitch,
      streams.killSwitch(ref),
      { type: 'Release', reason: 'incident resolved' },
      ADMIN,
    )
    await this.settle()
  }

  /** Runs until the ledger holds at least `events` events. */
  async generate(events: number): Promise<void> {
    await this.setUp()
    let step = 0
    while ((await this.store.head()).position < events) {
      step += 1
      if (step % 40 === 0) await this.killSwitchEpisode()
      else if (step % 25 === 0) {
        // demoted agents earn their way back
        for (const agentId of this.agents)
          for (const env of ENVIRONMENTS) await this.climb(agentId, env, 'execute')
      } else if (step === 150) {
        const stricter = { ...defaultPolicy(ADMIN, 2), freshnessMaxAgeSeconds: 240, survivalThreshold: 0.8 }
        await this.command(policy, streams.policy(), { type: 'PublishPolicy', policy: stricter }, ADMIN)
        await this.settle()
      } else await this.lifecycle()
      if (step % 10 === 0) await this.appendDeadlines()
    }
    await this.appendDeadlines()
  }
}
