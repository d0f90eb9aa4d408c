import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { defaultPolicy } from '../../src/domain/eligibility.js'
import { appendsNothing, expectError, startTestApi, type TestApi } from '../support/api.js'

const fieldsOf = (error: { details: unknown }) =>
  (error.details as { fields: { field: string }[] }).fields.map((f) => f.field)

describe('policy routes', () => {
  let api: TestApi
  const admin = () => api.as('admin', 'policy-admin')
  const reader = () => api.as('agent-1', 'agent')

  before(async () => {
    api = await startTestApi()
  })
  after(() => api.close())

  test('before any policy is published, the current one is a 404 and the list is empty', async () => {
    expectError(await reader().get('/v1/policies/current'), 404, 'not-found')
    assert.deepEqual((await reader().get('/v1/policies')).json(), { policies: [] })
  })

  test('versions are published in order; each is served with who published it and when', async () => {
    const v1 = await admin().post('/v1/policies', defaultPolicy('platform-team', 1))
    assert.equal(v1.statusCode, 201, v1.body)
    assert.equal(v1.json().version, 1)
    assert.deepEqual(
      v1.json().events.map((e: { type: string; stream: string }) => [e.type, e.stream]),
      [['PolicyPublished', 'policy']],
    )

    const skipped = await appendsNothing(api, () =>
      admin().post('/v1/policies', defaultPolicy('platform-team', 3)),
    )
    const error = expectError(skipped, 409, 'conflict')
    assert.deepEqual(error.details, { expected: 2 })
    const stale = await appendsNothing(api, () =>
      admin().post('/v1/policies', { ...defaultPolicy('platform-team', 1), verdictTtlSeconds: 60 }),
    )
    expectError(stale, 409, 'conflict')

    assert.equal(v1.json().status, 'applied', 'the first policy of an empty ledger takes one admin')
    const stored = await api.runtime.store.readStream('policy')
    const recorded = stored[0]?.data as { publishedBy?: string; approvedBy?: string | null } | undefined
    assert.equal(recorded?.publishedBy, 'admin')
    assert.equal(recorded?.approvedBy, null)

    const asked = await admin().post('/v1/policies', {
      ...defaultPolicy('security-team', 2),
      survivalThreshold: 0.95,
    })
    assert.equal(asked.statusCode, 202, asked.body)
    assert.equal(asked.json().status, 'pending')
    assert.match(asked.json().widens, /policy/)
    expectError(await reader().get('/v1/policies/2'), 404, 'not-found')
    const alone = await appendsNothing(api, () =>
      admin().post(`/v1/changes/${asked.json().requestId}/approval`, {}),
    )
    expectError(alone, 403, 'forbidden')
    const v2 = await api
      .as('admin-2', 'policy-admin')
      .post(`/v1/changes/${asked.json().requestId}/approval`, {})
    assert.equal(v2.statusCode, 201, v2.body)
    assert.deepEqual(
      v2.json().events.map((e: { type: string }) => e.type),
      ['ChangeApproved', 'PolicyPublished'],
    )

    const current = (await reader().get('/v1/policies/current')).json()
    assert.equal(current.version, 2)
    assert.equal(current.owner, 'security-team')
    assert.equal(current.survivalThreshold, 0.95)
    assert.equal(current.publishedBy, 'admin')
    assert.equal(current.approvedBy, 'admin-2')
    assert.equal(current.eventId, v2.json().events[1].id)

    const first = (await reader().get('/v1/policies/1')).json()
    assert.deepEqual(
      { ...first, publishedAt: undefined, eventId: undefined },
      {
        ...defaultPolicy('platform-team', 1),
        publishedBy: 'admin',
        approvedBy: null,
        publishedAt: undefined,
        eventId: undefined,
      },
    )
    assert.deepEqual(
      (await reader().get('/v1/policies')).json().policies.map((p: { version: number }) => p.version),
      [1, 2],
    )
    expectError(await reader().get('/v1/policies/9'), 404, 'not-found')
    expectError(await reader().get('/v1/policies/zero'), 400, 'invalid')

    await api.settle()
    assert.equal(api.runtime.decision.world().policy()?.version, 2)
  })

  test('publishing the current version again unchanged records nothing', async () => {
    const current = (await reader().get('/v1/policies/current')).json()
    const { publishedAt: _at, publishedBy: _by, approvedBy: _approved, eventId: _id, ...policy } = current
    const again = await appendsNothing(api, () => admin().post('/v1/policies', policy))
    assert.equal(again.statusCode, 201)
    assert.deepEqual(again.json().events, [])
  })

  test('only a policy-admin publishes (403)', async () => {
    for (const client of [
      api.as('approver-1', 'approver'),
      api.as('auditor-1', 'auditor', 'executor', 'agent'),
    ]) {
      expectError(
        await appendsNothing(api, () => client.post('/v1/policies', defaultPolicy('platform-team', 3))),
        403,
        'forbidden',
      )
    }
  })

  test('a bad policy is a 400 naming the field', async () => {
    const good = defaultPolicy('platform-team', 3)
    const { critical: _critical, ...fourClasses } = good.requirements
    const cases: [Record<string, unknown>, string][] = [
      [{ ...good, survivalThreshold: 2 }, 'body.survivalThreshold'],
      [{ ...good, version: 'three' }, 'body.version'],
      [{ ...good, version: 0 }, 'body.version'],
      [{ ...good, requirements: fourClasses }, 'body.requirements.critical'],
      [{ ...good, owner: undefined }, 'body.owner'],
      [
        {
          ...good,
          requirements: {
            ...good.requirements,
            low: { checks: ['vibes'], approvals: good.requirements.low.approvals },
          },
        },
        'body.requirements.low.checks.0',
      ],
    ]
    for (const [body, field] of cases) {
      const error = expectError(
        await appendsNothing(api, () => admin().post('/v1/policies', body)),
        400,
        'invalid',
      )
      assert.ok(fieldsOf(error).includes(field), `${field} in ${fieldsOf(error)}`)
    }
  })

  test('a retried publication with the same Idempotency-Key returns the first answer', async () => {
    const headers = { 'idempotency-key': 'publish-3' }
    const first = await admin().post('/v1/policies', defaultPolicy('platform-team', 3), headers)
    assert.equal(first.statusCode, 202, first.body)
    const retried = await appendsNothing(api, () =>
      admin().post('/v1/policies', defaultPolicy('platform-team', 3), headers),
    )
    assert.equal(retried.json().duplicate, true)
    assert.deepEqual(retried.json().events, first.json().events)
  })
})
