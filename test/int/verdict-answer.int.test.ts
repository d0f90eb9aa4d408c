import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { streams } from '../../src/domain/events.js'
import {
  expectError,
  proposalBody,
  rollbackTestOf,
  SEED,
  seedWorld,
  simulated,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

describe('a command answers with the verdict it drew (?wait, Prefer: wait=N)', () => {
  let api: TestApi
  let world: World

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
  })
  after(() => api.close())

  const agent = () => api.as('agent-1', 'agent')

  test('a submission with ?wait answers with its verdict, the one in the ledger right after it, in one request', async () => {
    const before = await api.head()
    const submitted = await agent().post('/v1/proposals?wait', proposalBody(world, { replicas: 7 }))
    assert.equal(submitted.statusCode, 201, submitted.body)
    const { proposalId, verdict, events } = submitted.json()
    assert.equal(verdict.proposalId, proposalId)
    assert.equal(verdict.decision, 'block', 'no evidence yet')
    assert.equal(verdict.revision, 1)
    // decided in the commit that appended the proposal: the ledger held both the moment the request was answered
    const stream = await api.runtime.store.readStream(streams.proposal(proposalId))
    assert.deepEqual(
      stream.map((e) => e.type),
      ['ProposalSubmitted', 'VerdictIssued'],
    )
    assert.equal(stream[1]?.position, (events[0]?.position ?? 0) + 1, 'the verdict right after its cause')
    assert.equal(verdict.position, stream[1]?.position)
    assert.equal(verdict.signature, (stream[1]?.data as { signature?: string } | undefined)?.signature)
    assert.equal(await api.head(), before + 2, 'one proposal, one verdict: nothing else')
  })

  test('evidence with Prefer: wait=N answers with the verdict it leaves in force, up to the allow', async () => {
    const submitted = await agent().post('/v1/proposals', proposalBody(world, { replicas: 8 }))
    assert.equal(submitted.statusCode, 201, submitted.body)
    const { proposalId, actionDigest } = submitted.json()
    assert.equal(submitted.json().verdict, undefined, 'no verdict unless asked for')
    await simulated(api, 'agent-1', proposalId, actionDigest)
    const tested = await api
      .as(SEED.simulator, 'simulator')
      .post(`/v1/proposals/${proposalId}/rollback-tests`, rollbackTestOf(actionDigest, `run-${proposalId}`), {
        prefer: 'wait=5',
      })
    assert.equal(tested.statusCode, 201, tested.body)
    assert.equal(tested.json().verdict.decision, 'block', 'still no approval')
    const approved = await api
      .as(SEED.approver, 'approver')
      .post(`/v1/proposals/${proposalId}/approvals?wait=2`, { actionDigest })
    assert.equal(approved.statusCode, 201, approved.body)
    const { verdict } = approved.json()
    assert.equal(verdict.decision, 'allow')
    assert.equal(verdict.revoked, false)
    const current = (await agent().get(`/v1/proposals/${proposalId}/verdict`)).json().verdict
    assert.deepEqual(verdict, current, 'the verdict answered is the verdict served')
  })

  test('a retry under the same Idempotency-Key answers with the verdict in force, appending nothing', async () => {
    const body = proposalBody(world, { replicas: 9 })
    const headers = { 'idempotency-key': 'submit-with-wait' }
    const first = await agent().post('/v1/proposals?wait', body, headers)
    assert.equal(first.statusCode, 201, first.body)
    const head = await api.head()
    const again = await agent().post('/v1/proposals?wait', body, headers)
    assert.equal(again.statusCode, 201, again.body)
    assert.equal(again.json().duplicate, true)
    assert.deepEqual(again.json().verdict, first.json().verdict)
    assert.equal(await api.head(), head)
  })

  test('while the gate is closed a command that asks for its verdict is refused and records nothing; one the gate closed under is answered without it', async () => {
    const { health, gate } = api.runtime
    health.fault('test-consumer', 'stopped by the test')
    try {
      const head = await api.head()
      const refused = await agent().post('/v1/proposals?wait', proposalBody(world, { replicas: 11 }))
      const body = expectError(refused, 503, 'unavailable')
      assert.match(body.message, /gate is closed: test-consumer: stopped by the test/)
      const submitted = await agent().post('/v1/proposals', proposalBody(world, { replicas: 12 }))
      assert.equal(submitted.statusCode, 201, 'a command that does not ask for a verdict is still recorded')
      const { proposalId, actionDigest } = submitted.json()
      const afterSubmit = await api.head()
      const approval = await api
        .as(SEED.approver, 'approver')
        .post(`/v1/proposals/${proposalId}/approvals`, { actionDigest }, { prefer: 'wait=3' })
      expectError(approval, 503, 'unavailable')
      assert.equal(await api.head(), afterSubmit, 'the refused evidence recorded nothing')
      assert.ok(afterSubmit > head)
    } finally {
      health.recovered('test-consumer')
    }
    // the gate closes while the command is recorded: the command stands, its verdict is withheld, saying why
    const closedBecause = gate.closedBecause
    let asked = 0
    gate.closedBecause = async () => (++asked === 1 ? null : 'closed by the test after the check')
    try {
      const submitted = await agent().post('/v1/proposals?wait', proposalBody(world, { replicas: 13 }))
      assert.equal(submitted.statusCode, 201, submitted.body)
      assert.equal(submitted.json().verdict, undefined)
      assert.match(submitted.json().verdictWithheld, /gate is closed: closed by the test after the check/)
    } finally {
      gate.closedBecause = closedBecause
    }
  })

  test('the verdict a command drew is answered as the commit left it: a kill switch in the same group commit revokes it', async () => {
    const submitted = await agent().post('/v1/proposals', proposalBody(world, { replicas: 14 }))
    const { proposalId, actionDigest } = submitted.json()
    await simulated(api, 'agent-1', proposalId, actionDigest)
    const tested = await api
      .as(SEED.simulator, 'simulator')
      .post(`/v1/proposals/${proposalId}/rollback-tests`, rollbackTestOf(actionDigest, `run-${proposalId}`))
    assert.equal(tested.statusCode, 201, tested.body)
    // the approval's append and a kill switch's are queued in the same turn: one group commit holds both, the
    // approval's allow first, then the switch that revokes it
    const { store } = api.runtime
    const append = store.append
    const target = { scope: 'agent' as const, target: 'agent-1' }
    let engaged: Promise<unknown> | null = null
    store.append = (stream, events, expected, options) => {
      const appended = append.call(store, stream, events, expected, options)
      if (stream === streams.proposal(proposalId) && engaged === null) {
        engaged = append.call(
          store,
          streams.killSwitch(target),
          [
            {
              type: 'KillSwitchEngaged',
              data: { ...target, reason: 'stop the agent, in the same commit' },
              metadata: { actor: SEED.admin },
            },
          ],
          'any',
        )
      }
      return appended
    }
    try {
      const approved = await api
        .as(SEED.approver, 'approver')
        .post(`/v1/proposals/${proposalId}/approvals?wait`, { actionDigest })
      assert.equal(approved.statusCode, 201, approved.body)
      await engaged
      const { verdict, events } = approved.json()
      const stream = await store.readStream(streams.proposal(proposalId))
      const issued = stream.find((e) => e.type === 'VerdictIssued' && e.position > (events[0]?.position ?? 0))
      const revoked = stream.find((e) => e.type === 'VerdictRevoked')
      assert.ok(issued && revoked, 'the approval drew an allow, and the switch revoked it')
      assert.equal(issued.recordedAt, revoked.recordedAt, 'in one group commit')
      assert.equal(verdict.decision, 'allow')
      assert.equal(verdict.revoked, true, 'answered as the commit left it')
    } finally {
      store.append = append
    }
  })

  test('a malformed wait is a 400 and records nothing', async () => {
    const head = await api.head()
    const bad = await agent().post('/v1/proposals?wait=soon', proposalBody(world, { replicas: 10 }))
    expectError(bad, 400, 'invalid')
    assert.equal(await api.head(), head)
  })
})
