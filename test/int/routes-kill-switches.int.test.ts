import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  allowedProposal,
  appendsNothing,
  expectError,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

const fieldsOf = (error: { details: unknown }) =>
  (error.details as { fields: { field: string }[] }).fields.map((f) => f.field)

describe('kill switch routes', () => {
  let api: TestApi
  let world: World
  const admin = () => api.as('admin', 'policy-admin')
  const engaged = async () => {
    await api.settle()
    const answer = await api.as('exec-1', 'executor').get('/v1/kill-switches')
    assert.equal(answer.statusCode, 200, answer.body)
    return answer.json() as {
      killSwitches: {
        scope: string
        target: string | null
        reason: string
        engagedBy: string
        eventId: string
      }[]
      asOf: number
    }
  }

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
  })
  after(() => api.close())

  test('engaging revokes the unexecuted allows in scope; releasing takes it off the list', async () => {
    const allowed = await allowedProposal(api, world)
    const engage = await admin().post('/v1/kill-switches', {
      scope: 'tool',
      target: 'kubectl',
      reason: 'incident 42',
    })
    assert.equal(engage.statusCode, 201, engage.body)
    assert.deepEqual(
      engage.json().events.map((e: { type: string; stream: string }) => [e.type, e.stream]),
      [['KillSwitchEngaged', 'killswitch-tool.kubectl']],
    )
    const list = await engaged()
    assert.deepEqual(
      list.killSwitches.map((s) => [s.scope, s.target, s.reason, s.engagedBy, s.eventId]),
      [['tool', 'kubectl', 'incident 42', 'admin', engage.json().events[0].id]],
    )
    const stream = await api.runtime.store.readStream(`proposal-${allowed.proposalId}`)
    const revoked = stream.find((e) => e.type === 'VerdictRevoked')
    assert.equal((revoked?.data as { verdictId?: string } | undefined)?.verdictId, allowed.verdictId)

    const again = await appendsNothing(api, () =>
      admin().post('/v1/kill-switches', { scope: 'tool', target: 'kubectl', reason: 'twice' }),
    )
    assert.match(expectError(again, 409, 'conflict').message, /already engaged/)

    const release = await admin().post('/v1/kill-switches/release', {
      scope: 'tool',
      target: 'kubectl',
      reason: 'incident 42 resolved',
    })
    assert.equal(release.statusCode, 202, release.body)
    assert.equal(release.json().status, 'pending')
    assert.equal((await engaged()).killSwitches.length, 1, 'one admin alone releases nothing')
    const alone = await appendsNothing(api, () =>
      admin().post(`/v1/changes/${release.json().requestId}/approval`, {}),
    )
    expectError(alone, 403, 'forbidden')
    const approved = await api
      .as('admin-2', 'policy-admin')
      .post(`/v1/changes/${release.json().requestId}/approval`, {})
    assert.equal(approved.statusCode, 201, approved.body)
    assert.deepEqual(
      approved.json().events.map((e: { type: string }) => e.type),
      ['ChangeApproved', 'KillSwitchReleased'],
    )
    assert.deepEqual((await engaged()).killSwitches, [])
    const releaseAgain = await appendsNothing(api, () =>
      admin().post('/v1/kill-switches/release', { scope: 'tool', target: 'kubectl', reason: 'twice' }),
    )
    assert.match(expectError(releaseAgain, 409, 'conflict').message, /not engaged/)
  })

  test('the global switch takes no target, and may leave it out', async () => {
    const engage = await admin().post('/v1/kill-switches', { scope: 'global', reason: 'freeze' })
    assert.equal(engage.statusCode, 201, engage.body)
    assert.equal(engage.json().events[0].stream, 'killswitch-global')
    assert.deepEqual(
      (await engaged()).killSwitches.map((s) => [s.scope, s.target]),
      [['global', null]],
    )
    const release = await admin().post('/v1/kill-switches/release', {
      scope: 'global',
      target: null,
      reason: 'thaw',
    })
    assert.equal(release.statusCode, 202, release.body)
    const approved = await api
      .as('admin-2', 'policy-admin')
      .post(`/v1/changes/${release.json().requestId}/approval`, {})
    assert.equal(approved.statusCode, 201, approved.body)
    assert.deepEqual((await engaged()).killSwitches, [])
  })

  test('only a policy-admin engages or releases (403)', async () => {
    for (const client of [api.as('exec-1', 'executor'), api.as('agent-1', 'agent', 'approver', 'auditor')]) {
      const body = { scope: 'agent', target: 'agent-1', reason: 'x' }
      expectError(await appendsNothing(api, () => client.post('/v1/kill-switches', body)), 403, 'forbidden')
      expectError(
        await appendsNothing(api, () => client.post('/v1/kill-switches/release', body)),
        403,
        'forbidden',
      )
    }
  })

  test('a bad switch is a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ scope: 'global', target: 'production', reason: 'x' }, 'body.target'],
      [{ scope: 'environment', reason: 'x' }, 'body.target'],
      [{ scope: 'environment', target: null, reason: 'x' }, 'body.target'],
      [{ scope: 'planet', target: 'earth', reason: 'x' }, 'body.scope'],
      [{ scope: 'tool', target: 'kubectl' }, 'body.reason'],
      [{ scope: 'tool', target: 'kubectl', reason: '' }, 'body.reason'],
      [{ scope: 'tool', target: 'kubectl', reason: 'x', actor: 'someone' }, 'body'],
    ]
    for (const [body, field] of cases) {
      for (const url of ['/v1/kill-switches', '/v1/kill-switches/release']) {
        const error = expectError(await appendsNothing(api, () => admin().post(url, body)), 400, 'invalid')
        assert.ok(fieldsOf(error).includes(field), `${url} ${JSON.stringify(body)}: ${fieldsOf(error)}`)
      }
    }
  })

  test('a retried engagement with the same Idempotency-Key returns the first answer', async () => {
    const headers = { 'idempotency-key': 'stop-agent-2' }
    const body = { scope: 'agent', target: 'agent-2', reason: 'misbehaving' }
    const first = await admin().post('/v1/kill-switches', body, headers)
    assert.equal(first.statusCode, 201, first.body)
    const retried = await appendsNothing(api, () => admin().post('/v1/kill-switches', body, headers))
    assert.equal(retried.statusCode, 201, retried.body)
    assert.equal(retried.json().duplicate, true)
    assert.deepEqual(retried.json().events, first.json().events)
  })
})
