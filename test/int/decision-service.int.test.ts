import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { recordedDecisions } from '../../src/decision/replay.js'
import { DECISION_NAMESPACE, DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner, generateSigningKey, verifyVerdictSignature } from '../../src/decision/signer.js'
import type { DataOf } from '../../src/domain/events.js'
import type { DocStore } from '../../src/store/docs.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore, type SqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { FakeClock, History } from '../support/history.js'

describe('the decision service on a real ledger', () => {
  let dir: string
  let store: SqliteEventStore
  let docs: DocStore
  const clock = new FakeClock()
  const signer = createVerdictSigner(generateSigningKey())

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-decision-'))
    store = openSqliteEventStore({ path: join(dir, 'ledger.db'), clock: clock.now })
    docs = openSqliteDocStore(join(dir, 'derived.db'))
    await new History(store, new DecisionService(store, docs, signer), clock, 7).generate(1500)
  })

  after(async () => {
    await store.close()
    docs.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('every verdict carries a signature that verifies offline against the JWKS, bound to its own fields', async () => {
    const jwks = await signer.jwks()
    const verdicts = (await recordedDecisions(store)).filter((d) => d.type === 'VerdictIssued')
    assert.ok(verdicts.length > 50)
    for (const v of verdicts) await verifyVerdictSignature(v.data as DataOf<'VerdictIssued'>, jwks)
    const forged = {
      ...(verdicts[0]?.data as DataOf<'VerdictIssued'>),
      decision: 'allow' as const,
      expiresAt: '2099-01-01T00:00:00.000Z',
    }
    await assert.rejects(verifyVerdictSignature(forged, jwks), /not this verdict/)
    const otherKey = await createVerdictSigner(generateSigningKey()).jwks()
    await assert.rejects(verifyVerdictSignature(verdicts[0]?.data as DataOf<'VerdictIssued'>, otherKey))
  })

  test('no proposal has two verdicts for one revision', async () => {
    const seen = new Set<string>()
    for (const v of (await recordedDecisions(store)).filter((d) => d.type === 'VerdictIssued')) {
      const { proposalId, revision } = v.data as DataOf<'VerdictIssued'>
      const key = `${proposalId}/${revision}`
      assert.ok(!seen.has(key), `two verdicts for ${key}`)
      seen.add(key)
    }
  })

  test('a service that lost its checkpoint decides everything again, signs nothing again and appends nothing twice', async () => {
    const headBefore = await store.head()
    const decisionsBefore = await recordedDecisions(store)
    const worldBefore = docs.dump(DECISION_NAMESPACE)
    docs.wipe(DECISION_NAMESPACE)
    let signed = 0
    const counting = {
      ...signer,
      sign: (data: Parameters<typeof signer.sign>[0]) => {
        signed += 1
        return signer.sign(data)
      },
    }
    const restarted = new DecisionService(store, docs, counting)
    assert.equal(restarted.position, 0)
    assert.equal(await restarted.catchUp(), headBefore.position)
    assert.deepEqual(await store.head(), headBefore, 'the idempotency keys kept every answer single')
    assert.deepEqual(await recordedDecisions(store), decisionsBefore)
    assert.equal(signed, 0, 'every answer was found in the ledger before signing it again')
    assert.deepEqual(docs.dump(DECISION_NAMESPACE), worldBefore, 'the same world')
  })

  test('a world of an older layout is rebuilt from zero, giving the same world and appending nothing', async () => {
    const service = new DecisionService(store, docs, signer)
    await service.catchUp()
    const headBefore = await store.head()
    const worldBefore = docs.dump(DECISION_NAMESPACE)
    assert.ok(
      worldBefore.some(([key]) => key.startsWith('due:')),
      'the history left deadlines behind',
    )
    // the layout before deadlines had keys of their own: no version, one document for every deadline
    const old = new Map<string, unknown>([
      ['__meta', null],
      ['deadlines', { verdicts: {}, recoveries: {} }],
    ])
    docs.commit(DECISION_NAMESPACE, old, headBefore.position)
    const reopened = new DecisionService(store, docs, signer)
    assert.equal(reopened.position, 0, 'the old world was dropped')
    assert.equal(await reopened.catchUp(), headBefore.position)
    assert.deepEqual(docs.dump(DECISION_NAMESPACE), worldBefore)
    assert.deepEqual(await store.head(), headBefore)
  })

  test('subscribed, it answers a new proposal as soon as the evidence lands', async () => {
    const service = new DecisionService(store, docs, signer)
    await service.catchUp()
    service.start()
    try {
      const history = new History(store, service, clock, 99)
      const before = (await recordedDecisions(store)).length
      // the history waits on catchUp, which the subscription races: both must agree on every answer
      await history.lifecycle()
      for (let i = 0; i < 100 && service.position < (await store.head()).position; i += 1) await sleep(20)
      const after = await recordedDecisions(store)
      assert.ok(after.length > before, 'the new proposal got answers')
      const keys = after.map((d) => `${d.causationId}/${d.type}/${JSON.stringify(d.data)}`)
      assert.equal(new Set(keys).size, keys.length, 'no answer appended twice')
    } finally {
      await service.stop()
    }
  })
})
