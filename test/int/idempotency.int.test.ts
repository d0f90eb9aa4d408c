// An Idempotency-Key is bound to the request it was first sent with: the same request again is a retry and
// gets the first answer; the same key with another path or another body is refused with 422 and appends
// nothing. On the SQLite ledger and on PostgreSQL, which record the key and the request's digest each their way.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { streams } from '../../src/domain/events.js'
import {
  appendsNothing,
  expectError,
  proposalBody,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'
import { freshSchema, postgresServer } from '../support/postgres.js'

const server = await postgresServer()
const postgres = 'url' in server ? server.url : ''

const LEDGERS = [
  { name: 'SQLite', skip: false as const, schema: null },
  {
    name: 'PostgreSQL',
    skip: 'skip' in server ? server.skip : (false as const),
    schema: 'url' in server ? freshSchema(postgres) : null,
  },
]

for (const ledger of LEDGERS) {
  describe(`Idempotency-Key bound to its request, ${ledger.name} ledger`, { skip: ledger.skip }, () => {
    let api: TestApi
    let world: World
    let proposals = 0

    before(async () => {
      api = await startTestApi(
        ledger.schema === null
          ? {}
          : { LEDGER: 'postgres', POSTGRES_URL: postgres, POSTGRES_SCHEMA: ledger.schema.name },
      )
      world = await seedWorld(api)
    })

    after(async () => {
      await api?.close()
      await ledger.schema?.drop()
    })

    const agent = () => api.as('agent-1', 'agent')
    const approver = (sub = 'approver-1') => api.as(sub, 'approver')
    const key = (k: string) => ({ 'idempotency-key': k })

    /** A new proposal of agent-1, with no Idempotency-Key. */
    const proposal = async (): Promise<{ proposalId: string; actionDigest: string }> => {
      proposals += 1
      const r = await agent().post('/v1/proposals', proposalBody(world, { replicas: 100 + proposals }))
      assert.equal(r.statusCode, 201, r.body)
      return r.json()
    }

    const eventsOf = async (proposalId: string, type: string) =>
      (await api.runtime.store.readStream(streams.proposal(proposalId))).filter((e) => e.type === type)

    test('the same key with the same request is a retry: the first answer, marked duplicate, one event', async () => {
      const p = await proposal()
      const url = `/v1/proposals/${p.proposalId}/approvals`
      const first = await approver().post(url, { actionDigest: p.actionDigest }, key('approve-once'))
      assert.equal(first.statusCode, 201, first.body)
      assert.equal(first.json().duplicate, false)
      const retried = await appendsNothing(api, () =>
        approver().post(url, { actionDigest: p.actionDigest }, key('approve-once')),
      )
      assert.equal(retried.statusCode, 201, retried.body)
      assert.equal(retried.json().duplicate, true)
      assert.deepEqual(retried.json().events, first.json().events)
      const approvals = await eventsOf(p.proposalId, 'ApprovalGranted')
      assert.equal(approvals.length, 1)
      // the ledger records the key per principal, and the digest of the request it was first used for
      const [approval] = approvals
      assert.equal(
        approval?.metadata.idempotencyKey,
        'http:10:approver-1:approve-once',
        'the subject, length first',
      )
      assert.match(String(approval?.metadata.requestDigest), /^sha256:[0-9a-f]{64}$/)

      // a submission retried without a proposal id gets the id generated the first time
      const body = proposalBody(world, { replicas: 7 })
      const submitted = await agent().post('/v1/proposals', body, key('submit-once'))
      assert.equal(submitted.statusCode, 201, submitted.body)
      const again = await appendsNothing(api, () => agent().post('/v1/proposals', body, key('submit-once')))
      assert.equal(again.statusCode, 201, again.body)
      assert.equal(again.json().duplicate, true)
      assert.equal(again.json().proposalId, submitted.json().proposalId)
      assert.equal((await eventsOf(submitted.json().proposalId, 'ProposalSubmitted')).length, 1)
    })

    test('the same key on another proposal is refused with 422 and appends nothing', async () => {
      const [a, b] = [await proposal(), await proposal()]
      const first = await approver().post(
        `/v1/proposals/${a.proposalId}/approvals`,
        { actionDigest: a.actionDigest },
        key('approve-a'),
      )
      assert.equal(first.statusCode, 201, first.body)
      const reused = await appendsNothing(api, () =>
        approver().post(
          `/v1/proposals/${b.proposalId}/approvals`,
          { actionDigest: b.actionDigest },
          key('approve-a'),
        ),
      )
      const error = expectError(reused, 422, 'idempotency-key-reused')
      assert.match(error.message, /already used for a different request/)
      assert.deepEqual(error.details, { idempotencyKey: 'approve-a' })
      assert.equal((await eventsOf(b.proposalId, 'ApprovalGranted')).length, 0, 'b was not approved')
      assert.equal((await eventsOf(a.proposalId, 'ApprovalGranted')).length, 1)
      // the key stays bound to its first request: retrying that one still answers it
      const retried = await approver().post(
        `/v1/proposals/${a.proposalId}/approvals`,
        { actionDigest: a.actionDigest },
        key('approve-a'),
      )
      assert.equal(retried.statusCode, 201, retried.body)
      assert.equal(retried.json().duplicate, true)
      // another route altogether is another request too
      const elsewhere = await appendsNothing(api, () =>
        approver().post(`/v1/proposals/${a.proposalId}/withdrawal`, { reason: 'x' }, key('approve-a')),
      )
      assert.equal(elsewhere.statusCode, 403, 'the role is checked before anything else')
    })

    test('the same key with another body is refused with 422 and appends nothing', async () => {
      const first = await agent().post(
        '/v1/proposals',
        proposalBody(world, { replicas: 11 }),
        key('submit-11'),
      )
      assert.equal(first.statusCode, 201, first.body)
      const proposalsBefore = (await api.runtime.store.readAll(0, 100_000)).filter(
        (e) => e.type === 'ProposalSubmitted',
      ).length
      const reused = await appendsNothing(api, () =>
        agent().post('/v1/proposals', proposalBody(world, { replicas: 12 }), key('submit-11')),
      )
      expectError(reused, 422, 'idempotency-key-reused')
      const proposalsAfter = (await api.runtime.store.readAll(0, 100_000)).filter(
        (e) => e.type === 'ProposalSubmitted',
      ).length
      assert.equal(proposalsAfter, proposalsBefore, 'the second proposal was not submitted')

      // evidence: the same path, another simulation
      const p = await proposal()
      const url = `/v1/proposals/${p.proposalId}/simulations`
      const requested = await agent().post(`/v1/proposals/${p.proposalId}/simulation-requests`, {
        actionDigest: p.actionDigest,
      })
      assert.equal(requested.statusCode, 201, requested.body)
      const simulator = () => api.as('simulator-1', 'simulator')
      const branch = (outcome: string) => ({
        requestId: requested.json().requestId,
        actionDigest: p.actionDigest,
        branches: [{ name: 'baseline', kind: 'baseline', counterfactual: 'as planned', outcome }],
      })
      assert.equal((await simulator().post(url, branch('survived'), key('sim-1'))).statusCode, 201)
      expectError(
        await appendsNothing(api, () => simulator().post(url, branch('failed'), key('sim-1'))),
        422,
        'idempotency-key-reused',
      )
      assert.equal((await eventsOf(p.proposalId, 'SimulationRecorded')).length, 1)
    })

    test('a subject and key that read as another subject and key are still another key', async () => {
      const p = await proposal()
      const url = `/v1/proposals/${p.proposalId}/approvals`
      // 'ops:k' with key '1' and 'ops' with key 'k:1' would both read 'ops:k:1' without the subject's length
      const one = await approver('ops:k').post(url, { actionDigest: p.actionDigest }, key('1'))
      const two = await approver('ops').post(url, { actionDigest: p.actionDigest }, key('k:1'))
      assert.equal(one.statusCode, 201, one.body)
      assert.equal(two.statusCode, 201, two.body)
      assert.equal(two.json().duplicate, false)
    })

    test('the same key from another principal is another key', async () => {
      const p = await proposal()
      const url = `/v1/proposals/${p.proposalId}/approvals`
      const one = await approver('approver-1').post(url, { actionDigest: p.actionDigest }, key('shared-key'))
      const two = await approver('approver-2').post(url, { actionDigest: p.actionDigest }, key('shared-key'))
      assert.equal(one.statusCode, 201, one.body)
      assert.equal(two.statusCode, 201, two.body)
      assert.equal(two.json().duplicate, false)
      assert.notDeepEqual(two.json().events, one.json().events)
      const approvers = (await eventsOf(p.proposalId, 'ApprovalGranted')).map(
        (e) => (e.data as { approver: string }).approver,
      )
      assert.deepEqual(approvers.sort(), ['approver-1', 'approver-2'])
      // and a third principal reusing it elsewhere is not refused for the others' use of it
      const q = await proposal()
      const three = await approver('approver-3').post(
        `/v1/proposals/${q.proposalId}/approvals`,
        { actionDigest: q.actionDigest },
        key('shared-key'),
      )
      assert.equal(three.statusCode, 201, three.body)
    })

    test('two different requests racing with one key: one is done, the other refused, one event', async () => {
      const [a, b] = [await proposal(), await proposal()]
      const send = (p: { proposalId: string; actionDigest: string }) =>
        approver().post(
          `/v1/proposals/${p.proposalId}/approvals`,
          { actionDigest: p.actionDigest },
          key('race-key'),
        )
      const answers = await Promise.all([send(a), send(b)])
      assert.deepEqual(answers.map((r) => r.statusCode).sort(), [201, 422], answers.map((r) => r.body).join())
      const approved = [
        ...(await eventsOf(a.proposalId, 'ApprovalGranted')),
        ...(await eventsOf(b.proposalId, 'ApprovalGranted')),
      ]
      assert.equal(approved.length, 1)
    })
  })
}
