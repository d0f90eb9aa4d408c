// Reads of projections as of a past moment over HTTP: ?asOf= as a ledger position and as a UTC time, and the
// 400s for a moment that is not one.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  expectError,
  proposalBody,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

let api: TestApi
let world: World
/** the head before the proposal, and the proposal's own position */
let beforeProposal: number
let submittedAt: { position: number; recordedAt: string }
let proposalId: string

before(async () => {
  api = await startTestApi()
  world = await seedWorld(api)
  await api.settle()
  beforeProposal = await api.head()
  const submitted = await api
    .as('agent-1', 'agent')
    .post('/v1/proposals', proposalBody(world, { step: 'as-of' }))
  assert.equal(submitted.statusCode, 201, submitted.body)
  const [event] = submitted.json().events
  proposalId = submitted.json().proposalId
  submittedAt = { position: event.position, recordedAt: event.recordedAt }
  await api.settle()
})

after(() => api.close())

const auditor = () => api.as('auditor-1', 'auditor')
const openIds = (body: { actions: Array<{ proposalId: string }> }) => body.actions.map((a) => a.proposalId)

test('?asOf as a position answers as the read models stood there, and says which position it reflects', async () => {
  const then = await auditor().get(`/v1/open-actions?asOf=${beforeProposal}`)
  assert.equal(then.statusCode, 200, then.body)
  assert.equal(then.json().asOf, beforeProposal)
  assert.deepEqual(openIds(then.json()), [])
  const at = await auditor().get(`/v1/open-actions?asOf=${submittedAt.position}`)
  assert.deepEqual(openIds(at.json()), [proposalId])
  assert.equal(at.json().actions[0].verdict, null, 'no verdict yet at its own position')
  const now = await auditor().get('/v1/open-actions')
  assert.deepEqual(openIds(now.json()), [proposalId])
  assert.notEqual(now.json().actions[0].verdict, null, 'decided since')
  // the audit of the action did not exist before it was submitted, and its verdict did not exist at submission
  expectError(await auditor().get(`/v1/audit/actions/${proposalId}?asOf=${beforeProposal}`), 404, 'not-found')
  const audited = await auditor().get(`/v1/audit/actions/${proposalId}?asOf=${submittedAt.position}`)
  assert.equal(audited.statusCode, 200, audited.body)
  assert.equal(audited.json().currentVerdict, null)
  assert.equal(audited.json().asOf, submittedAt.position)
  // position 0: every read model is empty
  const empty = await auditor().get(`/v1/agents/agent-1?asOf=0`)
  expectError(empty, 404, 'not-found')
  const agent = await auditor().get(`/v1/agents/agent-1?asOf=${beforeProposal}`)
  assert.equal(agent.json().levels.production.level, 'execute')
  assert.equal(agent.json().asOf, beforeProposal)
  const metrics = await auditor().get(`/v1/metrics/headline?asOf=${beforeProposal}`)
  assert.equal(metrics.statusCode, 200, metrics.body)
  assert.equal(metrics.json().asOf, beforeProposal)
})

test('?asOf as a UTC time answers as of the last position recorded at or before it', async () => {
  const justBefore = new Date(Date.parse(submittedAt.recordedAt) - 1).toISOString()
  const then = await auditor().get(`/v1/open-actions?asOf=${justBefore}`)
  assert.equal(then.statusCode, 200, then.body)
  assert.ok(then.json().asOf < submittedAt.position)
  assert.deepEqual(openIds(then.json()), [])
  const events = await api.runtime.store.readAll(then.json().asOf, 1)
  assert.ok(
    events.every((e) => e.recordedAt > justBefore),
    'the next event was recorded after the time asked for',
  )
  const at = await auditor().get(`/v1/open-actions?asOf=${submittedAt.recordedAt}`)
  assert.ok(at.json().asOf >= submittedAt.position)
  assert.deepEqual(openIds(at.json()), [proposalId])
  const early = await auditor().get('/v1/open-actions?asOf=2000-01-01T00:00:00Z')
  assert.equal(early.json().asOf, 0, 'before the first event: the empty state')
})

test('a moment that is not one, beyond the head or in the future is a 400; the roles stay those of the read', async () => {
  const head = await api.head()
  for (const bad of ['yesterday', '-1', '1.5', '2026-01-05T08:00:00+02:00', '99999999999999999999']) {
    expectError(await auditor().get(`/v1/open-actions?asOf=${encodeURIComponent(bad)}`), 400, 'invalid')
  }
  const beyond = expectError(await auditor().get(`/v1/open-actions?asOf=${head + 1}`), 400, 'invalid')
  assert.match(beyond.message, /head/)
  const future = expectError(
    await auditor().get('/v1/metrics/headline?asOf=2999-01-01T00:00:00Z'),
    400,
    'invalid',
  )
  assert.match(future.message, /future/)
  expectError(await api.as('agent-1', 'agent').get(`/v1/open-actions?asOf=1`), 403, 'forbidden')
  expectError(await api.as('agent-2', 'agent').get(`/v1/agents/agent-1?asOf=1`), 403, 'forbidden')
})
