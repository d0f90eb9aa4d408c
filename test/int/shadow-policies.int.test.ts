import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { DataOf, PolicyDraft } from '../../src/domain/events.js'
import { AdminClient } from '../../src/sdk/index.js'
import {
  expectError,
  governed,
  proposalBody,
  rollbackTestOf,
  SEED,
  type World as SeededWorld,
  seedPolicy,
  seedWorld,
  simulated,
  startTestApi,
  type TestApi,
} from '../support/api.js'
import { promtoolAccepts } from '../support/promtool.js'

/** The seed policy with high impact needing no approval (lineage not required): it allows what v1 blocks. */
const noApprovalForHigh = (version: number): PolicyDraft => {
  const policy = seedPolicy(version)
  return {
    ...policy,
    requirements: {
      ...policy.requirements,
      high: {
        checks: policy.requirements.high.checks.filter((c) => c !== 'lineage'),
        approvals: { count: 0, roles: ['approver'] },
      },
    },
  }
}

describe('shadow policies over HTTP', () => {
  let api: TestApi
  let world: SeededWorld
  /** agent-1's high-impact proposal with every piece of evidence but an approval: blocked on lineage by v1 */
  let blocked: { proposalId: string; actionDigest: string }
  const admin = () => api.as(SEED.admin, 'policy-admin')
  const secondAdmin = () => api.as(SEED.secondAdmin, 'policy-admin')
  const auditor = () => api.as('auditor-1', 'auditor')
  const agent = () => api.as('agent-1', 'agent')

  /** the ledger and the shadow decisions, following it as the service runs them, caught up */
  const settle = async () => {
    await api.settle()
    for (let waited = 0; api.runtime.shadow.position < (await api.head()); waited += 1) {
      if (waited > 500) throw new Error('the shadow decisions do not follow the ledger')
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  const shadowMetrics = async () => {
    await settle()
    const r = await auditor().get('/v1/metrics/headline')
    assert.equal(r.statusCode, 200, r.body)
    return r.json().shadowPolicy
  }
  const verdictsOf = async (proposalId: string) =>
    (await api.runtime.store.readStream(`proposal-${proposalId}`))
      .filter((e) => e.type === 'VerdictIssued')
      .map((e) => e.data as DataOf<'VerdictIssued'>)
  const policyStream = async () => (await api.runtime.store.readStream('policy')).map((e) => e.type)

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
    const submitted = await agent().post('/v1/proposals', proposalBody(world, { replicas: 4 }))
    assert.equal(submitted.statusCode, 201, submitted.body)
    blocked = submitted.json()
    await simulated(api, 'agent-1', blocked.proposalId, blocked.actionDigest)
    const tested = await api
      .as(SEED.simulator, 'simulator')
      .post(
        `/v1/proposals/${blocked.proposalId}/rollback-tests`,
        rollbackTestOf(blocked.actionDigest, 'run-shadow'),
      )
    assert.equal(tested.statusCode, 201, tested.body)
    await settle()
    const last = (await verdictsOf(blocked.proposalId)).at(-1)
    assert.equal(last?.decision, 'block')
    assert.ok(last?.checks.some((c) => c.check === 'lineage' && c.status === 'fail'))
  })
  after(() => api.close())

  test('a lone policy admin cannot put a shadow policy in force; an agent, an approver or an auditor cannot at all', async () => {
    const requested = await admin().post('/v1/policies/shadow', noApprovalForHigh(world.policyVersion + 1))
    assert.equal(requested.statusCode, 202, requested.body)
    const { requestId, widens } = requested.json()
    assert.match(widens, /shadow policy/)
    // the requester approving its own change is refused, and so is every other role
    expectError(await admin().post(`/v1/changes/${requestId}/approval`, {}), 403, 'forbidden')
    for (const [sub, role] of [
      ['agent-1', 'agent'],
      [SEED.approver, 'approver'],
      ['auditor-1', 'auditor'],
    ] as const) {
      const other = api.as(sub, role)
      expectError(await other.post(`/v1/changes/${requestId}/approval`, {}), 403, 'forbidden')
      expectError(
        await other.post('/v1/policies/shadow', noApprovalForHigh(world.policyVersion + 1)),
        403,
        'forbidden',
      )
    }
    expectError(await auditor().get('/v1/policies/shadow'), 404, 'not-found')
    assert.ok(!(await policyStream()).includes('ShadowPolicyPublished'))
    assert.equal(await shadowMetrics(), null)
    const refused = await admin().post(`/v1/changes/${requestId}/refusal`, { reason: 'asked alone' })
    assert.equal(refused.statusCode, 201, refused.body)
  })

  test('a shadow policy that would allow what the live one blocks counts the flip, and never produces an allow', async () => {
    const version = world.policyVersion + 1
    await governed(api, 'shadow policy', (a) => a.post('/v1/policies/shadow', noApprovalForHigh(version)))
    assert.deepEqual((await policyStream()).slice(-1), ['ShadowPolicyPublished'])
    const counts = await shadowMetrics()
    assert.equal(counts.version, version)
    assert.equal(counts.blockToAllow, 1)
    assert.equal(counts.allowToBlock, 0)
    assert.deepEqual(counts.byCheck, { lineage: { allowToBlock: 0, blockToAllow: 1 } })
    assert.deepEqual(counts.byAgent, { 'agent-1': { allowToBlock: 0, blockToAllow: 1 } })
    const view = (await admin().get('/v1/policies/shadow')).json()
    assert.equal(view.policy.version, version)
    assert.equal(view.policy.approvedBy, SEED.secondAdmin)
    assert.deepEqual(
      view.flips.map((f: { proposalId: string; recorded: string; counterfactual: string }) => [
        f.proposalId,
        f.recorded,
        f.counterfactual,
      ]),
      [[blocked.proposalId, 'block', 'allow']],
    )
    // new evidence is decided beside the live policy too: still blocked live, still a would-flip
    const observed = await api.as(SEED.observer, 'observer').post('/v1/observations', {
      ...world.observation,
      observedAt: new Date().toISOString(),
    })
    assert.equal(observed.statusCode, 201, observed.body)
    assert.equal((await shadowMetrics()).blockToAllow, 1)
    // the ledger never holds an allow for it, and the gate refuses a start on its block
    const verdicts = await verdictsOf(blocked.proposalId)
    assert.ok(verdicts.length > 0)
    assert.ok(verdicts.every((v) => v.decision === 'block' && v.policyVersion === world.policyVersion))
    const started = await api
      .as(SEED.executor, 'executor')
      .post(`/v1/proposals/${blocked.proposalId}/executions`, {
        verdictId: verdicts.at(-1)?.verdictId ?? null,
        actionDigest: blocked.actionDigest,
      })
    expectError(started, 409, 'conflict')
    const stream = await api.runtime.store.readStream(`proposal-${blocked.proposalId}`)
    assert.ok(stream.some((e) => e.type === 'ExecutionRefused'))
    assert.ok(!stream.some((e) => e.type === 'ExecutionStarted'))
    // on Prometheus, as gauges promtool accepts
    const text = (await auditor().get('/metrics')).body
    assert.match(
      text,
      new RegExp(
        `governance_shadow_policy_would_flip\\{version="${version}",direction="block_to_allow"\\} 1`,
      ),
    )
    assert.match(
      text,
      new RegExp(
        `governance_shadow_policy_would_flip\\{version="${version}",direction="allow_to_block"\\} 0`,
      ),
    )
    promtoolAccepts(text)
  })

  test('one shadow at a time, and only the next version', async () => {
    const version = world.policyVersion + 1
    const other = { ...noApprovalForHigh(version), verdictTtlSeconds: 60 }
    expectError(await admin().post('/v1/policies/shadow', other), 409, 'conflict')
    expectError(await admin().post('/v1/policies/shadow', noApprovalForHigh(version + 1)), 409, 'conflict')
  })

  test('promotion publishes its version live through two admins: verdicts are decided under it and the shadow ends', async () => {
    const version = world.policyVersion + 1
    const sdk = new AdminClient({
      baseUrl: 'http://ledger.test',
      token: await api.tokenFor(SEED.admin, 'policy-admin'),
      fetch: api.fetch,
    })
    const answer = await sdk.publishPolicy(noApprovalForHigh(version))
    assert.equal(answer.status, 'pending')
    const approved = await secondAdmin().post(`/v1/changes/${answer.requestId}/approval`, {})
    assert.equal(approved.statusCode, 201, approved.body)
    assert.deepEqual((await policyStream()).slice(-2), ['PolicyPublished', 'ShadowPolicyPromoted'])
    assert.equal(await shadowMetrics(), null)
    expectError(await auditor().get('/v1/policies/shadow'), 404, 'not-found')
    const last = (await verdictsOf(blocked.proposalId)).at(-1)
    assert.equal(last?.decision, 'allow')
    assert.equal(last?.policyVersion, version)
    assert.doesNotMatch((await auditor().get('/metrics')).body, /governance_shadow_policy_would_flip\{/)
  })

  test('withdrawing takes one admin (never an agent) and stops the counting', async () => {
    const version = world.policyVersion + 2
    // the seed's terms again: the proposal without an approval would be blocked
    await governed(api, 'shadow policy', (a) => a.post('/v1/policies/shadow', seedPolicy(version)))
    assert.equal((await shadowMetrics()).allowToBlock, 1)
    expectError(
      await agent().post('/v1/policies/shadow/withdrawal', { reason: 'not mine to withdraw' }),
      403,
      'forbidden',
    )
    expectError(await admin().post('/v1/policies/shadow/withdrawal', {}), 400, 'invalid')
    // through the SDK, as an admin's tooling would
    const sdk = new AdminClient({
      baseUrl: 'http://ledger.test',
      token: await api.tokenFor(SEED.admin, 'policy-admin'),
      fetch: api.fetch,
    })
    const view = await sdk.shadowPolicy()
    assert.equal(view.policy.version, version)
    assert.deepEqual(
      view.flips.map((f) => [f.proposalId, f.recorded, f.counterfactual]),
      [[blocked.proposalId, 'allow', 'block']],
    )
    const withdrawn = await sdk.withdrawShadowPolicy('seen enough')
    assert.deepEqual(
      withdrawn.events.map((e) => e.type),
      ['ShadowPolicyWithdrawn'],
    )
    assert.deepEqual((await policyStream()).slice(-1), ['ShadowPolicyWithdrawn'])
    assert.equal(await shadowMetrics(), null)
    // more evidence: nothing is counted any more
    const observed = await api.as(SEED.observer, 'observer').post('/v1/observations', {
      ...world.observation,
      observedAt: new Date().toISOString(),
    })
    assert.equal(observed.statusCode, 201, observed.body)
    assert.equal(await shadowMetrics(), null)
    expectError(await admin().post('/v1/policies/shadow/withdrawal', { reason: 'again' }), 404, 'not-found')
  })
})
