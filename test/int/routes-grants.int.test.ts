import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  appendsNothing,
  expectError,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'

const fieldsOf = (error: { details: unknown }) =>
  (error.details as { fields: { field: string }[] }).fields.map((f) => f.field)

/** a low-impact scope: one policy admin grants it */
const scope = {
  identity: 'svc-grants',
  tool: 'cache',
  action: 'flush',
  resourcePattern: 'cache/*',
  environment: 'staging',
}

describe('grant routes', () => {
  let api: TestApi
  let world: World
  const admin = () => api.as('admin', 'policy-admin')
  const activeGrants = async (identity: string) => {
    await api.settle()
    const answer = await api.as('auditor-1', 'auditor').get(`/v1/grants?identity=${identity}`)
    assert.equal(answer.statusCode, 200, answer.body)
    return answer.json() as { identity: string; grants: { grantId: string; via: string }[]; asOf: number }
  }

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
  })
  after(() => api.close())

  test('granting records the scope, direct by default, and the decision service lists it as active', async () => {
    const answer = await admin().post('/v1/grants', scope)
    assert.equal(answer.statusCode, 201, answer.body)
    const { grantId, events, status } = answer.json()
    assert.equal(status, 'applied')
    assert.match(grantId, /^[0-9a-f-]{36}$/)
    assert.deepEqual(
      events.map((e: { type: string; stream: string }) => [e.type, e.stream]),
      [['ScopeGranted', `grant-${grantId}`]],
    )
    const [stored] = await api.runtime.store.readStream(`grant-${grantId}`)
    assert.deepEqual(stored?.data, { grantId, ...scope, via: 'direct' })
    assert.equal(stored?.metadata.actor, 'admin')
    const listed = await activeGrants('svc-grants')
    assert.deepEqual(
      listed.grants.map((g) => [g.grantId, g.via]),
      [[grantId, 'direct']],
    )
    assert.ok(listed.asOf >= (stored?.position ?? Number.POSITIVE_INFINITY))
  })

  test('the seeded identity holds one exact direct grant per tool action and environment', async () => {
    const listed = await activeGrants(world.executingIdentity)
    assert.equal(listed.grants.length, Object.keys(world.grants).length)
    assert.deepEqual(listed.grants.map((g) => g.grantId).sort(), Object.values(world.grants).sort())
  })

  test('revoking removes it from the active grants; revoking again is a 409, an unknown grant a 404', async () => {
    const granted = await admin().post('/v1/grants', {
      ...scope,
      identity: 'svc-revoke',
      grantId: 'grant-revoke-1',
    })
    assert.equal(granted.json().grantId, 'grant-revoke-1')
    const revoked = await admin().post('/v1/grants/grant-revoke-1/revocation', { reason: 'rotated' })
    assert.equal(revoked.statusCode, 201, revoked.body)
    assert.deepEqual(
      revoked.json().events.map((e: { type: string }) => e.type),
      ['ScopeRevoked'],
    )
    assert.deepEqual((await activeGrants('svc-revoke')).grants, [])
    expectError(
      await appendsNothing(api, () =>
        admin().post('/v1/grants/grant-revoke-1/revocation', { reason: 'again' }),
      ),
      409,
      'conflict',
    )
    expectError(
      await appendsNothing(api, () => admin().post('/v1/grants/no-such-grant/revocation', { reason: 'x' })),
      404,
      'not-found',
    )
    const noReason = await appendsNothing(api, () => admin().post('/v1/grants/grant-revoke-1/revocation', {}))
    assert.ok(fieldsOf(expectError(noReason, 400, 'invalid')).includes('body.reason'))
  })

  test('a grant id that exists is a 409', async () => {
    await admin().post('/v1/grants', { ...scope, grantId: 'grant-twice' })
    expectError(
      await appendsNothing(api, () => admin().post('/v1/grants', { ...scope, grantId: 'grant-twice' })),
      409,
      'conflict',
    )
  })

  test('only a policy-admin grants or revokes (403)', async () => {
    for (const client of [
      api.as('agent-1', 'agent'),
      api.as('approver-1', 'approver', 'executor', 'auditor'),
    ]) {
      expectError(await appendsNothing(api, () => client.post('/v1/grants', scope)), 403, 'forbidden')
      expectError(
        await appendsNothing(api, () =>
          client.post(`/v1/grants/${world.grants['kubectl.scale:production']}/revocation`, { reason: 'x' }),
        ),
        403,
        'forbidden',
      )
    }
  })

  test('only a policy-admin or an auditor reads grants: an agent, an executor or an approver gets 403', async () => {
    const url = `/v1/grants?identity=${world.executingIdentity}`
    for (const role of ['agent', 'executor', 'approver', 'simulator', 'observer'] as const) {
      const error = expectError(await api.as('agent-1', role).get(url), 403, 'forbidden')
      assert.deepEqual((error.details as { required: string[] }).required, ['policy-admin', 'auditor'])
    }
    for (const client of [admin(), api.as('auditor-1', 'auditor')]) {
      const answer = await client.get(url)
      assert.equal(answer.statusCode, 200, answer.body)
      assert.ok(answer.json().grants.length > 0)
    }
  })

  test('a bad body or query is a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...scope, via: 'sideways' }, 'body.via'],
      [{ ...scope, identity: undefined }, 'body.identity'],
      [{ ...scope, resourcePattern: '' }, 'body.resourcePattern'],
      [{ ...scope, grantId: 'has space' }, 'body.grantId'],
      [{ ...scope, roles: ['root'] }, 'body'],
    ]
    for (const [body, field] of cases) {
      const error = expectError(
        await appendsNothing(api, () => admin().post('/v1/grants', body)),
        400,
        'invalid',
      )
      assert.ok(fieldsOf(error).includes(field), `${field} in ${fieldsOf(error)}`)
    }
    const noIdentity = expectError(await admin().get('/v1/grants'), 400, 'invalid')
    assert.ok(fieldsOf(noIdentity).includes('querystring.identity'))
  })

  test('a retried grant with the same Idempotency-Key returns the first grant id and appends nothing', async () => {
    const headers = { 'idempotency-key': 'grant-once' }
    const body = { ...scope, identity: 'svc-idem' }
    const first = await admin().post('/v1/grants', body, headers)
    assert.equal(first.statusCode, 201, first.body)
    const retried = await appendsNothing(api, () => admin().post('/v1/grants', body, headers))
    assert.equal(retried.statusCode, 201)
    assert.equal(retried.json().duplicate, true)
    assert.equal(retried.json().grantId, first.json().grantId)
    assert.equal((await activeGrants('svc-idem')).grants.length, 1)
  })

  test('a grant that reaches high or critical impact waits for a second, distinct policy admin', async () => {
    for (const [tool, action] of [
      ['kubectl', 'scale'],
      ['db', 'migrate'],
      ['unregistered', 'anything'],
      ['*', 'flush'],
    ]) {
      const identity = `svc-high-${tool === '*' ? 'any' : tool}`
      const asked = await admin().post('/v1/grants', { ...scope, identity, tool, action })
      assert.equal(asked.statusCode, 202, asked.body)
      const { requestId, grantId, widens, events } = asked.json()
      assert.equal(asked.json().status, 'pending')
      assert.ok(widens.length > 0)
      assert.deepEqual(
        events.map((e: { type: string }) => e.type),
        ['ChangeRequested'],
      )
      assert.deepEqual((await activeGrants(identity)).grants, [], 'nothing is granted before the approval')
      const alone = await appendsNothing(api, () => admin().post(`/v1/changes/${requestId}/approval`, {}))
      const refused = expectError(alone, 403, 'forbidden')
      assert.equal((refused.details as { specification: string }).specification, 'secondAdminApproves')
      const approved = await api.as('admin-2', 'policy-admin').post(`/v1/changes/${requestId}/approval`, {})
      assert.equal(approved.statusCode, 201, approved.body)
      assert.deepEqual(
        approved.json().events.map((e: { type: string }) => e.type),
        ['ChangeApproved', 'ScopeGranted'],
      )
      assert.deepEqual(
        (await activeGrants(identity)).grants.map((g) => g.grantId),
        [grantId],
      )
      const change = (await admin().get(`/v1/changes/${requestId}`)).json()
      assert.equal(change.status, 'approved')
      assert.equal(change.requestedBy, 'admin')
      assert.equal(change.approvedBy, 'admin-2')
    }
  })

  test('a pending change may be refused by any admin, and then never applies', async () => {
    const asked = await admin().post('/v1/grants', {
      ...scope,
      identity: 'svc-refused',
      tool: 'kubectl',
      action: 'scale',
    })
    const { requestId } = asked.json()
    const refused = await api
      .as('admin-2', 'policy-admin')
      .post(`/v1/changes/${requestId}/refusal`, { reason: 'not this quarter' })
    assert.equal(refused.statusCode, 201, refused.body)
    const late = await appendsNothing(api, () =>
      api.as('admin-3', 'policy-admin').post(`/v1/changes/${requestId}/approval`, {}),
    )
    assert.match(expectError(late, 409, 'conflict').message, /refused/)
    assert.deepEqual((await activeGrants('svc-refused')).grants, [])
  })
})
