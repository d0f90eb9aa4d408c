import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { afterEach, describe, it } from 'node:test'
import { type EventData, FORWARDS, START } from '@kurrent/kurrentdb-client'
import { uuidv7 } from '../../src/domain/ids.js'
import { chainHash } from '../../src/store/chain.js'
import { type KurrentDbEventStore, openKurrentDbEventStore } from '../../src/store/kurrentdb/event-store.js'
import { type NewEvent, type StoredEvent, WrongExpectedVersionError } from '../../src/store/port.js'
import { verifyLedger } from '../../src/store/verify.js'
import { eventStoreContract } from '../contract/event-store.contract.js'
import { dropLedger, kurrentDbServer, uniqueLedger, withClient } from '../support/kurrentdb.js'

const server = await kurrentDbServer()
const skip = 'skip' in server ? server.skip : false
const url = 'url' in server ? server.url : ''

const noted = (n: number, type = 'Noted'): NewEvent => ({ type, data: { n }, metadata: { actor: 'tester' } })
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('KurrentDB ledger', { skip }, () => {
  eventStoreContract('KurrentDB', async (clock) => {
    const stream = uniqueLedger()
    const opened: KurrentDbEventStore[] = []
    const open = async () => {
      const store = await openKurrentDbEventStore({ url, clock, stream })
      opened.push(store)
      return store
    }
    return {
      store: await open(),
      reopen: open,
      cleanup: async () => {
        await Promise.all(opened.map((store) => store.close()))
        await dropLedger(url, stream)
      },
    }
  })

  describe('KurrentDbEventStore on a real server', () => {
    /** Run after each test, last first: closes what it opened and deletes its ledger streams. */
    let cleanups: (() => Promise<void>)[] = []
    afterEach(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup()
      cleanups = []
    })

    /** A fresh ledger stream; `again` opens another store on it, as another process would. */
    const ledger = async () => {
      const stream = uniqueLedger()
      cleanups.push(() => dropLedger(url, stream))
      const again = async () => {
        const store = await openKurrentDbEventStore({ url, stream })
        cleanups.push(() => store.close())
        return store
      }
      return { store: await again(), again, stream }
    }

    /** A ledger of `count` events over three streams, closed, to be tampered with through KurrentDB itself. */
    const seed = async (count: number) => {
      const { store, again, stream } = await ledger()
      for (let n = 1; n <= count; n++) await store.append(`s-${n % 3}`, [noted(n)], 'any')
      const events = await store.readAll(0)
      await store.close()
      return { events, again, stream }
    }

    /** A KurrentDB event that looks like a ledger event, claiming to follow `prev`. */
    const forged = (
      prev: StoredEvent,
      hash: (body: Omit<StoredEvent, 'prevHash' | 'hash'>) => string,
    ): EventData => {
      const body = {
        id: uuidv7(),
        type: 'Forged',
        stream: 's-0',
        streamVersion: 99,
        position: prev.position + 1,
        recordedAt: prev.recordedAt,
        data: { n: 0 },
        metadata: { actor: 'intruder', correlationId: null, causationId: null, idempotencyKey: null },
      }
      const { stream, streamVersion, recordedAt, metadata } = body
      return {
        id: body.id,
        contentType: 'application/json',
        type: body.type,
        data: body.data,
        metadata: { stream, streamVersion, recordedAt, metadata, prevHash: prev.hash, hash: hash(body) },
      }
    }

    it('batches concurrent appends into far fewer ledger appends than appends', async () => {
      const { store } = await ledger()
      await Promise.all(range(1, 64).map((n) => store.append(`s-${n}`, [noted(n)], 'no-stream')))
      const { transactions, appends } = store.stats()
      assert.equal(appends, 64)
      assert.ok(transactions > 0 && transactions < 64, `${transactions} ledger appends for 64 appends`)
    })

    it('stores each event as one KurrentDB event of the ledger stream, at revision position - 1', async () => {
      const { store, stream } = await ledger()
      const { events } = await store.appendMany([
        { stream: 'a', events: [noted(1, 'Opened'), noted(2)], expectedVersion: 'no-stream' },
        { stream: 'b', events: [noted(3)], expectedVersion: 'any' },
      ])
      const raw = await withClient(url, async (client) => {
        const found = []
        for await (const { event } of client.readStream(stream, {
          fromRevision: START,
          direction: FORWARDS,
        })) {
          if (event)
            found.push({ id: event.id, type: event.type, revision: event.revision, data: event.data })
        }
        return found
      })
      assert.deepEqual(
        raw,
        events.map((e) => ({ id: e.id, type: e.type, revision: BigInt(e.position - 1), data: e.data })),
      )
    })

    it('rejects only the call the server refuses, and commits the rest', async () => {
      const { store } = await ledger()
      await store.append('s', [noted(1)], 'any')
      // over KurrentDB's default MaxAppendSize of 1 MiB
      const huge: NewEvent = {
        type: 'Huge',
        data: { text: 'x'.repeat(1_200_000) },
        metadata: { actor: 'tester' },
      }
      const outcomes = await Promise.allSettled([
        store.append('s', [noted(2)], 1),
        store.append('t', [huge], 'any'),
        store.append('u', [noted(1)], 'no-stream'),
      ])
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      )
      assert.deepEqual(
        (await store.readAll(0)).map((e) => [e.position, e.stream, e.streamVersion]),
        [
          [1, 's', 1],
          [2, 's', 2],
          [3, 'u', 1],
        ],
      )
      assert.equal((await verifyLedger(store)).ok, true)
    })

    describe('names the first bad position after tampering through KurrentDB', () => {
      it('a forged event appended at the end', async () => {
        const { events, again, stream } = await seed(10)
        const last = events[9]
        assert.ok(last)
        await withClient(url, (c) =>
          c.appendToStream(
            stream,
            forged(last, () => 'f'.repeat(64)),
          ),
        )
        const report = await verifyLedger(await again())
        assert.deepEqual(report.firstFault, { kind: 'bad-hash', position: 11 })
        assert.equal(report.checked, 10)
      })

      it('a forged event with a correctly computed hash that claims to follow an earlier event', async () => {
        const { events, again, stream } = await seed(10)
        const earlier = events[4]
        assert.ok(earlier)
        await withClient(url, (c) =>
          c.appendToStream(
            stream,
            forged(earlier, (body) => chainHash(earlier.hash, { ...body, position: 11 })),
          ),
        )
        const report = await verifyLedger(await again())
        assert.deepEqual(report.firstFault, { kind: 'broken-link', position: 11 })
      })

      it('the gap that truncating the ledger stream leaves', async () => {
        const { again, stream } = await seed(10)
        await withClient(url, (c) => c.setStreamMetadata(stream, { truncateBefore: 3 }))
        const report = await verifyLedger(await again())
        assert.deepEqual(report.firstFault, { kind: 'gap', position: 4, expectedPosition: 1 })
      })
    })

    describe('two service instances on one ledger stream', () => {
      const twoInstances = async () => {
        const { store: a, again } = await ledger()
        return { a, b: await again() }
      }

      it('loses no append, forks no chain and keeps every stream contiguous under concurrent load', async () => {
        const { a, b } = await twoInstances()
        const acknowledged: StoredEvent[] = []
        let conflicts = 0
        const appendWithRetry = async (store: KurrentDbEventStore, stream: string, event: NewEvent) => {
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
        /** 300 appends from 16 concurrent writers: to a shared stream, its own stream, and a contended one. */
        const load = async (store: KurrentDbEventStore, name: string) => {
          let next = 0
          const writer = async (w: number) => {
            let own = 0
            for (let n = next++; n < 300; n = next++) {
              if (n % 3 === 0) {
                acknowledged.push(...(await store.append(`shared-${n % 2}`, [noted(n)], 'any')).events)
              } else if (n % 3 === 1) {
                acknowledged.push(...(await store.append(`${name}-${w}`, [noted(n)], own)).events)
                own += 1
              } else {
                acknowledged.push(...(await appendWithRetry(store, `contended-${n % 4}`, noted(n))))
              }
            }
          }
          await Promise.all(range(1, 16).map(writer))
        }
        const started = performance.now()
        await Promise.all([load(a, 'a'), load(b, 'b')])
        const seconds = (performance.now() - started) / 1000
        const all = await a.readAll(0, 1_000_000)
        assert.equal(acknowledged.length, 600)
        assert.deepEqual(
          all.map((e) => e.position),
          range(1, 600),
        )
        const byId = new Map(all.map((e) => [e.id, e]))
        for (const event of acknowledged) assert.deepEqual(byId.get(event.id), event)
        const versions = new Map<string, number[]>()
        for (const e of all) versions.set(e.stream, [...(versions.get(e.stream) ?? []), e.streamVersion])
        for (const [stream, list] of versions) assert.deepEqual(list, range(1, list.length), stream)
        const report = await verifyLedger(b)
        assert.equal(report.ok, true)
        assert.equal(report.checked, 600)
        const races = a.stats().conflicts + b.stats().conflicts
        console.log(
          `two instances on KurrentDB: 600 appends in ${seconds.toFixed(2)} s, ` +
            `${a.stats().transactions + b.stats().transactions} ledger appends, ${races} races for the ledger stream, ` +
            `${conflicts} version conflicts retried`,
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
        assert.deepEqual(await b.recall('k-7'), await a.recall('k-7'))
        assert.equal((await verifyLedger(a)).ok, true)
      })

      it('checks a version against what the other instance appended', async () => {
        const { a, b } = await twoInstances()
        await a.append('order', [noted(1)], 'no-stream')
        await assert.rejects(b.append('order', [noted(2)], 'no-stream'), WrongExpectedVersionError)
        const next = await b.append('order', [noted(2)], 1)
        assert.deepEqual(next.events[0]?.streamVersion, 2)
        assert.deepEqual(
          (await a.readStream('order')).map((e) => e.streamVersion),
          [1, 2],
        )
      })

      it('delivers to a subscriber on one instance the appends made on the other, woken by its live subscription', async () => {
        const { a, b } = await twoInstances()
        const seen: number[] = []
        const subscription = a.subscribe(0, async (batch) => {
          for (const e of batch) seen.push(e.position)
        })
        cleanups.push(() => subscription.close())
        // let the live subscription start, so the appends below are live ones
        await settle(500)
        const started = performance.now()
        for (let n = 1; n <= 5; n++) {
          await b.append('s', [noted(n)], 'any')
          const deadline = Date.now() + 2000
          while (seen.length < n && Date.now() < deadline) await settle(1)
        }
        const elapsed = performance.now() - started
        assert.deepEqual(seen, range(1, 5))
        // by polling alone, five appends made each once the feed is idle take about a second
        assert.ok(elapsed < 500, `5 appends took ${elapsed.toFixed(0)} ms to reach the other instance`)
        console.log(
          `a subscriber saw another instance's appends ${(elapsed / 5).toFixed(1)} ms after each append`,
        )
      })
    })
  })
})

describe('KurrentDB ledger without a server', () => {
  it('refuses to open, within seconds, when nothing answers at the address', async () => {
    // a port that was free a moment ago: nothing listens on it
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address()
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
    const started = Date.now()
    await assert.rejects(openKurrentDbEventStore({ url: `kurrentdb://127.0.0.1:${port}?tls=false` }))
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`)
  })
})
