// Every way an agent, a second agent, a lone admin or a misplaced executor tried to talk past the gate, each
// against the real service: none obtains an allow, an execution or a governance change, and each reads why.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Role } from '../../src/auth/tokens.js'
import {
  AdminClient,
  AgentClient,
  AuditorClient,
  ExecutorClient,
  GovernanceApiError,
  type RunOutcome,
} from '../../src/sdk/index.js'
import {
  type Cast,
  eventually,
  failing,
  governed,
  observation,
  passedRollbackTest,
  proposeWithEvidence,
  type RunningService,
  secondsAgo,
  setUpWorld,
  startService,
  survivingSimulation,
} from '../support/service.js'

interface Answer {
  readonly status: number
  readonly body: { error?: string; message?: string; details?: unknown } & Record<string, unknown>
}

describe('earned, not claimed: every attack on the gate gets a clear refusal, never an allow', () => {
  let svc: RunningService
  let cast: Cast
  const answers: Record<string, string> = {}

  /** One request as `sub` with `roles`, the answer as a client reads it. */
  /** the bootstrap token's subject: the first admin of every world here */
  const FIRST_ADMIN = 'bootstrap-admin'

  const call = async (
    sub: string,
    roles: Role[],
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body?: unknown,
    claims: { approvalRoles?: string[] } = {},
  ): Promise<Answer> => {
    const token =
      claims.approvalRoles === undefined
        ? await svc.tokenFor(sub, ...roles)
        : await svc.tokenWith(sub, roles, claims)
    const response = await fetch(`${svc.url}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: (await response.json()) as Answer['body'] }
  }

  /** Asserts a refusal, and keeps what a client read for the closing figures. */
  const refused = (what: string, answer: Answer, status: number, specification?: string) => {
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`)
    assert.equal(typeof answer.body.message, 'string')
    if (specification !== undefined) {
      assert.equal((answer.body.details as { specification?: string }).specification, specification, what)
    }
    answers[what] = `${answer.status} ${answer.body.error}: ${answer.body.message}`
  }

  const headOf = async () =>
    (await new AuditorClient({ baseUrl: svc.url, token: svc.bootstrapToken }).ledgerHead()).position

  before(async () => {
    svc = await startService()
    cast = await setUpWorld(svc)
  })

  after(async () => {
    for (const [what, answer] of Object.entries(answers)) console.log(`attack: ${what} -> ${answer}`)
    await svc?.close()
  })

  it('an agent cannot report state, least of all from the future; the observer is never locked out', async () => {
    const future = {
      ...observation(cast.environment, 'deployment/clock', 'v-forged'),
      observedAt: secondsAgo(-86_399),
    }
    refused(
      'agent posts its own observation',
      await call('agent-e2e', ['agent'], 'POST', '/observations', future),
      403,
    )
    refused(
      'observer posts an observation dated a day ahead',
      await call('observer-1', ['observer'], 'POST', '/observations', future),
      400,
      'observationNotFromTheFuture',
    )
    await cast.observer.observe(observation(cast.environment, 'deployment/clock', 'v-real'))
  })

  it('an agent cannot attest its own simulation or rollback test, and gets no allow without them', async () => {
    const { admin, secondAdmin, agent, observer, approver, environment, tool, identity } = cast
    const resource = 'deployment/self-attested'
    await governed(
      secondAdmin,
      admin.grant({ identity, tool, action: 'scale', resourcePattern: resource, environment }),
    )
    await observer.observe(observation(environment, resource, 'v1'))
    const submitted = await agent.submitProposal({
      executingIdentity: identity,
      tool,
      action: 'scale',
      resource,
      environment,
      plan: { replicas: 9 },
      expectedImpact: 'high',
      snapshot: { version: 'v1' },
    })
    const { proposalId, actionDigest } = submitted
    const { requestId } = await agent.requestSimulation(proposalId, { actionDigest })
    refused(
      'agent posts its own simulation results',
      await call(
        'agent-e2e',
        ['agent'],
        'POST',
        `/proposals/${proposalId}/simulations`,
        survivingSimulation(actionDigest, requestId),
      ),
      403,
    )
    refused(
      'agent posts its own rollback test (testRunId never-ran)',
      await call('agent-e2e', ['agent'], 'POST', `/proposals/${proposalId}/rollback-tests`, {
        ...passedRollbackTest(actionDigest, tool),
        testRunId: 'never-ran',
      }),
      403,
    )
    refused(
      'agent holding the simulator role too posts the results',
      await call(
        'agent-e2e',
        ['agent', 'simulator'],
        'POST',
        `/proposals/${proposalId}/simulations`,
        survivingSimulation(actionDigest, requestId),
      ),
      403,
      'simulatorAttestsSimulation',
    )
    await approver.approve(proposalId, { actionDigest })
    const verdict = await agent.waitForVerdict(proposalId, { timeoutSeconds: 10 })
    await eventually('the verdict after the approval', async () => {
      const v = await agent.currentVerdict(proposalId)
      return v && v.revision > (verdict?.revision ?? 0) - 1 ? v : undefined
    })
    const current = await agent.currentVerdict(proposalId)
    assert.equal(current?.decision, 'block')
    assert.deepEqual(failing(current).sort(), ['rollback', 'survival'])
  })

  it('an agent cannot propose through an identity bound to another agent', async () => {
    const { admin, secondAdmin } = cast
    await admin.registerAgent({ agentId: 'agent-b', owner: 'other-team' })
    await governed(secondAdmin, admin.bind({ principal: 'agent-b', role: 'agent', identity: 'svc-b' }))
    const throughSvcB = (agentId: string) => ({
      agentId,
      executingIdentity: 'svc-b',
      tool: cast.tool,
      action: 'scale',
      resource: 'deployment/b',
      environment: cast.environment,
      plan: { replicas: 1 },
      expectedImpact: 'high',
      snapshot: { version: 'v1' },
    })
    refused(
      "agent A proposes as agent B's identity svc-b",
      await call('agent-e2e', ['agent'], 'POST', '/proposals', throughSvcB('agent-e2e')),
      403,
      'identityBoundToAgent',
    )
    refused(
      'agent A proposes as agent B',
      await call('agent-e2e', ['agent'], 'POST', '/proposals', throughSvcB('agent-b')),
      403,
      'agentProposesAsItself',
    )
  })

  it("an approval's role comes from the token, never from the body", async () => {
    const plan = { replicas: 3 }
    const { proposalId, action } = await proposeWithEvidence(cast, 'deployment/roles', plan)
    const digest = (await cast.agent.getProposal(proposalId)).proposal.actionDigest
    refused(
      "approver claims the 'change-board' role in the body",
      await call('approver-2', ['approver'], 'POST', `/proposals/${proposalId}/approvals`, {
        actionDigest: digest,
        role: 'change-board',
      }),
      403,
      'approvalRoleFromToken',
    )
    const granted = await call(
      'approver-3',
      ['approver'],
      'POST',
      `/proposals/${proposalId}/approvals`,
      { actionDigest: digest, role: 'change-board' },
      { approvalRoles: ['change-board'] },
    )
    assert.equal(granted.status, 201, JSON.stringify(granted.body))
    assert.equal(action.proposalId, proposalId)
  })

  it('executors are bound: another executor cannot report, an approver cannot execute, no verdict demotes no one', async () => {
    const plan = { replicas: 4 }
    const { proposalId, verdict, action, actionDigest } = await proposeWithEvidence(
      cast,
      'deployment/bound',
      plan,
    )

    refused(
      'an executor not bound to the identity starts the execution',
      await call('executor-2', ['executor'], 'POST', `/proposals/${proposalId}/executions`, {
        verdictId: verdict.verdictId,
        actionDigest,
      }),
      403,
    )
    refused(
      'the approver, holding the executor role too, starts what it approved',
      await call('approver-1', ['approver', 'executor'], 'POST', `/proposals/${proposalId}/executions`, {
        verdictId: verdict.verdictId,
        actionDigest,
      }),
      403,
    )
    const started = await cast.executor.reportStart(proposalId, {
      verdictId: verdict.verdictId,
      actionDigest,
    })
    refused(
      "executor 2 reports the success of executor 1's execution",
      await call(
        'executor-2',
        ['executor'],
        'POST',
        `/proposals/${proposalId}/executions/${started.executionId}/success`,
        {
          resourceVersionAfter: 'v2',
        },
      ),
      403,
      'starterReports',
    )
    await cast.executor.reportSuccess(proposalId, started.executionId, { resourceVersionAfter: 'v2' })
    assert.equal(action.proposalId, proposalId)

    // a start citing no verdict: refused, recorded, counted, and the agent keeps its rung
    const other = await proposeWithEvidence(cast, 'deployment/null-verdict', { replicas: 5 })
    const before = await headOf()
    refused(
      'a start citing {verdictId: null}',
      await call(
        `${cast.identity}-runner`,
        ['executor'],
        'POST',
        `/proposals/${other.proposalId}/executions`,
        {
          verdictId: null,
          actionDigest: other.actionDigest,
        },
      ),
      409,
    )
    assert.equal((await headOf()) > before, true, 'the refusal is recorded')
    const agentView = await cast.admin.getAgent('agent-e2e')
    assert.equal(
      agentView.levels[cast.environment]?.level,
      'execute',
      'nobody can walk the agent down the ladder',
    )
  })

  it('one policy admin alone widens nothing: promotions, policies, releases and bindings wait for a second', async () => {
    const { admin, secondAdmin } = cast
    await admin.registerAgent({ agentId: 'agent-lone', owner: 'platform-team' })
    const asked = await new AgentClient({
      baseUrl: svc.url,
      token: await svc.tokenFor('agent-lone', 'agent'),
      agentId: 'agent-lone',
    }).requestPromotion({ environment: cast.environment, to: 'recommend' })
    const once = await admin.approvePromotion('agent-lone', asked.requestId)
    assert.equal(once.outcome, 'approved', 'one admin does not promote')
    refused(
      'the same admin approves the promotion again',
      await call(
        FIRST_ADMIN,
        ['policy-admin', 'auditor'],
        'POST',
        `/agents/agent-lone/promotions/${asked.requestId}/approval`,
        {},
      ),
      403,
      'secondDistinctAdmin',
    )
    const skipped = await call('admin', ['policy-admin'], 'POST', '/agents/agent-lone/promotions', {
      environment: cast.environment,
      to: 'execute',
    })
    assert.equal(skipped.status, 201, JSON.stringify(skipped.body))
    assert.equal(skipped.body.outcome, 'refused')
    answers['an admin asks to promote an agent from observe to execute'] = `refused: ${skipped.body.reason}`

    const {
      publishedAt: _at,
      eventId: _id,
      publishedBy: _by,
      approvedBy: _approved,
      ...draft
    } = (await admin.currentPolicy()) as Awaited<ReturnType<AdminClient['currentPolicy']>> & {
      publishedAt: string
      eventId: string
    }
    const permissive = await admin.publishPolicy({
      ...draft,
      version: 2,
      owner: 'someone-else',
      requirements: Object.fromEntries(
        ['read', 'low', 'medium', 'high', 'critical'].map((impact) => [
          impact,
          { checks: [], approvals: { count: 0, roles: ['approver'] } },
        ]),
      ) as never,
    })
    assert.equal(permissive.status, 'pending', 'a policy that requires nothing waits for a second admin')
    assert.equal((await admin.currentPolicy()).version, 1)
    await secondAdmin.refuseChange(permissive.requestId ?? '', 'requires nothing')

    await admin.engageKillSwitch({ scope: 'tool', target: cast.tool, reason: 'drill' })
    const release = await admin.releaseKillSwitch({ scope: 'tool', target: cast.tool, reason: 'drill over' })
    assert.equal(release.status, 'pending', 'the admin who engaged it cannot release it alone')
    refused(
      'the same admin approves its own release',
      await call(
        FIRST_ADMIN,
        ['policy-admin', 'auditor'],
        'POST',
        `/changes/${release.requestId}/approval`,
        {},
      ),
      403,
      'secondAdminApproves',
    )
    const engagedCount = async () => (await admin.killSwitches()).killSwitches.length
    await eventually('the switch in the decision service', async () =>
      (await engagedCount()) === 1 ? true : undefined,
    )
    await secondAdmin.approveChange(release.requestId ?? '')
    await eventually('the release', async () => ((await engagedCount()) === 0 ? true : undefined))

    const binding = await admin.bind({ principal: 'agent-lone', role: 'agent', identity: cast.identity })
    assert.equal(binding.status, 'pending')
  })

  it('a verdict verifies only for the action it allows: not the same plan on another resource', async () => {
    const plan = { replicas: 6 }
    const { verdict, action } = await proposeWithEvidence(cast, 'deployment/web-a', plan)
    const elsewhere = { ...action, resource: 'database/payments-primary' }
    const outcome: RunOutcome<string> = await cast.executor.runVerified(verdict, elsewhere, async () => 'ran')
    assert.equal(outcome.outcome, 'refused')
    if (outcome.outcome !== 'refused') return
    assert.equal(outcome.reason.reason, 'action-mismatch')
    answers['allow for deployment/web-a run on database/payments-primary'] =
      `SDK refused: ${outcome.reason.message}`
  })

  it('tool and action names cannot collide, and a tool kill switch names one tool', async () => {
    refused(
      'registering aws + s3.delete',
      await call('admin', ['policy-admin'], 'PUT', '/inventory/aws/s3.delete', {
        impact: 'critical',
        reversible: false,
      }),
      400,
    )
    refused(
      'registering aws.s3 + delete',
      await call('admin', ['policy-admin'], 'PUT', '/inventory/aws.s3/delete', {
        impact: 'critical',
        reversible: false,
      }),
      400,
    )
    refused(
      'a tool kill switch on aws.s3',
      await call('admin', ['policy-admin'], 'POST', '/kill-switches', {
        scope: 'tool',
        target: 'aws.s3',
        reason: 'x',
      }),
      400,
    )
  })

  it('the SDK surfaces each refusal as a GovernanceApiError a client can act on', async () => {
    const lone = new ExecutorClient({ baseUrl: svc.url, token: await svc.tokenFor('executor-9', 'executor') })
    const { proposalId, verdict, actionDigest } = await proposeWithEvidence(cast, 'deployment/sdk', {
      replicas: 7,
    })
    await assert.rejects(
      lone.reportStart(proposalId, { verdictId: verdict.verdictId, actionDigest }),
      (error: unknown) => {
        assert.ok(error instanceof GovernanceApiError)
        assert.equal(error.status, 403)
        assert.match(error.message, /not bound to run as/)
        return true
      },
    )
    assert.ok(new AdminClient({ baseUrl: svc.url, token: svc.bootstrapToken }))
  })
})
