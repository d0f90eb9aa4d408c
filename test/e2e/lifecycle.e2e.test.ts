import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  type ActionIdentity,
  AdminClient,
  AgentClient,
  ApproverClient,
  AuditorClient,
  actionDigestOf,
  ExecutorClient,
  GovernanceApiError,
  ObserverClient,
  planHashOf,
  SimulatorClient,
  type VerdictView,
} from '../../src/sdk/index.js'
import {
  climb,
  eventually,
  failing,
  governed,
  observation,
  POLICY_OWNER,
  passedRollbackTest,
  policyV,
  type RunningService,
  startService,
  survivingSimulation,
} from '../support/service.js'

const ENV = 'production'
const TOOL = 'kubectl'
const AGENT = 'agent-ops'
const IDENTITY = 'deploy-bot'
/** the executor principal, bound by two policy admins to run as IDENTITY */
const EXECUTOR = 'deploy-bot-runner'

/** The story of the design, told through the SDK against the real service over HTTP. */
describe('the lifecycle of a production action, end to end', () => {
  let svc: RunningService
  let admin: AdminClient
  let secondAdmin: AdminClient
  let agent: AgentClient
  let observer: ObserverClient
  let simulator: SimulatorClient
  let approver: ApproverClient
  let executor: ExecutorClient
  let auditor: AuditorClient
  const figures: Record<string, unknown> = {}
  const tokensUsed: string[] = []

  before(async () => {
    svc = await startService()
    const as = async (sub: string, ...roles: Parameters<RunningService['tokenFor']>[1][]) => {
      const token = await svc.tokenFor(sub, ...roles)
      tokensUsed.push(token)
      return { baseUrl: svc.url, token }
    }
    admin = new AdminClient({ baseUrl: svc.url, token: svc.bootstrapToken })
    secondAdmin = new AdminClient(await as('admin-2', 'policy-admin'))
    agent = new AgentClient({ ...(await as(AGENT, 'agent')), agentId: AGENT })
    observer = new ObserverClient(await as('observer-1', 'observer'))
    simulator = new SimulatorClient(await as('simulator-1', 'simulator'))
    approver = new ApproverClient(await as('approver-1', 'approver'))
    executor = new ExecutorClient(await as(EXECUTOR, 'executor'))
    auditor = new AuditorClient(await as('auditor-1', 'auditor'))

    // the first policy of an empty ledger takes one admin; everything that widens authority takes two
    const published = await admin.publishPolicy(policyV(1))
    assert.equal(published.status, 'applied')
    const registered = await admin.registerToolAction({
      tool: TOOL,
      action: 'scale',
      impact: 'high',
      reversible: true,
    })
    assert.equal(registered.status, 'pending', 'a first registration below critical widens authority')
    await governed(secondAdmin, Promise.resolve(registered))
    await admin.registerAgent({ agentId: AGENT, owner: 'platform-team', description: 'scales deployments' })
    await governed(secondAdmin, admin.bind({ principal: AGENT, role: 'agent', identity: IDENTITY }))
    await governed(secondAdmin, admin.bind({ principal: EXECUTOR, role: 'executor', identity: IDENTITY }))
  })

  after(async () => {
    console.log(`e2e lifecycle figures: ${JSON.stringify(figures)}`)
    await svc?.close()
  })

  const plan = { deployment: 'web', replicas: 5 }
  const proposalInput = (resource: string, snapshot: string, p: Record<string, unknown>) => ({
    executingIdentity: IDENTITY,
    tool: TOOL,
    action: 'scale',
    resource,
    environment: ENV,
    plan: p,
    expectedImpact: 'high' as const,
    snapshot: { version: snapshot },
    description: `scale ${resource}`,
  })
  /** The action a proposal names, as the executor states it before running it. */
  const actionOf = (proposalId: string, resource: string, p: Record<string, unknown>): ActionIdentity => ({
    proposalId,
    tool: TOOL,
    action: 'scale',
    resource,
    environment: ENV,
    executingIdentity: IDENTITY,
    plan: p,
  })
  let first: { proposalId: string; planHash: string; actionDigest: string }
  let verdict: VerdictView

  it('blocks an agent at recommend on authority, naming the level it holds', async () => {
    await climb([admin, secondAdmin], agent, ENV, ['recommend'])
    first = await agent.submitProposal(proposalInput('deployment/web', 'v1', plan))
    assert.equal(first.planHash, planHashOf(plan), 'the ledger computes the plan hash from the plan')
    assert.equal(
      first.actionDigest,
      actionDigestOf(actionOf(first.proposalId, 'deployment/web', plan)),
      'and the digest of the whole action, which evidence binds to',
    )
    verdict = (await agent.waitForVerdict(first.proposalId, { timeoutSeconds: 10 })) as VerdictView
    assert.equal(verdict.decision, 'block')
    const authority = verdict.checks.find((c) => c.check === 'authority')
    assert.equal(authority?.status, 'fail')
    assert.match(authority?.reason ?? '', /holds 'recommend' in production/)
  })

  it('refuses and records a promotion that skips a rung', async () => {
    const skip = await agent.requestPromotion({ environment: ENV, to: 'execute' })
    assert.equal(skip.outcome, 'refused')
    assert.match(skip.reason ?? '', /one rung at a time/)
    assert.deepEqual(
      skip.events.map((e) => e.type),
      ['PromotionRefused'],
    )
    const authority = await agent.getAgent(AGENT)
    assert.equal(authority.levels[ENV]?.level, 'recommend', 'the refused request changed nothing')
    assert.equal(authority.refusedPromotions, 1)
  })

  it('after promotion to execute, the verdict changes with each piece of evidence, failing checks shrinking', async () => {
    await climb([admin, secondAdmin], agent, ENV, ['simulate', 'execute'])
    // each promotion may bring its own verdict (at simulate, authority still fails): wait for the one at execute
    for (let rung = 0; rung < 2 && (rung === 0 || failing(verdict).includes('authority')); rung += 1) {
      verdict = (await agent.waitForVerdict(first.proposalId, {
        afterRevision: verdict.revision,
        timeoutSeconds: 10,
      })) as VerdictView
    }
    const steps: string[][] = [failing(verdict)]
    assert.deepEqual(steps[0], ['scopedPermission', 'freshState', 'survival', 'rollback', 'lineage'])

    // each piece comes from the principal entitled to attest it, bound to the action digest
    const evidence: [string, () => Promise<unknown>][] = [
      [
        'scopedPermission',
        // a grant on a high-impact action widens authority: it applies once a second admin approves it
        () =>
          governed(
            secondAdmin,
            admin.grant({
              identity: IDENTITY,
              tool: TOOL,
              action: 'scale',
              resourcePattern: 'deployment/web',
              environment: ENV,
            }),
          ),
      ],
      ['freshState', () => observer.observe(observation(ENV, 'deployment/web', 'v1'))],
      [
        'survival',
        async () => {
          const { requestId } = await agent.requestSimulation(first.proposalId, {
            actionDigest: first.actionDigest,
          })
          await simulator.recordSimulation(
            first.proposalId,
            survivingSimulation(first.actionDigest, requestId),
          )
        },
      ],
      [
        'rollback',
        () => simulator.recordRollbackTest(first.proposalId, passedRollbackTest(first.actionDigest, TOOL)),
      ],
      ['lineage', () => approver.approve(first.proposalId, { actionDigest: first.actionDigest })],
    ]
    for (const [check, attach] of evidence) {
      const before = failing(verdict)
      await attach()
      // a step may bring more than one verdict (a simulation request, then its results): wait for the check
      do {
        verdict = (await agent.waitForVerdict(first.proposalId, {
          afterRevision: verdict.revision,
          timeoutSeconds: 10,
        })) as VerdictView
        assert.ok(verdict, `a new verdict after the ${check} evidence`)
      } while (failing(verdict).includes(check))
      const now = failing(verdict)
      steps.push(now)
      assert.deepEqual(
        now,
        before.filter((c) => c !== check),
        `after ${check} evidence only ${check} stops failing`,
      )
      assert.equal(verdict.checks.find((c) => c.check === check)?.status, 'pass', `${check} now passes`)
    }
    assert.equal(verdict.decision, 'allow')
    assert.equal(verdict.policyVersion, 1)
    assert.equal(verdict.resourceVersion, 'v1')
    assert.equal(verdict.actionDigest, first.actionDigest)
    figures.failingChecksPerRevision = steps.map((s) => s.length)
    figures.revisionsToAllow = verdict.revision
  })

  it('the executor verifies the allow and runs it, reporting start and success', async () => {
    const action = actionOf(first.proposalId, 'deployment/web', plan)
    const checked = await executor.verifyVerdict(verdict, { action, resourceVersion: 'v1' })
    assert.equal(checked.ok, true, checked.ok ? '' : checked.message)
    let ran = 0
    const run = await executor.runVerified(
      verdict,
      action,
      async ({ verdict: verified }) => {
        ran++
        assert.equal(verified.verdictId, verdict.verdictId)
        return { version: 'v2' }
      },
      { resourceVersion: 'v1', versionAfter: (r: { version: string }) => r.version },
    )
    assert.equal(run.outcome, 'succeeded')
    assert.equal(ran, 1)
    const view = await executor.getProposal(first.proposalId)
    assert.equal(view.status, 'succeeded')
    assert.equal(view.violation, null, 'an execution that cites a valid allow is no violation')
  })

  let second: { proposalId: string; planHash: string; actionDigest: string }
  const plan2 = { deployment: 'api', replicas: 4 }

  /** Submits a proposal on deployment/api; every piece of evidence comes from who may attest it. */
  const allowOnApi = async () => {
    await governed(
      secondAdmin,
      admin.grant({
        identity: IDENTITY,
        tool: TOOL,
        action: 'scale',
        resourcePattern: 'deployment/api',
        environment: ENV,
      }),
    )
    await observer.observe(observation(ENV, 'deployment/api', 'a1'))
    const submitted = await agent.submitProposal(proposalInput('deployment/api', 'a1', plan2))
    const { proposalId, actionDigest } = submitted
    const { requestId } = await agent.requestSimulation(proposalId, { actionDigest })
    await simulator.recordSimulation(proposalId, survivingSimulation(actionDigest, requestId))
    await simulator.recordRollbackTest(proposalId, passedRollbackTest(actionDigest, TOOL))
    await approver.approve(proposalId, { actionDigest })
    const allow = await eventually('an allow on deployment/api', async () => {
      const v = await agent.currentVerdict(proposalId)
      return v?.decision === 'allow' ? v : undefined
    })
    return { submitted, allow }
  }

  it('a kill switch revokes another allow; the executor and the gate then refuse it; release takes two admins', async () => {
    const { submitted, allow } = await allowOnApi()
    second = submitted
    const action = actionOf(second.proposalId, 'deployment/api', plan2)
    assert.equal((await executor.verifyVerdict(allow, { action })).ok, true)

    await admin.engageKillSwitch({ scope: 'tool', target: TOOL, reason: 'a bad rollout across the fleet' })
    const revoked = await eventually('the revocation', async () => {
      const v = await agent.currentVerdict(second.proposalId)
      return v?.revoked ? v : undefined
    })
    assert.equal(revoked.verdictId, allow.verdictId, 'the allow itself is revoked by an event')
    const refused = await executor.verifyVerdict(allow, { action })
    assert.equal(refused.ok ? null : refused.reason, 'revoked')
    // citing the revoked allow anyway: the execution gate refuses it and records the refusal
    const atGate = await executor
      .reportStart(second.proposalId, { verdictId: allow.verdictId, actionDigest: second.actionDigest })
      .then(
        () => null,
        (error: unknown) => error,
      )
    assert.ok(atGate instanceof GovernanceApiError)
    assert.equal(atGate.status, 409)
    assert.match(atGate.message, /revoked/)
    const engaged = await admin.killSwitches()
    assert.deepEqual(
      engaged.killSwitches.map((k) => [k.scope, k.target, k.engagedBy]),
      [['tool', TOOL, 'bootstrap-admin']],
    )
    const release = await admin.releaseKillSwitch({
      scope: 'tool',
      target: TOOL,
      reason: 'the rollout was stopped',
    })
    assert.equal(release.status, 'pending', 'releasing a kill switch takes a second policy admin')
    assert.equal((await admin.killSwitches()).killSwitches.length, 1, 'still engaged while pending')
    await secondAdmin.approveChange(release.requestId ?? '')
  })

  it('an execution fails and is rolled back; the audit answers what, who and how fast', async () => {
    const current = await eventually('a new allow after the release', async () => {
      const v = await agent.currentVerdict(second.proposalId)
      return v?.decision === 'allow' && !v.revoked ? v : undefined
    })
    const run = await executor.runVerified(
      current,
      actionOf(second.proposalId, 'deployment/api', plan2),
      async () => {
        throw new Error('the api pods crash-looped after scaling')
      },
    )
    assert.equal(run.outcome, 'failed')
    if (run.outcome !== 'failed') return
    const rollback = await executor.startRollback(second.proposalId, { executionId: run.executionId })
    await executor.completeRollback(second.proposalId, rollback.rollbackId, { resourceVersionAfter: 'a1' })
    assert.equal((await executor.getProposal(second.proposalId)).status, 'recovered')

    const audit = await eventually('the recovery in the audit view', async () => {
      const a = await auditor.auditAction(second.proposalId)
      return a.howFast.recoveredAt === null ? undefined : a
    })
    assert.deepEqual(audit.what, {
      tool: TOOL,
      action: 'scale',
      resource: 'deployment/api',
      environment: ENV,
      plan: plan2,
      planHash: second.planHash,
      actionDigest: second.actionDigest,
      resourceVersionBefore: 'a1',
      resourceVersionAfter: 'a1',
    })
    assert.equal(audit.who.agentId, AGENT)
    assert.equal(audit.who.executingIdentity, IDENTITY)
    assert.equal(audit.who.executor, EXECUTOR)
    assert.deepEqual(
      audit.who.approvers.map((a) => [a.approver, a.role, a.actionDigest]),
      [['approver-1', 'approver', second.actionDigest]],
    )
    assert.equal(audit.who.policyVersion, 1)
    assert.equal(audit.who.policyOwner, POLICY_OWNER)
    assert.deepEqual(
      audit.who.killSwitchActors.map((k) => [k.actor, k.action]),
      [
        ['bootstrap-admin', 'engaged'],
        ['admin-2', 'released'],
      ],
      'the release is recorded under the second admin, whose approval made it take effect',
    )
    assert.equal(audit.howFast.rollbackExpectedSeconds, 120)
    assert.ok(audit.howFast.failedAt !== null && audit.howFast.recoveredAt !== null)
    const ttr = audit.howFast.timeToRecoverySeconds
    assert.ok(ttr !== null && ttr >= 0 && ttr < 60, `time to recovery ${ttr} s`)
    const types = audit.timeline.map((e) => e.type)
    for (const type of [
      'ProposalSubmitted',
      'SimulationRequested',
      'SimulationRecorded',
      'VerdictIssued',
      'VerdictRevoked',
      'ExecutionRefused',
      'ExecutionStarted',
      'ExecutionFailed',
      'RollbackStarted',
      'RollbackCompleted',
    ]) {
      assert.ok(types.includes(type), `the timeline shows ${type}`)
    }
    const positions = audit.timeline.map((e) => e.position)
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
      'the timeline is in ledger order',
    )
    assert.ok(audit.timeline.every((e) => /^[0-9a-f]{64}$/.test(e.hash) && e.eventId.length > 0))
    figures.timeToRecoverySeconds = ttr
    figures.timelineEvents = audit.timeline.length
  })

  it('the headline metrics count the blocks before execution and the recovery; the ledger verifies', async () => {
    const metrics = await eventually('the recovery in the metrics', async () => {
      const m = await auditor.headlineMetrics<{
        totals: {
          unsafeBlocked: { count: number; byHow: Record<string, number>; byCheck: Record<string, number> }
          actionsEnded: { count: number; byEnd: Record<string, number> }
          timeToRecovery: { overall: { count: number; p50: number | null; max: number | null } }
          refusedAtGate: { count: number; byRule: Record<string, number> }
          failedDespiteAllow: number
        }
      }>({ window: 'hour' })
      return m.totals.timeToRecovery.overall.count >= 1 ? m : undefined
    })
    // both proposals were blocked until their evidence arrived, then executed: only the refused start counts
    assert.equal(metrics.totals.unsafeBlocked.count, 1, 'the start citing a revoked allow')
    assert.deepEqual(metrics.totals.unsafeBlocked.byHow, { 'refused-at-gate': 1 })
    assert.equal(metrics.totals.actionsEnded.byEnd.executed, 2)
    assert.equal(metrics.totals.refusedAtGate.count, 1, 'the start citing a revoked allow')
    assert.equal(metrics.totals.refusedAtGate.byRule.citesLiveAllow, 1)
    assert.equal(metrics.totals.failedDespiteAllow, 1)
    const verification = await auditor.verifyLedger()
    assert.equal(verification.ok, true)
    assert.equal(verification.firstFault, null)
    figures.unsafeBlocked = metrics.totals.unsafeBlocked.count
    figures.recoveryP50Seconds = metrics.totals.timeToRecovery.overall.p50
    figures.ledgerEventsVerified = verification.checked
  })

  it('sends an Idempotency-Key with every command: a retry returns the first answer, a new command is new', async () => {
    const agent2 = { agentId: 'agent-retry', owner: 'platform-team' }
    const first = await admin.registerAgent(agent2, { idempotencyKey: 'register-agent-retry' })
    const retried = await admin.registerAgent(agent2, { idempotencyKey: 'register-agent-retry' })
    assert.equal(first.duplicate, false)
    assert.equal(retried.duplicate, true)
    assert.deepEqual(retried.events, first.events)
    // without a key the SDK makes a fresh one, so the same body again is a new command, refused as a conflict
    const again = await admin.registerAgent(agent2).then(
      () => null,
      (error: unknown) => error,
    )
    assert.ok(again instanceof GovernanceApiError)
    assert.equal(again.status, 409)
    assert.equal(again.code, 'conflict')
    assert.equal(typeof again.message, 'string')
  })

  it('logs every request and no token: the bootstrap token is in its file, the banner names the file only', async () => {
    const output = svc.output()
    assert.match(output, /"msg":"request completed"/)
    const occurrences = (text: string) => output.split(text).length - 1
    assert.equal(occurrences(svc.bootstrapToken.split('.')[2] ?? svc.bootstrapToken), 0)
    assert.equal(occurrences(join(svc.dataDir, 'bootstrap-admin.token')), 1)
    assert.equal(tokensUsed.length, 7)
    // the signature part alone would be enough to notice a leak, whatever else was redacted
    for (const token of tokensUsed) assert.equal(occurrences(token.split('.')[2] ?? token), 0)
  })
})
