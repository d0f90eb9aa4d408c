import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { appendsNothing, expectError, SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'

const fieldsOf = (error: { details: unknown }) =>
  (error.details as { fields: { field: string }[] }).fields.map((f) => f.field)

describe('inventory routes', () => {
  let api: TestApi
  const admin = () => api.as('admin', 'policy-admin')
  const reader = () => api.as('auditor-1', 'auditor')

  before(async () => {
    api = await startTestApi()
    await seedWorld(api)
  })
  after(() => api.close())

  test('registering a tool action records its impact; an unchanged registration records nothing; a change does', async () => {
    // as critical and irreversible, a registration lowers nothing: one admin records it
    const first = await admin().put('/v1/inventory/helm/upgrade', { impact: 'critical', reversible: false })
    assert.equal(first.statusCode, 200, first.body)
    assert.equal(first.json().status, 'applied')
    assert.deepEqual(
      first.json().events.map((e: { type: string; stream: string }) => [e.type, e.stream]),
      [['ToolActionRegistered', 'tool-helm.upgrade']],
    )
    const same = await appendsNothing(api, () =>
      admin().put('/v1/inventory/helm/upgrade', { impact: 'critical', reversible: false }),
    )
    assert.equal(same.statusCode, 200)
    assert.deepEqual(same.json().events, [])

    const changed = await admin().put('/v1/inventory/helm/upgrade', {
      impact: 'critical',
      reversible: false,
      description: 'upgrades a release',
    })
    assert.equal(changed.json().events.length, 1)

    // lowering the impact or marking it reversible widens authority: it waits for a second admin
    const lowered = await admin().put('/v1/inventory/helm/upgrade', { impact: 'low', reversible: false })
    assert.equal(lowered.statusCode, 202, lowered.body)
    assert.match(lowered.json().widens, /lowers helm.upgrade from 'critical' to 'low'/)
    const reversible = await admin().put('/v1/inventory/helm/upgrade', {
      impact: 'critical',
      reversible: true,
    })
    assert.equal(reversible.statusCode, 202, reversible.body)
    assert.match(reversible.json().widens, /marks helm.upgrade reversible/)
    const refused = await api
      .as('admin-2', 'policy-admin')
      .post(`/v1/changes/${lowered.json().requestId}/refusal`, { reason: 'helm upgrades are not low impact' })
    assert.equal(refused.statusCode, 201, refused.body)
    const view = await reader().get('/v1/inventory/helm/upgrade')
    assert.equal(view.statusCode, 200, view.body)
    const body = view.json()
    assert.deepEqual(
      { tool: body.tool, action: body.action, impact: body.impact, reversible: body.reversible },
      { tool: 'helm', action: 'upgrade', impact: 'critical', reversible: false },
    )
    assert.equal(body.description, 'upgrades a release')
    assert.equal(body.registeredBy, 'admin')
    assert.equal(body.eventId, changed.json().events[0].id)
  })

  test('the list holds every registered tool action', async () => {
    await admin().put('/v1/inventory/terraform/apply', { impact: 'critical', reversible: false })
    await api.settle()
    const listed = (await reader().get('/v1/inventory')).json().toolActions as {
      tool: string
      action: string
      impact: string
    }[]
    const byName = new Map(listed.map((t) => [`${t.tool}.${t.action}`, t.impact]))
    for (const { tool, action, impact } of SEED.toolActions)
      assert.equal(byName.get(`${tool}.${action}`), impact)
    assert.equal(byName.get('terraform.apply'), 'critical')
  })

  test('a tool or action name with a dot is refused: no two pairs may share a name', async () => {
    for (const url of ['/v1/inventory/aws/s3.delete', '/v1/inventory/aws.s3/delete']) {
      const answer = await appendsNothing(api, () =>
        admin().put(url, { impact: 'critical', reversible: false }),
      )
      const error = expectError(answer, 400, 'invalid')
      assert.ok(
        fieldsOf(error).some((f) => f.startsWith('params.')),
        fieldsOf(error).join(', '),
      )
    }
  })

  test('an unregistered tool action is a 404', async () => {
    expectError(await reader().get('/v1/inventory/rm/rf'), 404, 'not-found')
  })

  test('only a policy-admin registers (403)', async () => {
    for (const client of [api.as('agent-1', 'agent'), api.as('approver-1', 'approver', 'auditor')]) {
      expectError(
        await appendsNothing(api, () =>
          client.put('/v1/inventory/kubectl/scale', { impact: 'read', reversible: true }),
        ),
        403,
        'forbidden',
      )
    }
    assert.equal((await reader().get('/v1/inventory/kubectl/scale')).json().impact, 'high')
  })

  test('a bad body or path is a 400 naming the field', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/v1/inventory/kubectl/scale', { impact: 'extreme', reversible: true }, 'body.impact'],
      ['/v1/inventory/kubectl/scale', { impact: 'low' }, 'body.reversible'],
      ['/v1/inventory/kubectl/scale', { impact: 'low', reversible: 'yes' }, 'body.reversible'],
      ['/v1/inventory/kubectl/scale', { impact: 'low', reversible: true, tool: 'other' }, 'body'],
      ['/v1/inventory/bad%20tool/scale', { impact: 'low', reversible: true }, 'params.tool'],
    ]
    for (const [url, body, field] of cases) {
      const error = expectError(await appendsNothing(api, () => admin().put(url, body)), 400, 'invalid')
      assert.ok(fieldsOf(error).includes(field), `${field} in ${fieldsOf(error)}`)
    }
  })

  test('a retried registration with the same Idempotency-Key returns the first answer', async () => {
    const headers = { 'idempotency-key': 'inv-1' }
    const first = await admin().put(
      '/v1/inventory/redis/flushall',
      { impact: 'high', reversible: false },
      headers,
    )
    assert.equal(first.json().events.length, 1)
    const retried = await appendsNothing(api, () =>
      admin().put('/v1/inventory/redis/flushall', { impact: 'high', reversible: false }, headers),
    )
    assert.equal(retried.json().duplicate, true)
    assert.deepEqual(retried.json().events, first.json().events)
  })
})
