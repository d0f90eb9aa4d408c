import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  AdminClient,
  AgentClient,
  ApproverClient,
  AuditorClient,
  ExecutorClient,
  GovernanceApiError,
  planHashOf,
  type VerdictView,
} from '../../src/sdk/index.js'
import {
  climb,
  eventually,
  failing,
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

/** The story of DESIGN.md, told through the SDK against the real service over HTTP. */
describe('the lifecycle of a production action, end to end', () => {
  let svc: RunningService
  let admin: AdminClient
  let agent: AgentClient
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
    agent = new AgentClient({ ...(await as(AGENT, 'agent')), agentId: AGENT })
    approver = new ApproverClient(await as('approver-1', 'approver'))
    executor = new ExecutorClient(await as(IDENTITY, 'executor'))
    auditor = new AuditorClient(await as('auditor-1', 'auditor'))

    await admin.publishPolicy(policyV(1))
    await admin.registerToolAction({ tool: TOOL, action: 'scale', impact: 'high', reversible: true })
    await admin.registerAgent({ agentId: AGENT, owner: 'platform-team', description: 'scales deployments' })
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
  let first: { proposalId: string; planHash: string }
  let verdict: VerdictView

  it('blocks an agent at recommend on authority, naming the level it holds', async () => {
    await climb(admin, agent, ENV, ['recommend'])
    first = await agent.submitProposal(proposalInput('deployment/web', 'v1', plan))
    assert.equal(first.planHash, planHashOf(plan), 'the ledger computes the plan hash from the plan')
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
    await climb(admin, agent, ENV, ['simulate', 'execute'])
    // each promotion may bring its own verdict (at simulate, authority still fails): wait for the one at execute
    for (let rung = 0; rung < 2 && (rung === 0 || failing(verdict).includes('authority')); rung += 1) {
      verdict = (await agent.waitForVerdict(first.proposalId, {
        afterRevision: verdict.revision,
        timeoutSeconds: 10,
      })) as VerdictView
    }
    const steps: string[][] = [failing(verdict)]
    assert.deepEqual(steps[0], ['scopedPermission', 'freshState', 'survival', 'rollback', 'lineage'])

    const evidence: [string, () => Promise<unknown>][] = [
      [
        'scopedPermission',
        () =>
          admin.grant({
            identity: IDENTITY,
            tool: TOOL,
            action: 'scale',
            resourcePattern: 'deployment/web',
            environment: ENV,
          }),
      ],
      ['freshState', () => agent.observe(observation(ENV, 'deployment/web', 'v1'))],
      ['survival', () => agent.attachSimulation(first.proposalId, survivingSimulation(first.planHash))],
      [
        'rollback',
        () => agent.attachRollbackTest(first.proposalId, passedRollbackTest(first.planHash, TOOL)),
      ],
      ['lineage', () => approver.approve(first.proposalId, { planHash: first.planHash })],
    ]
    for (const [check, attach] of evidence) {
      const before = failing(verdict)
      await attach()
      verdict = (await agent.waitForVerdict(first.proposalId, {
        afterRevision: verdict.revision,
        timeoutSeconds: 10,
      })) as VerdictView
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
    figures.failingChecksPerRevision = steps.map((s) => s.length)
    figures.revisionsToAllow = verdict.revision
  })

  it('the executor verifies the allow and runs it, reporting start and success', async () => {
    const checked = await executor.verifyVerdict(verdict, {
      planHash: planHashOf(plan),
      resourceVersion: 'v1',
    })
    assert.equal(checked.ok, true, checked.ok ? '' : checked.message)
    let ran = 0
    const run = await executor.runVerified(
      verdict,
      plan,
      async ({ verdict: verified }) => {
        ran++
        assert.equal(verified.verdictId, verdict.verdictId)
        return { version: 'v2' }
      },
      { resourceVersion: 'v1', versionAfter: (r) => r.version },
    )
    assert.equal(run.outcome, 'succeeded')
    assert.equal(ran, 1)
    const view = await executor.getProposal(first.proposalId)
    assert.equal(view.status, 'succeeded')
    assert.equal(view.violation, null, 'an execution that cites a valid allow is no violation')
  })

  let second: { proposalId: string; planHash: string }
  const plan2 = { deployment: 'api', replicas: 4 }

  /** Submits a proposal on deployment/api and attaches everything it needs for an allow. */
  const allowOnApi = async () => {
    await admin.grant({
      identity: IDENTITY,
      tool: TOOL,
      action: 'scale',
      resourcePattern: 'deployment/api',
      environment: ENV,
    })
    await agent.observe(observation(ENV, 'deployment/api', 'a1'))
    const submitted = await agent.submitProposal(proposalInput('deployment/api', 'a1', plan2))
    await agent.attachSimulation(submitted.proposalId, survivingSimulation(submitted.planHash))
    await agent.attachRollbackTest(submitted.proposalId, passedRollbackTest(submitted.planHash, TOOL))
    await approver.approve(submitted.proposalId, { planHash: submitted.planHash })
    const allow = await eventually('an allow on deployment/api', async () => {
      const v = await agent.currentVerdict(submitted.proposalId)
      return v?.decision === 'allow' ? v : undefined
    })
    return { submitted, allow }
  }

  it('a kill switch revokes another allow, and the executor then refuses it', async () => {
    const { submitted, allow } = await allowOnApi()
    second = submitted
    assert.equal((await executor.verifyVerdict(allow, { planHash: second.planHash })).ok, true)

    await admin.engageKillSwitch({ scope: 'tool', target: TOOL, reason: 'a bad rollout across the fleet' })
    const revoked = await eventually('the revocation', async () => {
      const v = await agent.currentVerdict(second.proposalId)
      return v?.revoked ? v : undefined
    })
    assert.equal(revoked.verdictId, allow.verdictId, 'the allow itself is revoked by an event')
    const refused = await executor.verifyVerdict(allow, { planHash: second.planHash })
    assert.equal(refused.ok ? null : refused.reason, 'revoked')
    const engaged = await admin.killSwitches()
    assert.deepEqual(
      engaged.killSwitches.map((k) => [k.scope, k.target, k.engagedBy]),
      [['tool', TOOL, 'bootstrap-admin']],
    )
    await admin.releaseKillSwitch({ scope: 'tool', target: TOOL, reason: 'the rollout was stopped' })
  })

  it('an execution fails and is rolled back; the audit answers what, who and how fast', async () => {
    const current = await eventually('a new allow after the release', async () => {
      const v = await agent.currentVerdict(second.proposalId)
      return v?.decision === 'allow' && !v.revoked ? v : undefined
    })
    const run = await executor.runVerified(current, plan2, async () => {
      throw new Error('the api pods crash-looped after scaling')
    })
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
      resourceVersionBefore: 'a1',
      resourceVersionAfter: 'a1',
    })
    assert.equal(audit.who.agentId, AGENT)
    assert.equal(audit.who.executingIdentity, IDENTITY)
    assert.equal(audit.who.executor, IDENTITY)
    assert.deepEqual(
      audit.who.approvers.map((a) => [a.approver, a.planHash]),
      [['approver-1', second.planHash]],
    )
    assert.equal(audit.who.policyVersion, 1)
    assert.equal(audit.who.policyOwner, POLICY_OWNER)
    assert.deepEqual(
      audit.who.killSwitchActors.map((k) => [k.actor, k.action]),
      [
        ['bootstrap-admin', 'engaged'],
        ['bootstrap-admin', 'released'],
      ],
    )
    assert.equal(audit.howFast.rollbackExpectedSeconds, 120)
    assert.ok(audit.howFast.failedAt !== null && audit.howFast.recoveredAt !== null)
    const ttr = audit.howFast.timeToRecoverySeconds
    assert.ok(ttr !== null && ttr >= 0 && ttr < 60, `time to recovery ${ttr} s`)
    const types = audit.timeline.map((e) => e.type)
    for (const type of [
      'ProposalSubmitted',
      'VerdictIssued',
      'VerdictRevoked',
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
          unsafeBlocked: { count: number; byCheck: Record<string, number> }
          timeToRecovery: { overall: { count: number; p50: number | null; max: number | null } }
          failedDespiteAllow: number
        }
      }>({ window: 'hour' })
      return m.totals.timeToRecovery.overall.count >= 1 ? m : undefined
    })
    assert.ok(metrics.totals.unsafeBlocked.count >= 2, 'both proposals were blocked before they were allowed')
    assert.ok((metrics.totals.unsafeBlocked.byCheck.authority ?? 0) >= 1)
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

  it('logs every request and no token: the bootstrap token appears once, in the first-start banner only', async () => {
    const output = svc.output()
    assert.match(output, /"msg":"request completed"/)
    const occurrences = (text: string) => output.split(text).length - 1
    assert.equal(occurrences(svc.bootstrapToken), 1)
    assert.equal(tokensUsed.length, 4)
    // the signature part alone would be enough to notice a leak, whatever else was redacted
    for (const token of tokensUsed) assert.equal(occurrences(token.split('.')[2] ?? token), 0)
  })
})
