import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { MAX_RESOURCE_NAME_LENGTH } from '../../src/domain/events.js'
import { appendsNothing, expectError, startTestApi, type TestApi } from '../support/api.js'

const fieldsOf = (error: { details: unknown }) =>
  (error.details as { fields: { field: string }[] }).fields.map((f) => f.field)

const at = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString()

describe('observation routes', () => {
  let api: TestApi
  const observer = () => api.as('observer-1', 'observer')
  const observation = (version: string, observedAt: string) => ({
    environment: 'production',
    resource: 'deployment/api',
    version,
    digest: `sha256:api-${version}`,
    observedAt,
  })

  before(async () => {
    api = await startTestApi()
  })
  after(() => api.close())

  test('an observation is recorded and the latest one is served, by its URL-encoded resource', async () => {
    const older = observation('v1', at(60))
    const first = await observer().post('/v1/observations', older)
    assert.equal(first.statusCode, 201, first.body)
    assert.deepEqual(
      first.json().events.map((e: { type: string; stream: string }) => [e.type, e.stream]),
      [['StateObserved', 'resource-production.deployment/api']],
    )
    const newer = observation('v2', at(1))
    const second = await api.as('observer-2', 'observer').post('/v1/observations', newer)
    assert.equal(second.statusCode, 201, second.body)

    const latest = await api.as('auditor-1', 'auditor').get('/v1/observations/production/deployment%2Fapi')
    assert.equal(latest.statusCode, 200, latest.body)
    const body = latest.json()
    assert.deepEqual(
      {
        environment: body.environment,
        resource: body.resource,
        version: body.version,
        digest: body.digest,
        observedAt: body.observedAt,
      },
      newer,
    )
    assert.equal(body.observedBy, 'observer-2')
    assert.equal(body.eventId, second.json().events[0].id)
    assert.equal(body.position, second.json().events[0].position)
  })

  test('an observation older than the latest is a 409; the same one again records nothing', async () => {
    const fresh = observation('v3', at(0))
    assert.equal((await observer().post('/v1/observations', fresh)).statusCode, 201)
    const stale = await appendsNothing(api, () =>
      observer().post('/v1/observations', observation('v0', at(3600))),
    )
    assert.match(expectError(stale, 409, 'conflict').message, /stale observation/)
    const repeated = await appendsNothing(api, () => observer().post('/v1/observations', fresh))
    assert.equal(repeated.statusCode, 201)
    assert.deepEqual(repeated.json().events, [])
  })

  test('only an observer may observe (403): what an agent says about state is not evidence', async () => {
    for (const client of [
      api.as('agent-1', 'agent'),
      api.as('agent-2', 'agent', 'observer'),
      api.as('approver-1', 'approver'),
      api.as('admin', 'policy-admin'),
      api.as('exec-1', 'executor', 'auditor'),
    ]) {
      expectError(
        await appendsNothing(api, () => client.post('/v1/observations', observation('v9', at(0)))),
        403,
        'forbidden',
      )
    }
  })

  test('an observation dated in the future beyond the allowed skew is a 400, and never locks out the observer', async () => {
    const future = { ...observation('v-future', at(-86_400)), resource: 'deployment/clock' }
    const refused = await appendsNothing(api, () => observer().post('/v1/observations', future))
    const error = expectError(refused, 400, 'invalid')
    assert.equal((error.details as { specification: string }).specification, 'observationNotFromTheFuture')
    const withinSkew = await observer().post('/v1/observations', {
      ...observation('v-skew', at(-2)),
      resource: 'deployment/clock',
    })
    assert.equal(withinSkew.statusCode, 201, withinSkew.body)
    const next = await observer().post('/v1/observations', {
      ...observation('v-next', at(-3)),
      resource: 'deployment/clock',
    })
    assert.equal(next.statusCode, 201, 'the observer still records newer state')
  })

  test('a resource is one percent-encoded path segment on the observation and audit routes alike', async () => {
    const names = [
      'db/users',
      'reports/q1 2026 (draft)',
      '100% sure/a+b?c#d&e=f;g@h',
      'café/ñandú',
      `deep/${'x/'.repeat(247)}x`,
    ]
    assert.equal(names.at(-1)?.length, MAX_RESOURCE_NAME_LENGTH, 'the longest name a resource may have')
    for (const [i, resource] of names.entries()) {
      const posted = await observer().post('/v1/observations', { ...observation(`r${i}`, at(0)), resource })
      assert.equal(posted.statusCode, 201, posted.body)
    }
    await api.settle()
    for (const [i, resource] of names.entries()) {
      const segment = encodeURIComponent(resource)
      const latest = await observer().get(`/v1/observations/production/${segment}`)
      assert.equal(latest.statusCode, 200, `${resource}: ${latest.body}`)
      assert.deepEqual([latest.json().resource, latest.json().version], [resource, `r${i}`])
      const audit = await api.as('auditor-1', 'auditor').get(`/v1/audit/resources/production/${segment}`)
      assert.equal(audit.statusCode, 200, `${resource}: ${audit.body}`)
      assert.deepEqual([audit.json().resource, audit.json().lastObservation.version], [resource, `r${i}`])
    }
    // a slash left as it is makes another path: no route answers it
    expectError(await observer().get('/v1/observations/production/db/users'), 404, 'not-found')
  })

  test('a resource never observed is a 404', async () => {
    expectError(await observer().get('/v1/observations/production/deployment%2Fnone'), 404, 'not-found')
  })

  test('a bad body or path is a 400 naming the field', async () => {
    const good = observation('v5', at(0))
    const cases: [Record<string, unknown>, string][] = [
      [{ ...good, observedAt: 'yesterday' }, 'body.observedAt'],
      [{ ...good, observedAt: '2025-01-01T00:00:00+02:00' }, 'body.observedAt'],
      [{ ...good, environment: 'Production' }, 'body.environment'],
      [{ ...good, version: '' }, 'body.version'],
      [{ ...good, digest: undefined }, 'body.digest'],
      [{ ...good, observer: 'someone' }, 'body'],
    ]
    for (const [body, field] of cases) {
      const error = expectError(
        await appendsNothing(api, () => observer().post('/v1/observations', body)),
        400,
        'invalid',
      )
      assert.ok(fieldsOf(error).includes(field), `${field} in ${fieldsOf(error)}`)
    }
    const badPath = expectError(
      await observer().get('/v1/observations/PROD/deployment%2Fapi'),
      400,
      'invalid',
    )
    assert.ok(fieldsOf(badPath).includes('params.environment'))
  })

  test('a retried observation with the same Idempotency-Key returns the first answer', async () => {
    const headers = { 'idempotency-key': 'obs-1' }
    const body = { ...observation('v6', at(0)), resource: 'deployment/idem' }
    const first = await observer().post('/v1/observations', body, headers)
    assert.equal(first.json().events.length, 1)
    const retried = await appendsNothing(api, () => observer().post('/v1/observations', body, headers))
    assert.equal(retried.json().duplicate, true)
    assert.deepEqual(retried.json().events, first.json().events)
  })
})
