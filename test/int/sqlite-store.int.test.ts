import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { chainHash } from '../../src/store/chain.js'
import type { StoredEvent } from '../../src/store/port.js'
import { openSqliteEventStore, type SqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { verifyLedger } from '../../src/store/verify.js'
import { eventStoreContract } from '../contract/event-store.contract.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ledger-sqlite-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

let files = 0
const freshPath = () => path.join(dir, `ledger-${++files}.db`)

eventStoreContract('sqlite', async (clock) => {
  const file = freshPath()
  const opened: SqliteEventStore[] = []
  const open = () => {
    const store = openSqliteEventStore({ path: file, clock })
    opened.push(store)
    return store
  }
  return {
    store: open(),
    reopen: async () => open(),
    cleanup: async () => {
      await Promise.all(opened.map((store) => store.close()))
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true })
    },
  }
})

/** A ledger of `count` events over three streams, closed, ready to be tampered with. */
const seed = async (count: number): Promise<{ file: string; events: StoredEvent[] }> => {
  const file = freshPath()
  const store = openSqliteEventStore({ path: file })
  for (let n = 1; n <= count; n++) {
    await store.append(`s-${n % 3}`, [{ type: 'Noted', data: { n }, metadata: { actor: 'seed' } }], 'any')
  }
  const events = await store.readAll(0)
  await store.close()
  return { file, events }
}

/** Changes the file behind the store's back, then verifies the ledger through a fresh store. */
const tamperAndVerify = async (file: string, tamper: (db: Database.Database) => void) => {
  const raw = new Database(file)
  tamper(raw)
  raw.close()
  const store = openSqliteEventStore({ path: file })
  try {
    return await verifyLedger(store)
  } finally {
    await store.close()
  }
}

describe('SqliteEventStore on a real file', () => {
  it('runs in WAL mode with synchronous=FULL', async () => {
    const store = openSqliteEventStore({ path: freshPath() })
    assert.deepEqual(store.pragmas(), { journalMode: 'wal', synchronous: 2 })
    await store.close()
  })

  it('batches concurrent appends into far fewer transactions than appends', async () => {
    const store = openSqliteEventStore({ path: freshPath() })
    const event = { type: 'Noted', data: {}, metadata: { actor: 'load' } }
    await Promise.all(Array.from({ length: 64 }, (_, n) => store.append(`s-${n}`, [event], 'no-stream')))
    const { transactions, appends } = store.stats()
    assert.equal(appends, 64)
    assert.ok(transactions > 0 && transactions < 64, `${transactions} transactions for 64 appends`)
    await store.close()
  })

  it('verifies an untouched ledger', async () => {
    const { file, events } = await seed(10)
    const report = await tamperAndVerify(file, () => {})
    assert.deepEqual(report, {
      ok: true,
      checked: 10,
      head: { position: 10, hash: events[9]?.hash },
      firstFault: null,
    })
  })

  it('names a modified event', async () => {
    const { file } = await seed(10)
    const report = await tamperAndVerify(file, (db) => {
      db.prepare(`UPDATE events SET data = '{"n":999}' WHERE position = 6`).run()
    })
    assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 6 })
    assert.equal(report.checked, 5)
  })

  it('names the gap a deleted event leaves', async () => {
    const { file } = await seed(10)
    const report = await tamperAndVerify(file, (db) => {
      db.prepare('DELETE FROM events WHERE position = 4').run()
    })
    assert.deepEqual(report.firstFault, { kind: 'gap', position: 5, expectedPosition: 4 })
  })

  it('names a forged event appended at the end', async () => {
    const { file, events } = await seed(10)
    const report = await tamperAndVerify(file, (db) => {
      db.prepare(
        `INSERT INTO events (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
         VALUES (11, '0190c0de-0000-7000-8000-000000000000', 's-0', 99, 'Forged', '2025-01-01T00:00:00.000Z',
                 '{}', '{"actor":"intruder"}', ?, ?)`,
      ).run(events[9]?.hash, 'f'.repeat(64))
    })
    assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 11 })
    assert.equal(report.checked, 10)
  })

  it('names the event after one inserted in the middle, even with a correctly computed hash', async () => {
    const { file, events } = await seed(10)
    const before = events[4]
    assert.ok(before)
    const forged = {
      id: '0190c0de-0000-7000-8000-000000000001',
      type: 'Forged',
      stream: 'forged',
      streamVersion: 1,
      position: 6,
      recordedAt: before.recordedAt,
      data: { n: 0 },
      metadata: { actor: 'intruder', correlationId: null, causationId: null, idempotencyKey: null },
    }
    const report = await tamperAndVerify(file, (db) => {
      // shift positions 6.. up by one in two steps to keep the primary key unique
      db.prepare('UPDATE events SET position = -position WHERE position >= 6').run()
      db.prepare('UPDATE events SET position = 1 - position WHERE position < 0').run()
      db.prepare(
        `INSERT INTO events (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        6,
        forged.id,
        forged.stream,
        1,
        forged.type,
        forged.recordedAt,
        JSON.stringify(forged.data),
        JSON.stringify(forged.metadata),
        before.hash,
        chainHash(before.hash, forged),
      )
    })
    assert.deepEqual(report.firstFault, { kind: 'broken-link', position: 7 })
    assert.equal(report.checked, 6)
  })

  it('names the first of two events whose data were swapped', async () => {
    const { file } = await seed(10)
    const report = await tamperAndVerify(file, (db) => {
      const data = db.prepare<[number], string>('SELECT data FROM events WHERE position = ?').pluck()
      const [third, seventh] = [data.get(3), data.get(7)]
      const update = db.prepare('UPDATE events SET data = ? WHERE position = ?')
      update.run(seventh, 3)
      update.run(third, 7)
    })
    assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 3 })
    assert.equal(report.checked, 2)
  })

  it('sees appends made through another connection, as by another process, and continues the chain', async () => {
    const file = freshPath()
    const first = openSqliteEventStore({ path: file })
    const second = openSqliteEventStore({ path: file })
    const event = { type: 'Noted', data: {}, metadata: { actor: 'x' } }
    await first.append('s', [event], 'no-stream')
    await second.append('s', [event], 1)
    await first.append('s', [event], 2)
    assert.deepEqual(
      (await first.readStream('s')).map((e) => [e.position, e.streamVersion]),
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
    )
    assert.equal((await verifyLedger(first)).ok, true)
    await Promise.all([first.close(), second.close()])
  })

  it('rejects every call of a batch whose transaction fails, and stays usable', async () => {
    const file = freshPath()
    const store = openSqliteEventStore({ path: file })
    const event = (type: string) => ({ type, data: {}, metadata: { actor: 'x' } })
    await store.append('s', [event('Noted')], 'any')
    const raw = new Database(file)
    raw.exec(`CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.type = 'Poison'
              BEGIN SELECT RAISE(ABORT, 'poisoned'); END`)
    raw.close()
    const outcomes = await Promise.allSettled([
      store.append('s', [event('Noted')], 1),
      store.append('t', [event('Poison')], 'any'),
      store.append('u', [event('Noted')], 'no-stream'),
    ])
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['rejected', 'rejected', 'rejected'],
    )
    assert.deepEqual((await store.head()).position, 1)
    const next = await store.append('s', [event('Noted')], 1)
    assert.deepEqual(
      next.events.map((e) => [e.position, e.streamVersion]),
      [[2, 2]],
    )
    assert.equal((await verifyLedger(store)).ok, true)
    await store.close()
  })

  it('delivers to a subscriber the appends made through another connection', async () => {
    const file = freshPath()
    const reader = openSqliteEventStore({ path: file })
    const writer = openSqliteEventStore({ path: file })
    const seen: number[] = []
    const subscription = reader.subscribe(0, async (batch) => {
      for (const e of batch) seen.push(e.position)
    })
    await writer.append('s', [{ type: 'Noted', data: {}, metadata: { actor: 'x' } }], 'any')
    const deadline = Date.now() + 2000
    while (seen.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.deepEqual(seen, [1])
    await subscription.close()
    await Promise.all([reader.close(), writer.close()])
  })
})
