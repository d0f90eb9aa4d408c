import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { main } from '../../src/cli/main.js'
import { streams } from '../../src/domain/events.js'
import {
  expectError,
  proposalBody,
  rollbackTestOf,
  SEED,
  seedPolicy,
  seedWorld,
  startTestApi,
  survivingBranches,
  type TestApi,
  type World,
} from '../support/api.js'

/**
 * A workflow's release through the real service: the gate blocks a fully evidenced proposal until the workflow's
 * recent runs survive, opens when they do, closes when a run fails, and the ledger records each turn. A
 * pipeline asks over HTTP and through `gate check`, and stops on the exit code.
 */
const GATE = {
  workflow: 'kubectl.scale',
  environment: 'production',
  impacts: ['high', 'critical'],
  runs: 2,
  survivalThreshold: 0.9,
  requiredBranchKinds: ['dependency-down'],
}

describe('release gate', () => {
  let api: TestApi
  let world: World
  let url: string

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
    url = await api.app.listen({ port: 0, host: '127.0.0.1' })
  })
  after(() => api.close())

  const agent = () => api.as('agent-1', 'agent')
  const simulator = () => api.as(SEED.simulator, 'simulator')

  /** agent-1 proposes, and every piece of evidence arrives; the simulation's branches are as given. */
  const evidenced = async (plan: Record<string, unknown>, outcome: 'survived' | 'failed' = 'survived') => {
    const submitted = (await agent().post('/v1/proposals', proposalBody(world, plan))).json()
    const { proposalId, actionDigest } = submitted
    const requested = (
      await agent().post(`/v1/proposals/${proposalId}/simulation-requests`, { actionDigest })
    ).json()
    const branches = survivingBranches().map((b) => (b.kind === 'baseline' ? b : { ...b, outcome }))
    const recorded = await simulator().post(`/v1/proposals/${proposalId}/simulations`, {
      requestId: requested.requestId,
      actionDigest,
      branches,
    })
    assert.equal(recorded.statusCode, 201, recorded.body)
    await simulator().post(
      `/v1/proposals/${proposalId}/rollback-tests`,
      rollbackTestOf(actionDigest, `run-${proposalId}`),
    )
    await api.as(SEED.approver, 'approver').post(`/v1/proposals/${proposalId}/approvals`, { actionDigest })
    await api.settle()
    return proposalId as string
  }

  const verdictOf = async (proposalId: string) => {
    await api.settle()
    const { verdict } = (await agent().get(`/v1/proposals/${proposalId}/verdict`)).json()
    const failed = verdict.checks.filter((c: { status: string }) => c.status === 'fail')
    return { decision: verdict.decision, failed: failed.map((c: { check: string }) => c.check), verdict }
  }

  const gateCheck = async (...args: string[]) => {
    let out = ''
    const code = await main(['gate', 'check', 'kubectl.scale', '--url', url, ...args], {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: () => true },
      env: { GOVERNANCE_TOKEN: await api.tokenFor('release-pipeline', 'simulator') },
    })
    return { code, out }
  }

  const releaseEvents = async () =>
    (await api.runtime.store.readStream(streams.workflow('kubectl', 'scale'))).map((e) => [
      e.type,
      (e.data as { figures: { runs: number } }).figures.runs,
    ])

  let first: string

  test('a gate is put in force only with a second policy admin', async () => {
    const lone = await api
      .as(SEED.admin, 'policy-admin')
      .post('/v1/policies', { ...seedPolicy(2), releaseGates: [GATE] })
    assert.equal(lone.statusCode, 202, 'a policy waits for a second admin')
    await api.settle()
    const meanwhile = (await simulator().get('/v1/release-gates/kubectl.scale')).json()
    assert.equal(meanwhile.policyVersion, 1, 'the requested policy is not in force')
    // the second admin approves it: now in force
    await api.as(SEED.secondAdmin, 'policy-admin').post(`/v1/changes/${lone.json().requestId}/approval`, {})
    await api.settle()
  })

  test('a fully evidenced proposal is blocked by the gate alone, with the numbers', async () => {
    first = await evidenced({ replicas: 5 })
    const { decision, failed, verdict } = await verdictOf(first)
    assert.equal(decision, 'block')
    assert.deepEqual(failed, ['releaseGate'])
    const reason = verdict.checks.find((c: { check: string }) => c.check === 'releaseGate').reason
    assert.match(reason, /the last 1 simulation run\(s\) of every agent \(2 required\)/)
    const { code, out } = await gateCheck('--environment', 'production')
    assert.equal(code, 1, out)
    assert.match(out, /^FAIL /)
    assert.match(out, /runs 1\/2/)
  })

  test('a second surviving run releases the workflow: the ledger says so, and the open proposal is allowed', async () => {
    const second = await evidenced({ replicas: 6 })
    assert.deepEqual(await releaseEvents(), [['WorkflowReleased', 2]])
    assert.equal((await verdictOf(first)).decision, 'allow')
    assert.equal((await verdictOf(second)).decision, 'allow')
    const { code, out } = await gateCheck('--environment', 'production', '--json')
    assert.equal(code, 0, out)
    const answer = JSON.parse(out)
    assert.equal(answer.passed, true)
    assert.equal(answer.gates[0].figures.survivalRate, 1)
    assert.deepEqual(answer.gates[0].figures.kindsCovered, [
      'dependency-down',
      'concurrent-change',
      'partial-failure',
    ])
  })

  test('a run whose adversarial branches fail closes the gate again on every open proposal of the workflow', async () => {
    const third = await evidenced({ replicas: 7 }, 'failed')
    assert.deepEqual(await releaseEvents(), [
      ['WorkflowReleased', 2],
      ['WorkflowReleaseRevoked', 2],
    ])
    assert.deepEqual((await verdictOf(first)).failed, ['releaseGate'])
    assert.deepEqual((await verdictOf(third)).failed, ['releaseGate', 'survival'])
    assert.equal((await gateCheck()).code, 1)
  })

  test('two surviving runs push the failed one out: the gate reopens', async () => {
    await evidenced({ replicas: 8 })
    await evidenced({ replicas: 9 })
    assert.deepEqual((await releaseEvents()).at(-1), ['WorkflowReleased', 2])
    assert.equal((await verdictOf(first)).decision, 'allow')
    const { code } = await gateCheck('--environment', 'production', '--impact', 'high')
    assert.equal(code, 0)
  })

  test('staging is not gated: the check passes there, and says no gate applies', async () => {
    const answer = (await simulator().get('/v1/release-gates/kubectl.scale?environment=staging')).json()
    assert.equal(answer.passed, true)
    assert.deepEqual(answer.gates, [])
    assert.match(answer.reason, /no release gate of policy v2 applies/)
  })

  test('who may ask, and what is refused: an agent is refused, bad names and classes are 400s', async () => {
    expectError(await agent().get('/v1/release-gates/kubectl.scale'), 403, 'forbidden')
    expectError(await simulator().get('/v1/release-gates/kubectl'), 400, 'invalid')
    expectError(await simulator().get('/v1/release-gates/kubectl.scale?impact=huge'), 400, 'invalid')
    expectError(await simulator().get('/v1/release-gates/kubectl.scale?extra=1'), 400, 'invalid')
    expectError(await simulator().get('/v1/release-gates/kubectl.restart'), 404, 'not-found')
    const usage = await main(['gate', 'check', 'kubectl'], {
      stdout: { write: () => true },
      stderr: { write: () => true },
      env: {},
    })
    assert.equal(usage, 2)
    // no service at the address: no pass
    const unreachable = await main(['gate', 'check', 'kubectl.scale', '--url', 'http://127.0.0.1:9'], {
      stdout: { write: () => true },
      stderr: { write: () => true },
      env: {},
    })
    assert.equal(unreachable, 1)
  })
})
