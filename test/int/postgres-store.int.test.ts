import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type pg from 'pg'
import { canonicalize } from '../../src/domain/canonical.js'
import { chainHash } from '../../src/store/chain.js'
import { type NewEvent, type StoredEvent, WrongExpectedVersionError } from '../../src/store/port.js'
import { openPostgresEventStore, type PostgresEventStore } from '../../src/store/postgres/event-store.js'
import { verifyLedger } from '../../src/store/verify.js'
import { eventStoreContract } from '../contract/event-store.contract.js'
import { admin, freshDatabase, freshSchema, postgresServer } from '../support/postgres.js'

const server = await postgresServer()
const skip = 'skip' in server ? server.skip : false
const url = 'url' in server ? server.url : ''

const noted = (n: number, type = 'Noted'): NewEvent => ({ type, data: { n }, metadata: { actor: 'tester' } })
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('PostgreSQL ledger', { skip }, () => {
  eventStoreContract('PostgreSQL', async (clock) => {
    const schema = freshSchema(url)
    const opened: PostgresEventStore[] = []
    const open = async () => {
      const store = await openPostgresEventStore({ url, clock, schema: schema.name })
      opened.push(store)
      return store
    }
    return {
      store: await open(),
      reopen: open,
      cleanup: async () => {
        await Promise.all(opened.map((store) => store.close()))
        await schema.drop()
      },
    }
  })

  describe('PostgresEventStore on a real server', () => {
    /** Run after each test, last first: closes what it opened and drops its schemas and databases. */
    let cleanups: (() => Promise<void>)[] = []
    afterEach(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup()
      cleanups = []
    })

    /** A store in a fresh schema; `again` opens another store on the same ledger. */
    const ledger = async () => {
      const schema = freshSchema(url)
      cleanups.push(schema.drop)
      const again = async () => {
        const store = await openPostgresEventStore({ url, schema: schema.name })
        cleanups.push(() => store.close())
        return store
      }
      return { store: await again(), again, schema: schema.name }
    }

    /** A ledger of `count` events over three streams, to be tampered with. */
    const seed = async (count: number) => {
      const { store, again, schema } = await ledger()
      for (let n = 1; n <= count; n++) await store.append(`s-${n % 3}`, [noted(n)], 'any')
      const events = await store.readAll(0)
      await store.close()
      const tamperAndVerify = async (tamper: (db: pg.Client) => Promise<unknown>) => {
        await admin(url, async (db) => {
          await db.query(`SET search_path TO ${schema}`)
          await tamper(db)
        })
        return verifyLedger(await again())
      }
      return { events, tamperAndVerify }
    }

    it('batches concurrent appends into far fewer transactions than appends', async () => {
      const { store } = await ledger()
      await Promise.all(range(1, 64).map((n) => store.append(`s-${n}`, [noted(n)], 'no-stream')))
      const { transactions, appends } = store.stats()
      assert.equal(appends, 64)
      assert.ok(transactions > 0 && transactions < 64, `${transactions} transactions for 64 appends`)
    })

    it('stores data as the exact canonical text it hashed, \\u0000 included', async () => {
      const { store, schema } = await ledger()
      const data = { text: 'nul \u0000 é 😀', '10': 1, '9': 2, nested: { b: [1.5, null], a: true } }
      const [stored] = (await store.append('s', [{ type: 'Odd', data, metadata: { actor: 'x' } }], 'any'))
        .events
      const { rows } = await admin(url, (c) =>
        c.query<{ data: string }>(`SELECT data::text AS data FROM ${schema}.events WHERE position = 1`),
      )
      assert.equal(rows[0]?.data, canonicalize(data))
      assert.deepEqual((await store.readAll(0))[0], stored)
      assert.equal((await verifyLedger(store)).ok, true)
    })

    it('rejects only the call the database refuses, and commits the rest of its batch', async () => {
      const { store, schema } = await ledger()
      await store.append('s', [noted(1)], 'any')
      await admin(url, (c) =>
        c.query(`
          CREATE FUNCTION ${schema}.poison() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'poisoned'; END $$;
          CREATE TRIGGER poison BEFORE INSERT ON ${schema}.events
            FOR EACH ROW WHEN (NEW.type = 'Poison') EXECUTE FUNCTION ${schema}.poison();`),
      )
      const outcomes = await Promise.allSettled([
        store.append('s', [noted(2)], 1),
        store.append('t', [noted(1, 'Poison')], 'any'),
        store.append('u', [noted(1)], 'no-stream'),
      ])
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      )
      assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /poisoned/)
      const all = await store.readAll(0)
      assert.deepEqual(
        all.map((e) => [e.position, e.stream, e.streamVersion]),
        [
          [1, 's', 1],
          [2, 's', 2],
          [3, 'u', 1],
        ],
      )
      assert.equal((await verifyLedger(store)).ok, true)
    })

    describe('names the first bad position after tampering', () => {
      it('verifies an untouched ledger', async () => {
        const { events, tamperAndVerify } = await seed(10)
        const report = await tamperAndVerify(async () => {})
        assert.deepEqual(report, {
          ok: true,
          checked: 10,
          head: { position: 10, hash: events[9]?.hash },
          firstFault: null,
        })
      })

      it('a modified event', async () => {
        const { tamperAndVerify } = await seed(10)
        const report = await tamperAndVerify((db) =>
          db.query(`UPDATE events SET data = '{"n":999}' WHERE position = 6`),
        )
        assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 6 })
        assert.equal(report.checked, 5)
      })

      it('a modified time', async () => {
        const { tamperAndVerify } = await seed(10)
        const report = await tamperAndVerify((db) =>
          db.query(`UPDATE events SET recorded_at = recorded_at + interval '1 ms' WHERE position = 4`),
        )
        assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 4 })
      })

      it('the gap a deleted event leaves', async () => {
        const { tamperAndVerify } = await seed(10)
        const report = await tamperAndVerify((db) => db.query('DELETE FROM events WHERE position = 4'))
        assert.deepEqual(report.firstFault, { kind: 'gap', position: 5, expectedPosition: 4 })
      })

      it('a forged event appended at the end', async () => {
        const { events, tamperAndVerify } = await seed(10)
        const report = await tamperAndVerify((db) =>
          db.query(
            `INSERT INTO events (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
             VALUES (11, '0190c0de-0000-7000-8000-000000000000', 's-0', 99, 'Forged', '2025-01-01T00:00:00.000Z',
                     '{}', '{"actor":"intruder"}', $1, $2)`,
            [events[9]?.hash, 'f'.repeat(64)],
          ),
        )
        assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 11 })
        assert.equal(report.checked, 10)
      })

      it('the event after one inserted in the middle, even with a correctly computed hash', async () => {
        const { events, tamperAndVerify } = await seed(10)
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
        const report = await tamperAndVerify(async (db) => {
          // shift positions 6.. up by one in two steps to keep the primary key unique
          await db.query('UPDATE events SET position = -position WHERE position >= 6')
          await db.query('UPDATE events SET position = 1 - position WHERE position < 0')
          await db.query(
            `INSERT INTO events (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
            [
              6,
              forged.id,
              forged.stream,
              1,
              forged.type,
              forged.recordedAt,
              canonicalize(forged.data),
              canonicalize(forged.metadata),
              before.hash,
              chainHash(before.hash, forged),
            ],
          )
        })
        assert.deepEqual(report.firstFault, { kind: 'broken-link', position: 7 })
        assert.equal(report.checked, 6)
      })

      it('the first of two events whose data were swapped', async () => {
        const { tamperAndVerify } = await seed(10)
        const report = await tamperAndVerify((db) =>
          db.query(`UPDATE events SET data = CASE position WHEN 3 THEN (SELECT data FROM events WHERE position = 7)
                                                            ELSE (SELECT data FROM events WHERE position = 3) END
                    WHERE position IN (3, 7)`),
        )
        assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 3 })
        assert.equal(report.checked, 2)
      })
    })

    describe('two service instances on one database', () => {
      /** Two stores with pools of their own, as two processes would have, on a fresh database. */
      const twoInstances = async () => {
        const database = await freshDatabase(url)
        cleanups.push(() => database.drop())
        // opened together: both create the tables at once
        const [a, b] = await Promise.all([
          openPostgresEventStore({ url: database.url }),
          openPostgresEventStore({ url: database.url }),
        ])
        cleanups.push(
          () => a.close(),
          () => b.close(),
        )
        return { a, b, database: database.name }
      }

      it('loses no append, forks no chain and keeps every stream contiguous under concurrent load', async () => {
        const { a, b } = await twoInstances()
        const acknowledged: StoredEvent[] = []
        let conflicts = 0
        /** 500 appends from 32 concurrent writers: to a shared stream, its own stream, and a contended one. */
        const load = async (store: PostgresEventStore, name: string) => {
          let next = 0
          const writer = async (w: number) => {
            let own = 0
            for (let n = next++; n < 500; n = next++) {
              if (n % 3 === 0) {
                acknowledged.push(...(await store.append(`shared-${n % 2}`, [noted(n)], 'any')).events)
              } else if (n % 3 === 1) {
                const result = await store.append(`${name}-${w}`, [noted(n)], own)
                own += 1
                acknowledged.push(...result.events)
              } else {
                acknowledged.push(...(await appendWithRetry(store, `contended-${n % 4}`, noted(n))))
              }
            }
          }
          await Promise.all(range(1, 32).map(writer))
        }
        const appendWithRetry = async (store: PostgresEventStore, stream: string, event: NewEvent) => {
          for (;;) {
            const version = (await store.readStream(stream)).length
            try {
              return (await store.append(stream, [event], version)).events
            } catch (error) {
              if (!(error instanceof WrongExpectedVersionError)) throw error
              conflicts += 1
            }
          }
        }
        const started = performance.now()
        await Promise.all([load(a, 'a'), load(b, 'b')])
        const seconds = (performance.now() - started) / 1000
        const all = await a.readAll(0, 1_000_000)
        assert.equal(acknowledged.length, 1000)
        assert.deepEqual(
          all.map((e) => e.position),
          range(1, 1000),
        )
        const byId = new Map(all.map((e) => [e.id, e]))
        for (const event of acknowledged) assert.deepEqual(byId.get(event.id), event)
        const versions = new Map<string, number[]>()
        for (const e of all) versions.set(e.stream, [...(versions.get(e.stream) ?? []), e.streamVersion])
        for (const [stream, list] of versions) assert.deepEqual(list, range(1, list.length), stream)
        const report = await verifyLedger(b)
        assert.equal(report.ok, true)
        assert.equal(report.checked, 1000)
        const stats = [a.stats(), b.stats()]
        const transactions = stats.reduce((sum, s) => sum + s.transactions, 0)
        console.log(
          `two instances: 1000 appends (a third read-check-retry on 4 contended streams) in ${seconds.toFixed(2)} s, ` +
            `${transactions} transactions, ${conflicts} version conflicts retried`,
        )
      })

      it('appends once for an idempotency key sent to both instances at once', async () => {
        const { a, b } = await twoInstances()
        const results = await Promise.all(
          range(1, 20).flatMap((n) => [
            a.append(`s-${n}`, [noted(n)], 'any', { idempotencyKey: `k-${n}` }),
            b.append(`s-${n}`, [noted(n)], 'any', { idempotencyKey: `k-${n}` }),
          ]),
        )
        for (let n = 0; n < 20; n++) {
          const [first, second] = [results[2 * n], results[2 * n + 1]]
          assert.ok(first && second)
          assert.equal([first.duplicate, second.duplicate].filter(Boolean).length, 1)
          assert.deepEqual(first.events, second.events)
        }
        assert.equal((await a.head()).position, 20)
        assert.equal((await verifyLedger(a)).ok, true)
      })

      /** A subscriber on `a`, and the time five appends on `b`, each made once it is idle, take to reach it. */
      const follow = async (a: PostgresEventStore, b: PostgresEventStore) => {
        const seen: number[] = []
        const subscription = a.subscribe(0, async (batch) => {
          for (const e of batch) seen.push(e.position)
        })
        cleanups.push(() => subscription.close())
        const waitFor = async (count: number) => {
          const deadline = Date.now() + 2000
          while (seen.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1))
        }
        const fiveAppends = async () => {
          const from = seen.length
          const started = performance.now()
          for (let n = 1; n <= 5; n++) {
            await b.append('s', [noted(n)], 'any')
            await waitFor(from + n)
          }
          assert.equal(seen.length, from + 5)
          return performance.now() - started
        }
        return { seen, fiveAppends }
      }
      const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

      it('delivers to a subscriber on one instance the appends made on the other, woken by NOTIFY', async () => {
        const { a, b } = await twoInstances()
        const { seen, fiveAppends } = await follow(a, b)
        // let the subscription catch up and its listener connect, so the appends below are live ones
        await settle(300)
        // by polling alone, five appends made each once the feed is idle take about a second
        const elapsed = await fiveAppends()
        assert.deepEqual(seen, range(1, 5))
        assert.ok(elapsed < 500, `5 appends took ${elapsed.toFixed(0)} ms to reach the other instance`)
        console.log(
          `a subscriber saw another instance's appends ${(elapsed / 5).toFixed(1)} ms after each append`,
        )
      })

      it('listens again after its listening connection was killed, polling meanwhile', async () => {
        const { a, b, database } = await twoInstances()
        const { seen, fiveAppends } = await follow(a, b)
        await settle(300)
        const killed = await admin(url, (c) =>
          c.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`,
            [database],
          ),
        )
        assert.equal(killed.rowCount, 1)
        await b.append('s', [noted(0)], 'any')
        // without its listener the subscriber still polls
        await settle(400)
        assert.deepEqual(seen, [1])
        // the listener reconnects a second after it broke
        await settle(1000)
        const elapsed = await fiveAppends()
        assert.ok(elapsed < 500, `5 appends took ${elapsed.toFixed(0)} ms to reach the other instance`)
      })
    })
  })
})
