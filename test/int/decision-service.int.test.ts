import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { everyEvent, recordedDecisions } from '../../src/decision/replay.js'
import { DECISION_ACTOR, DECISION_NAMESPACE, DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner, generateSigningKey, verifyVerdictSignature } from '../../src/decision/signer.js'
import type { DataOf } from '../../src/domain/events.js'
import type { DocStore } from '../../src/store/docs.js'
import type { StoredEvent } from '../../src/store/port.js'
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
    await new History(store, await DecisionService.answering(store, docs, signer), clock, 7).generate(1500)
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

  test('every answer is in the commit of the event it answers, right after it: no event waits for its verdict', async () => {
    const byId = new Map<string, StoredEvent>()
    let answers = 0
    for await (const e of everyEvent(store)) {
      byId.set(e.id, e)
      if (e.metadata.actor !== DECISION_ACTOR) continue
      answers += 1
      const cause = byId.get(e.metadata.causationId ?? '')
      assert.ok(cause, `answer ${e.position} follows its cause`)
      assert.equal(e.recordedAt, cause.recordedAt, `answer ${e.position} is in its cause's commit`)
      assert.equal(e.metadata.idempotencyKey, `decision:${cause.id}`)
    }
    assert.ok(answers > 100, `${answers} answers`)
  })

  test('a world rebuilt from zero (derived.db lost) is the world the write path kept, and appends nothing', async () => {
    const service = await DecisionService.answering(store, docs, signer)
    await service.catchUp()
    const headBefore = await store.head()
    const decisionsBefore = await recordedDecisions(store)
    const worldBefore = docs.dump(DECISION_NAMESPACE)
    assert.ok(
      worldBefore.some(([key]) => key.startsWith('due:')),
      'the history left deadlines behind',
    )
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
    assert.deepEqual(await store.head(), headBefore, 'catching up appends nothing')
    assert.deepEqual(await recordedDecisions(store), decisionsBefore)
    assert.equal(signed, 0, 'catching up folds the answers in the ledger: it signs nothing')
    assert.deepEqual(docs.dump(DECISION_NAMESPACE), worldBefore, 'the same world')
  })

  test('a world of an older layout is rebuilt from zero, giving the same world and appending nothing', async () => {
    const service = await DecisionService.answering(store, docs, signer)
    await service.catchUp()
    const headBefore = await store.head()
    const worldBefore = docs.dump(DECISION_NAMESPACE)
    // the layout before deadlines had keys of their own: no version, one document for every deadline
    const old = new Map<string, unknown>([
      ['__meta', null],
      ['deadlines', { verdicts: {}, recoveries: {} }],
    ])
    docs.commit(DECISION_NAMESPACE, old, headBefore.position)
    const reopened = new DecisionService(store, docs, signer)
    assert.equal(await reopened.catchUp(), headBefore.position)
    assert.deepEqual(docs.dump(DECISION_NAMESPACE), worldBefore)
    assert.deepEqual(await store.head(), headBefore)
  })

  test('a crash after the ledger commit loses only the overlay: a restart folds the ledger to the same world', async () => {
    const service = await DecisionService.answering(store, docs, signer)
    const history = new History(store, service, clock, 99)
    const before = (await recordedDecisions(store)).length
    // the world in derived.db is left behind while the write path answers: only the overlay holds the new state
    const checkpoint = service.runner.checkpoint()
    await history.lifecycle()
    const after = await recordedDecisions(store)
    assert.ok(after.length > before, 'the new proposal got answers')
    const keys = after.map((d) => `${d.causationId}/${d.type}/${JSON.stringify(d.data)}`)
    assert.equal(new Set(keys).size, keys.length, 'no answer appended twice')
    assert.ok(service.position > checkpoint, 'the write path moved on from the committed world')
    // the process dies: the overlay is gone; a new one folds the ledger from the checkpoint it finds
    const restarted = new DecisionService(store, docs, signer)
    await restarted.catchUp()
    const rebuilt = openSqliteDocStore(join(dir, 'rebuilt.db'))
    try {
      const fresh = new DecisionService(store, rebuilt, signer)
      await fresh.catchUp()
      assert.deepEqual(docs.dump(DECISION_NAMESPACE), rebuilt.dump(DECISION_NAMESPACE))
    } finally {
      rebuilt.close()
    }
  })
})

test('a decision world another process moved back is not decided on: appends fail closed until a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-decision-wiped-'))
  const store = openSqliteEventStore({ path: join(dir, 'ledger.db') })
  const docs = openSqliteDocStore(join(dir, 'derived.db'))
  try {
    const service = await DecisionService.answering(store, docs, createVerdictSigner(generateSigningKey()))
    const observed = (n: number) => ({
      type: 'StateObserved',
      data: {
        environment: 'production',
        resource: 'db/main',
        version: `v${n}`,
        digest: `d${n}`,
        observedAt: new Date().toISOString(),
      },
      metadata: { actor: 'observer-1' },
    })
    await store.append('resource-production.db/main', [observed(1)], 'any')
    await service.catchUp()
    // the overlay drops what derived.db now holds
    service.world()
    const head = await store.head()
    // a rebuild run against the live folder wipes the world the overlay was laid over
    docs.wipe(DECISION_NAMESPACE)
    await assert.rejects(
      store.append('resource-production.db/main', [observed(2)], 'any'),
      /went back from position 1 to 0/,
    )
    assert.deepEqual(await store.head(), head, 'nothing appended on a world that is not the ledger’s')
  } finally {
    await store.close()
    docs.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
