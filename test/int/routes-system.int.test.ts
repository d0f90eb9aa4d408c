// The public system routes (health, readiness, the verdict keys), Prometheus access both ways, the request
// counter, and ledger verification of a store tampered with underneath the running service.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import Database from 'better-sqlite3'
import type { UnsignedVerdict } from '../../src/decision/decide.js'
import { verifyVerdictSignature } from '../../src/decision/signer.js'
import { type DataOf, streams } from '../../src/domain/events.js'
import { RETRY_AFTER_SECONDS } from '../../src/http/errors.js'
import { dataPaths } from '../../src/runtime.js'
import type { NewEvent } from '../../src/store/port.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'

const withApi = async (
  run: (api: TestApi) => Promise<void>,
  env: Parameters<typeof startTestApi>[0] = {},
) => {
  const api = await startTestApi(env)
  try {
    await run(api)
  } finally {
    await api.close()
  }
}

const observations = (count: number, from = 0): NewEvent[] =>
  Array.from({ length: count }, (_, i) => ({
    type: 'StateObserved',
    data: {
      environment: 'production',
      resource: 'db/main',
      version: `v${from + i}`,
      digest: `sha256:main-${from + i}`,
      observedAt: new Date().toISOString(),
    },
    metadata: { actor: 'observer-1' },
  }))

const samples = (text: string): Map<string, number> =>
  new Map(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => {
        const cut = line.lastIndexOf(' ')
        return [line.slice(0, cut), Number(line.slice(cut + 1))] as const
      }),
  )

test('health answers ok without a token, and the docs mark it public', async () => {
  await withApi(async (api) => {
    const r = await api.app.inject({ method: 'GET', url: '/health' })
    assert.equal(r.statusCode, 200)
    assert.deepEqual(r.json(), { status: 'ok' })
    // a bad token on a public route is not even looked at
    const bad = await api.app.inject({
      method: 'GET',
      url: '/health',
      headers: { authorization: 'Bearer x' },
    })
    assert.equal(bad.statusCode, 200)
    const docs = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json()
    for (const path of ['/health', '/ready', '/.well-known/jwks.json']) {
      assert.deepEqual(docs.paths[path].get.security, [], path)
    }
    assert.deepEqual(docs.paths['/v1/ledger/head'].get.security, undefined)
  })
})

test('ready: 200 when caught up, 503 with Retry-After once the decision service is more than 100 events behind', async () => {
  await withApi(async (api) => {
    const ready = async () => {
      const r = await api.app.inject({ method: 'GET', url: '/ready' })
      return { status: r.statusCode, body: r.json() }
    }
    await api.runtime.store.append('resource-production.db/main', observations(3), 'any')
    await api.settle()
    const head = await api.head()
    assert.equal(head, 3)
    assert.deepEqual(await ready(), {
      status: 200,
      body: { ready: true, ledger: { position: 3 }, decision: { position: 3, lag: 0 }, faults: [] },
    })

    // another writer appends to the same ledger; this instance's world is held at 3, as if it had not followed yet
    const other = openSqliteEventStore({ path: dataPaths(api.config).ledger })
    const decision = api.runtime.decision
    Object.defineProperty(decision, 'position', { configurable: true, get: () => 3 })
    try {
      await other.append('resource-production.db/main', observations(100, 3), 'any')
      const atLimit = await ready()
      assert.equal(atLimit.status, 200, 'a lag of exactly 100 is still ready')
      assert.deepEqual(atLimit.body.decision, { position: 3, lag: 100 })

      await other.append('resource-production.db/main', observations(1, 103), 'any')
      const behind = await ready()
      assert.equal(behind.status, 503)
      assert.equal(behind.body.ready, false)
      assert.deepEqual(behind.body.ledger, { position: 104 })
      assert.deepEqual(behind.body.decision, { position: 3, lag: 101 })
      assert.match(behind.body.reason, /101 events behind/)
      // asked again in a second, as every 503 says; a ready answer says nothing of the kind
      const retry = async () =>
        (await api.app.inject({ method: 'GET', url: '/ready' })).headers['retry-after']
      assert.equal(await retry(), String(RETRY_AFTER_SECONDS))

      Reflect.deleteProperty(decision, 'position')
      await api.settle()
      const again = await ready()
      assert.equal(again.status, 200)
      assert.equal(await retry(), undefined)
      assert.deepEqual(again.body.decision, { position: 104, lag: 0 })
    } finally {
      Reflect.deleteProperty(decision, 'position')
      await other.close()
    }
  })
})

test('ready: 503 with Retry-After when the ledger does not answer', async () => {
  await withApi(async (api) => {
    await api.runtime.store.close()
    const r = await api.app.inject({ method: 'GET', url: '/ready' })
    assert.equal(r.statusCode, 503)
    assert.equal(r.json().ready, false)
    assert.deepEqual(r.json().ledger, { position: null })
    assert.equal(r.json().reason, 'the ledger does not answer')
    assert.equal(r.headers['retry-after'], String(RETRY_AFTER_SECONDS))
    // liveness is another matter: the process still serves
    assert.equal((await api.app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  })
})

test('jwks: the published key verifies a verdict recorded in the ledger, and nothing altered', async () => {
  await withApi(async (api) => {
    await seedWorld(api)
    const proposed = await api.as('agent-1', 'agent').post('/v1/proposals', {
      agentId: 'agent-1',
      executingIdentity: SEED.executingIdentity,
      tool: 'cache',
      action: 'flush',
      resource: SEED.resource,
      environment: 'production',
      plan: { flush: 'all' },
      expectedImpact: 'low',
      snapshot: { version: 'v1' },
    })
    assert.equal(proposed.statusCode, 201, proposed.body)
    await api.settle()
    const stream = await api.runtime.store.readStream(streams.proposal(proposed.json().proposalId))
    const recorded = stream.find((e) => e.type === 'VerdictIssued')
    assert.ok(recorded, 'a verdict was recorded')
    const verdict = recorded.data as DataOf<'VerdictIssued'>

    const r = await api.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    assert.equal(r.statusCode, 200)
    assert.match(String(r.headers['cache-control']), /(^|[ ,])max-age=300($|[ ,])/)
    const jwks = r.json()
    assert.equal(jwks.keys.length, 2, 'the verdict key and the embedded token key')
    assert.deepEqual(
      { kty: jwks.keys[0].kty, crv: jwks.keys[0].crv, alg: jwks.keys[0].alg, kid: jwks.keys[0].kid },
      { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', kid: api.runtime.verdictSigner.keyId },
    )
    assert.equal(jwks.keys[0].d, undefined, 'never the private part')

    const signed: UnsignedVerdict = await verifyVerdictSignature(verdict, jwks)
    assert.equal(signed.verdictId, verdict.verdictId)
    assert.equal(signed.decision, 'allow')
    await assert.rejects(verifyVerdictSignature({ ...verdict, decision: 'block' }, jwks), /not this verdict/)
  })
})

test('prometheus: needs auditor or policy-admin by default, and counts requests by route pattern', async () => {
  await withApi(async (api) => {
    assert.equal((await api.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401)
    const denied = await api.as('agent-1', 'agent').get('/metrics')
    assert.equal(denied.statusCode, 403)
    assert.equal(denied.json().error, 'forbidden')
    for (let i = 0; i < 3; i += 1) await api.app.inject({ method: 'GET', url: '/health' })
    await api.app.inject({ method: 'GET', url: '/no/such/route/42' })
    await api.as('someone', 'auditor').get('/v1/audit/actions/no-such-proposal')

    const r = await api.as('admin', 'policy-admin').get('/metrics')
    assert.equal(r.statusCode, 200, r.body)
    const s = samples(r.body)
    assert.equal(s.get('governance_http_requests_total{method="GET",route="/health",status="200"}'), 3)
    assert.equal(s.get('governance_http_requests_total{method="GET",route="unmatched",status="404"}'), 1)
    assert.equal(
      s.get(
        'governance_http_requests_total{method="GET",route="/v1/audit/actions/:proposalId",status="404"}',
      ),
      1,
    )
    assert.equal(s.get('governance_http_requests_total{method="GET",route="/metrics",status="401"}'), 1)
    assert.equal(s.get('governance_http_requests_total{method="GET",route="/metrics",status="403"}'), 1)
    assert.equal(s.get('governance_ledger_head_position'), 0)
    // an empty ledger: every series with a fixed list of labels is there, at zero
    assert.equal(s.get('governance_unsafe_actions_blocked_total{how="refused-at-gate"}'), 0)
    assert.equal(s.get('governance_unsafe_actions_blocked_total{how="ended-blocked"}'), 0)
    assert.equal(s.get('governance_unsafe_actions_blocked_by_impact_total{impact="critical"}'), 0)
    assert.equal(s.get('governance_actions_ended_total{end="expired"}'), 0)
    assert.equal(s.get('governance_violations_total{kind="no-verdict"}'), 0)
    assert.equal(s.get('governance_verdicts_total{decision="allow"}'), 0)
    assert.equal(s.get('governance_executions_refused_total'), 0)
    assert.equal(s.get('governance_actions_awaiting_evidence'), 0)
    assert.equal(s.get('governance_unrecovered_failures'), 0)
    assert.equal(s.get('governance_faults'), 0)
    assert.equal(s.get('governance_time_to_recovery_seconds_count'), 0)
    assert.equal(s.get('governance_time_to_recovery_seconds_bucket{le="+Inf"}'), 0)
    // no series for the raw path: the counter's labels stay bounded
    assert.doesNotMatch(r.body, /no\/such\/route/)
  })
})

test('prometheus: METRICS_PUBLIC serves it without a token; the API still needs one', async () => {
  await withApi(
    async (api) => {
      await api.runtime.store.append('resource-production.db/main', observations(2), 'any')
      await api.settle()
      const r = await api.app.inject({ method: 'GET', url: '/metrics' })
      assert.equal(r.statusCode, 200, r.body)
      assert.equal(samples(r.body).get('governance_ledger_head_position'), 2)
      assert.equal(samples(r.body).get('governance_decision_lag_events'), 0)
      assert.equal((await api.app.inject({ method: 'GET', url: '/v1/ledger/head' })).statusCode, 401)
    },
    { METRICS_PUBLIC: 'true' },
  )
})

test('ledger verify names the first event changed underneath the running service', async () => {
  await withApi(async (api) => {
    await api.runtime.store.append('resource-production.db/main', observations(5), 'any')
    await api.settle()
    const auditor = api.as('auditor-1', 'auditor')
    assert.equal((await auditor.get('/v1/ledger/verify')).json().ok, true)

    const raw = new Database(join(api.dataDir, 'ledger.db'))
    try {
      const row = raw.prepare('SELECT metadata FROM events WHERE position = 3').get() as { metadata: string }
      const forged = { ...JSON.parse(row.metadata), actor: 'someone-else' }
      raw.prepare('UPDATE events SET metadata = ? WHERE position = 3').run(JSON.stringify(forged))
    } finally {
      raw.close()
    }
    const r = await auditor.get('/v1/ledger/verify')
    assert.equal(r.statusCode, 200)
    const report = r.json()
    assert.equal(report.ok, false)
    assert.equal(report.checked, 2)
    assert.equal(report.head.position, 2)
    assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 3 })
  })
})
