import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  type Answerer,
  type EventStore,
  GENESIS_HASH,
  type NewEvent,
  READ_BUDGET_BYTES,
  StoreClosedError,
  type StoredEvent,
  WrongExpectedVersionError,
} from '../../src/store/port.js'
import { verifyLedger } from '../../src/store/verify.js'

export interface ContractHarness {
  readonly store: EventStore
  /** opens the same ledger again; the caller closes `store` first */
  readonly reopen: () => Promise<EventStore>
  /** closes whatever is still open and removes the ledger */
  readonly cleanup: () => Promise<void>
}

/** A clock the tests move by hand. */
export interface FakeClock {
  readonly now: () => Date
  set(iso: string): void
}

const fakeClock = (): FakeClock => {
  let current = new Date('2025-03-01T09:00:00.000Z')
  return { now: () => current, set: (iso) => (current = new Date(iso)) }
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const HEX_64 = /^[0-9a-f]{64}$/

const event = (n: number, type = 'Noted'): NewEvent => ({ type, data: { n }, metadata: { actor: 'tester' } })
const events = (count: number): NewEvent[] => Array.from({ length: count }, (_, i) => event(i + 1))
const positions = (list: readonly StoredEvent[]) => list.map((e) => e.position)
/** The stored JSON of the events' data and metadata, as a store measures a batch read. */
const jsonLength = (list: readonly StoredEvent[]) =>
  list.reduce((sum, e) => sum + JSON.stringify(e.data).length + JSON.stringify(e.metadata).length, 0)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** Polls until the condition holds, failing after a deadline instead of hanging the suite. */
const waitUntil = async (condition: () => boolean, ms = 5000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const readEverything = async (store: EventStore): Promise<StoredEvent[]> => store.readAll(0, 1_000_000)

/** Collects what a subscription delivers until `count` events arrived (or fails after a deadline). */
const collect = (store: EventStore, after: number, count: number) => {
  const received: StoredEvent[] = []
  let reached: () => void = () => {}
  const enough = new Promise<void>((resolve) => {
    reached = resolve
  })
  const subscription = store.subscribe(after, async (batch) => {
    received.push(...batch)
    if (received.length >= count) reached()
  })
  const deadline = (ms: number) =>
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`only ${received.length} of ${count} events in ${ms} ms`)),
        ms,
      ).unref(),
    )
  return { received, subscription, enough: () => Promise.race([enough, deadline(5000)]) }
}

const rejectsWithConflict = async (
  promise: Promise<unknown>,
  stream: string,
  expected: unknown,
  actual: number,
) => {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof WrongExpectedVersionError)
    assert.equal(error.stream, stream)
    assert.equal(error.expected, expected)
    assert.equal(error.actual, actual)
    return true
  })
}

export const eventStoreContract = (
  name: string,
  open: (clock: () => Date) => Promise<ContractHarness>,
): void => {
  describe(`EventStore contract: ${name}`, () => {
    let clock: FakeClock
    let harness: ContractHarness
    let store: EventStore

    beforeEach(async () => {
      clock = fakeClock()
      harness = await open(clock.now)
      store = harness.store
    })

    afterEach(async () => {
      await harness.cleanup()
    })

    /** Every test ends with an intact chain. */
    const assertChainOk = async (target: EventStore = store) => {
      const report = await verifyLedger(target)
      assert.equal(report.firstFault, null)
      assert.equal(report.ok, true)
      assert.deepEqual(report.head, await target.head())
    }

    it('appends events in an envelope and reads them back identically', async () => {
      const first = await store.append('order-1', [event(1, 'Opened')], 'no-stream', {
        idempotencyKey: 'k-1',
      })
      const second = await store.append(
        'order-1',
        [
          {
            type: 'Closed',
            data: { n: 2, tags: ['a'] },
            metadata: { actor: 'approver-1', correlationId: 'c-1', causationId: 'e-0' },
          },
        ],
        1,
      )
      const [a, b] = [...first.events, ...second.events]
      assert.ok(a && b)
      assert.equal(first.duplicate, false)
      assert.match(a.id, UUID_V7)
      assert.notEqual(a.id, b.id)
      assert.deepEqual(
        {
          type: a.type,
          stream: a.stream,
          streamVersion: a.streamVersion,
          position: a.position,
          data: a.data,
        },
        { type: 'Opened', stream: 'order-1', streamVersion: 1, position: 1, data: { n: 1 } },
      )
      assert.deepEqual(a.metadata, {
        actor: 'tester',
        correlationId: null,
        causationId: null,
        idempotencyKey: 'k-1',
      })
      assert.deepEqual(b.metadata, {
        actor: 'approver-1',
        correlationId: 'c-1',
        causationId: 'e-0',
        idempotencyKey: null,
      })
      assert.equal(a.recordedAt, '2025-03-01T09:00:00.000Z')
      assert.equal(a.prevHash, GENESIS_HASH)
      assert.match(a.hash, HEX_64)
      assert.equal(b.prevHash, a.hash)
      assert.equal(b.streamVersion, 2)
      assert.deepEqual(await store.readStream('order-1'), [a, b])
      assert.deepEqual(await store.readStream('order-1', 2), [b])
      assert.deepEqual(await store.readStream('order-unknown'), [])
      assert.deepEqual(await store.head(), { position: 2, hash: b.hash })
      await assertChainOk()
    })

    it('reports the genesis head for an empty ledger', async () => {
      assert.deepEqual(await store.head(), { position: 0, hash: GENESIS_HASH })
      assert.deepEqual(await store.readAll(0), [])
    })

    it('records the time of commit and never goes backwards when the clock does', async () => {
      clock.set('2025-03-01T10:00:00.000Z')
      const late = await store.append('s', [event(1)], 'any')
      clock.set('2025-03-01T08:00:00.000Z')
      const early = await store.append('s', [event(2)], 'any')
      clock.set('2025-03-01T11:00:00.000Z')
      const later = await store.append('s', [event(3)], 'any')
      assert.deepEqual(
        [late, early, later].map((r) => r.events[0]?.recordedAt),
        ['2025-03-01T10:00:00.000Z', '2025-03-01T10:00:00.000Z', '2025-03-01T11:00:00.000Z'],
      )
      await assertChainOk()
    })

    it('checks the expected version: exact, no-stream and any', async () => {
      await store.append('s', events(2), 'no-stream')
      const exact = await store.append('s', [event(3)], 2)
      assert.equal(exact.events[0]?.streamVersion, 3)
      const any = await store.append('s', [event(4)], 'any')
      assert.equal(any.events[0]?.streamVersion, 4)
      const fresh = await store.append('t', [event(1)], 0)
      assert.equal(fresh.events[0]?.streamVersion, 1)
      await assertChainOk()
    })

    it('rejects a wrong expected version with a typed error and appends nothing', async () => {
      await store.append('s', events(2), 'no-stream')
      const before = await store.head()
      await rejectsWithConflict(store.append('s', [event(3)], 1), 's', 1, 2)
      await rejectsWithConflict(store.append('s', [event(3)], 'no-stream'), 's', 'no-stream', 2)
      await rejectsWithConflict(store.append('s', [event(3)], 0), 's', 0, 2)
      await rejectsWithConflict(store.append('new', [event(1)], 3), 'new', 3, 0)
      assert.deepEqual(await store.head(), before)
      assert.equal((await store.readStream('s')).length, 2)
      assert.deepEqual(await store.readStream('new'), [])
      await assertChainOk()
    })

    it('rejects an empty append as invalid', async () => {
      await assert.rejects(store.append('s', [], 'any'), TypeError)
      await assert.rejects(store.appendMany([]), TypeError)
      await assert.rejects(store.appendMany([{ stream: 's', events: [], expectedVersion: 'any' }]), TypeError)
      assert.deepEqual(await store.head(), { position: 0, hash: GENESIS_HASH })
    })

    it('appends to several streams at once, all or nothing', async () => {
      await store.append('b', [event(1)], 'no-stream')
      const ok = await store.appendMany([
        { stream: 'a', events: events(2), expectedVersion: 'no-stream' },
        { stream: 'b', events: [event(2)], expectedVersion: 1 },
      ])
      assert.deepEqual(
        ok.events.map((e) => [e.stream, e.streamVersion, e.position]),
        [
          ['a', 1, 2],
          ['a', 2, 3],
          ['b', 2, 4],
        ],
      )
      const before = await store.head()
      await rejectsWithConflict(
        store.appendMany([
          { stream: 'c', events: events(3), expectedVersion: 'no-stream' },
          { stream: 'b', events: [event(3)], expectedVersion: 1 },
        ]),
        'b',
        1,
        2,
      )
      assert.deepEqual(await store.head(), before)
      assert.deepEqual(await store.readStream('c'), [])
      await assertChainOk()
    })

    it('lets the writes of one appendMany to the same stream follow each other', async () => {
      const result = await store.appendMany([
        { stream: 'a', events: [event(1)], expectedVersion: 'no-stream' },
        { stream: 'a', events: [event(2)], expectedVersion: 1 },
      ])
      assert.deepEqual(
        result.events.map((e) => e.streamVersion),
        [1, 2],
      )
      await assertChainOk()
    })

    it('returns the first result for a repeated idempotency key and appends nothing', async () => {
      const first = await store.append('s', events(2), 'no-stream', { idempotencyKey: 'pay-42' })
      await store.append('other', [event(9)], 'any')
      const before = await store.head()
      const again = await store.append('s', events(2), 'no-stream', { idempotencyKey: 'pay-42' })
      assert.equal(first.duplicate, false)
      assert.equal(again.duplicate, true)
      assert.deepEqual(again.events, first.events)
      assert.deepEqual(await store.head(), before)
      const many = await store.appendMany([{ stream: 'x', events: [event(1)], expectedVersion: 5 }], {
        idempotencyKey: 'pay-42',
      })
      assert.deepEqual(many, { events: first.events, duplicate: true })
      assert.equal((await store.readStream('s')).length, 2)
      await assertChainOk()
    })

    it('recalls what an idempotency key appended, and nothing for a new key', async () => {
      const first = await store.append('s', events(2), 'no-stream', { idempotencyKey: 'order-7' })
      assert.deepEqual(await store.recall('order-7'), { events: first.events, duplicate: true })
      assert.equal(await store.recall('order-8'), null)
    })

    it('keeps the request digest given with an idempotency key, and recalls it with the events', async () => {
      const digest = `sha256:${'ab'.repeat(32)}`
      const withDigest = { ...event(1), metadata: { actor: 'tester', requestDigest: digest } }
      const first = await store.append('s', [withDigest], 'no-stream', { idempotencyKey: 'req-1' })
      assert.equal(first.events[0]?.metadata.requestDigest, digest)
      const recalled = await store.recall('req-1')
      assert.deepEqual(recalled, { events: first.events, duplicate: true })
      assert.deepEqual(await store.readStream('s'), first.events)
      // without a key there is nothing to tell apart: the digest is not recorded
      const unkeyed = await store.append('s', [withDigest], 1)
      assert.equal('requestDigest' in (unkeyed.events[0]?.metadata ?? {}), false)
      await assertChainOk()
    })

    it('gives the second of two concurrent calls with the same key the first one’s result', async () => {
      const [one, two] = await Promise.all([
        store.append('s', [event(1)], 'any', { idempotencyKey: 'same' }),
        store.append('s', [event(2)], 'any', { idempotencyKey: 'same' }),
      ])
      assert.deepEqual([one.duplicate, two.duplicate], [false, true])
      assert.deepEqual(two.events, one.events)
      assert.deepEqual(positions(await readEverything(store)), [1])
      await assertChainOk()
    })

    it('does not record the key of a call that failed, so it can be retried', async () => {
      await store.append('s', [event(1)], 'no-stream')
      await assert.rejects(
        store.append('s', [event(2)], 0, { idempotencyKey: 'retry' }),
        WrongExpectedVersionError,
      )
      const retried = await store.append('s', [event(2)], 1, { idempotencyKey: 'retry' })
      assert.equal(retried.duplicate, false)
      assert.equal(retried.events[0]?.streamVersion, 2)
      await assertChainOk()
    })

    it('orders events globally across streams, each stream with its own versions', async () => {
      await store.append('a', [event(1)], 'any')
      await store.append('b', [event(2)], 'any')
      await store.append('a', [event(3)], 'any')
      const all = await readEverything(store)
      assert.deepEqual(
        all.map((e) => [e.position, e.stream, e.streamVersion]),
        [
          [1, 'a', 1],
          [2, 'b', 1],
          [3, 'a', 2],
        ],
      )
      assert.deepEqual(positions(await store.readStream('a')), [1, 3])
      await assertChainOk()
    })

    it('pages through readAll strictly after a position', async () => {
      await store.append('s', events(25), 'any')
      const pages: number[][] = []
      for (let after = 0; ; ) {
        const page = await store.readAll(after, 10)
        if (page.length === 0) break
        pages.push(positions(page))
        after = page.at(-1)?.position ?? after
      }
      assert.deepEqual(pages, [range(1, 10), range(11, 20), range(21, 25)])
      assert.deepEqual(positions(await store.readAll(23)), [24, 25])
      assert.equal((await store.readAll(0)).length, 25)
      await assertChainOk()
    })

    it('bounds a batch read by the bytes of its events as well as by their count', async () => {
      const large = (n: number, chars: number): NewEvent => ({
        type: 'Noted',
        data: { n, text: 'x'.repeat(chars) },
        metadata: { actor: 'tester' },
      })
      await store.append(
        'large',
        [1, 2, 3, 4, 5, 6].map((n) => large(n, 10_000)),
        'no-stream',
      )
      // each event holds a little over 10,000 characters: the third one brings the read past 25,000
      const budgeted = await store.readAll(0, 100, 25_000)
      assert.deepEqual(positions(budgeted), [1, 2, 3])
      assert.ok(jsonLength(budgeted.slice(0, -1)) < 25_000, 'no event is read past the budget')
      // a budget smaller than one event still returns that event, so paging always moves on
      assert.deepEqual(positions(await store.readAll(4, 100, 1)), [5])
      assert.deepEqual(positions(await store.readAll(0, 2, 1_000_000)), [1, 2], 'the count still bounds it')
      const pages: number[][] = []
      for (let after = 0; ; ) {
        const page = await store.readAll(after, 100, 25_000)
        if (page.length === 0) break
        pages.push(positions(page))
        after = page.at(-1)?.position ?? after
      }
      assert.deepEqual(pages, [range(1, 3), range(4, 6)])
      // a stream reads whole unless a page is asked for, and a page is bounded the same way
      await store.append('other', [event(7)], 'no-stream')
      await store.append('large', [large(8, 10_000)], 6)
      assert.equal((await store.readStream('large')).length, 7)
      const versions = (list: readonly StoredEvent[]) => list.map((e) => e.streamVersion)
      assert.deepEqual(versions(await store.readStream('large', 2, 100, 25_000)), [2, 3, 4])
      assert.deepEqual(versions(await store.readStream('large', 5, 100, 25_000)), [5, 6, 7], 'across the gap')
      assert.deepEqual(versions(await store.readStream('large', 7, 100, 1)), [7])
      assert.deepEqual(versions(await store.readStream('large', 1, 2, 1_000_000)), [1, 2])
      assert.deepEqual(await store.readStream('large', 8, 100), [])
      await assertChainOk()
    })

    it('hands a subscriber batches no larger than the read budget, and every event', async () => {
      // five events of a mebibyte each: more than READ_BUDGET_BYTES together
      const mebibyte = 'x'.repeat(1024 * 1024)
      for (let n = 1; n <= 5; n++)
        await store.append(
          'large',
          [{ type: 'Noted', data: { n, mebibyte }, metadata: { actor: 'tester' } }],
          'any',
        )
      const batches: StoredEvent[][] = []
      let all: () => void = () => {}
      const received = new Promise<void>((resolve) => {
        all = resolve
      })
      const sizes = store.subscribe(0, async (batch) => {
        batches.push([...batch])
        if (batches.flat().length >= 5) all()
      })
      await received
      await sizes.close()
      assert.deepEqual(positions(batches.flat()), range(1, 5))
      assert.ok(batches.length > 1, `delivered in ${batches.length} batch(es)`)
      for (const batch of batches)
        assert.ok(jsonLength(batch.slice(0, -1)) < READ_BUDGET_BYTES, 'a batch stops at its budget')
      await assertChainOk()
    })

    it('delivers every event after a position in order, including those appended while subscribed', async () => {
      await store.append('s', events(5), 'any')
      const feed = collect(store, 2, 6)
      await store.append('t', [event(6)], 'any')
      await store.append('s', events(2), 'any')
      await feed.enough()
      await feed.subscription.close()
      assert.deepEqual(positions(feed.received), range(3, 8))
      await assertChainOk()
    })

    it('resumes from a saved checkpoint with no gap and no repeat', async () => {
      await store.append('s', events(4), 'any')
      let checkpoint = 0
      const delivered: number[] = []
      const consume = async (batch: readonly StoredEvent[]) => {
        for (const e of batch) delivered.push(e.position)
        checkpoint = batch.at(-1)?.position ?? checkpoint
      }
      const first = store.subscribe(checkpoint, consume)
      await store.append('s', events(3), 'any')
      await waitUntil(() => checkpoint === 7)
      await first.close()
      await store.append('s', events(5), 'any')
      const second = store.subscribe(checkpoint, consume)
      await waitUntil(() => checkpoint === 12)
      await second.close()
      assert.deepEqual(delivered, range(1, 12))
      await assertChainOk()
    })

    it('waits for a running handler when the subscription is closed', async () => {
      await store.append('s', [event(1)], 'any')
      let release: () => void = () => {}
      let started: () => void = () => {}
      const handlerStarted = new Promise<void>((resolve) => {
        started = resolve
      })
      let finished = false
      const subscription = store.subscribe(0, async () => {
        started()
        await new Promise<void>((resolve) => {
          release = resolve
        })
        finished = true
      })
      await handlerStarted
      const closed = subscription.close()
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(finished, false)
      release()
      await closed
      assert.equal(finished, true)
    })

    it('stops a subscription whose handler throws, rejecting done with that error', async () => {
      await store.append('s', events(3), 'any')
      const failure = new Error('projection broke')
      let calls = 0
      const subscription = store.subscribe(0, async () => {
        calls += 1
        throw failure
      })
      await assert.rejects(subscription.done, failure)
      await store.append('s', [event(4)], 'any')
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(calls, 1)
      await subscription.close()
    })

    it('commits 64 concurrent appends to distinct streams at distinct consecutive positions', async () => {
      const results = await Promise.all(
        range(1, 64).map((n) => store.append(`stream-${n}`, [event(n)], 'no-stream')),
      )
      const stored = results.flatMap((r) => r.events)
      assert.deepEqual(
        positions(stored).sort((a, b) => a - b),
        range(1, 64),
      )
      assert.ok(stored.every((e) => e.streamVersion === 1))
      await assertChainOk()
    })

    it('gives 20 concurrent appends to the same stream the versions 1 to 20', async () => {
      const results = await Promise.all(range(1, 20).map((n) => store.append('shared', [event(n)], 'any')))
      const versions = results.map((r) => r.events[0]?.streamVersion ?? 0)
      assert.deepEqual(
        versions.sort((a, b) => a - b),
        range(1, 20),
      )
      assert.deepEqual(
        (await store.readStream('shared')).map((e) => e.streamVersion),
        range(1, 20),
      )
      await assertChainOk()
    })

    it('lets exactly one of two concurrent appends expecting version 0 win', async () => {
      const outcomes = await Promise.allSettled([
        store.append('race', [event(1)], 0),
        store.append('race', [event(2)], 0),
      ])
      const won = outcomes.filter((o) => o.status === 'fulfilled')
      const lost = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []))
      assert.equal(won.length, 1)
      assert.equal(lost.length, 1)
      assert.ok(lost[0] instanceof WrongExpectedVersionError)
      assert.equal(lost[0].actual, 1)
      assert.equal((await store.readStream('race')).length, 1)
      await assertChainOk()
    })

    it('keeps every event, byte for byte, across a reopen and continues the chain', async () => {
      await store.append('a', events(3), 'any', { idempotencyKey: 'before-restart' })
      await store.appendMany([
        {
          stream: 'b',
          events: [
            {
              type: 'Odd',
              data: { text: 'é ✓ 😀', list: [1, 2.5, null], nested: { z: 1, a: 2 } },
              metadata: { actor: 'x' },
            },
          ],
          expectedVersion: 'any',
        },
      ])
      const before = await readEverything(store)
      const head = await store.head()
      await store.close()
      const reopened = await harness.reopen()
      assert.deepEqual(await readEverything(reopened), before)
      assert.deepEqual(await reopened.head(), head)
      const duplicate = await reopened.append('a', events(3), 'any', { idempotencyKey: 'before-restart' })
      assert.equal(duplicate.duplicate, true)
      assert.deepEqual(duplicate.events, before.slice(0, 3))
      await rejectsWithConflict(reopened.append('a', [event(9)], 0), 'a', 0, 3)
      const next = await reopened.append('a', [event(4)], 3)
      assert.equal(next.events[0]?.position, 5)
      assert.equal(next.events[0]?.prevHash, head.hash)
      await assertChainOk(reopened)
    })

    it('rejects every call once closed', async () => {
      await store.append('s', [event(1)], 'any')
      await store.close()
      await assert.rejects(store.append('s', [event(2)], 'any'), StoreClosedError)
      await assert.rejects(
        store.appendMany([{ stream: 's', events: [event(2)], expectedVersion: 'any' }]),
        StoreClosedError,
      )
      await assert.rejects(store.readAll(0), StoreClosedError)
      await assert.rejects(store.readStream('s'), StoreClosedError)
      await assert.rejects(store.head(), StoreClosedError)
    })

    it('commits appends queued before close', async () => {
      const pending = store.append('s', [event(1)], 'any')
      await store.close()
      const result = await pending
      const reopened = await harness.reopen()
      assert.deepEqual(await readEverything(reopened), result.events)
    })

    describe('an answerer answers each event in the commit that appends it', () => {
      /** Answers every event of type Asked with one Answer on the stream `answers`; refuses an event of type Bad. */
      const answerer = (): Answerer & { followed: number[] } => {
        let position = 0
        const followed: number[] = []
        return {
          followed,
          get position() {
            return position
          },
          follow: (events) => {
            for (const e of events) followed.push(e.position)
            position = events.at(-1)?.position ?? position
          },
          begin: () => {
            let last = position
            return {
              answer: (e) => {
                if (e.type === 'Bad') throw new Error('cannot answer')
                last = e.position
                if (e.type !== 'Asked') return []
                const answer = { type: 'Answer', data: { to: e.id }, metadata: { actor: 'answerer' } }
                return [{ stream: 'answers', events: [answer], expectedVersion: 'any' as const }]
              },
              committed: (tip) => {
                position = Math.max(last, tip)
              },
              abandoned: () => {},
            }
          },
        }
      }

      it('seals each answer right after its cause; a retry under the key recalls the call’s own events only', async () => {
        await store.append('s', [event(1)], 'any')
        const answering = answerer()
        store.answerWith(answering)
        const call = [event(2, 'Asked'), event(3), event(4, 'Asked')]
        const result = await store.append('s', call, 1, { idempotencyKey: 'k' })
        assert.deepEqual(answering.followed, [1], 'it first folded what was appended before it answered')
        assert.deepEqual(
          positions(result.events),
          [2, 4, 5],
          'the call’s events, an answer sealed between them',
        )
        assert.deepEqual(positions(result.answers ?? []), [3, 6])
        const all = await readEverything(store)
        assert.deepEqual(
          all.map((e) => `${e.type}@${e.stream}/${e.streamVersion}`),
          ['Noted@s/1', 'Asked@s/2', 'Answer@answers/1', 'Noted@s/3', 'Asked@s/4', 'Answer@answers/2'],
        )
        assert.equal(all[2]?.metadata.idempotencyKey, `decision:${all[1]?.id}`)
        const again = await store.append('s', call, 1, { idempotencyKey: 'k' })
        assert.equal(again.duplicate, true)
        assert.deepEqual(positions(again.events), [2, 4, 5])
        assert.deepEqual(positions((await store.recall('k'))?.events ?? []), [2, 4, 5])
        await assertChainOk()
      })

      it('an event it cannot answer is not appended; the other appends of its group commit are', async () => {
        store.answerWith(answerer())
        const appends = [
          store.append('a', [event(1, 'Asked')], 'any'),
          store.append('b', [event(2, 'Bad')], 'any'),
          store.append('c', [event(3)], 'any'),
        ]
        const [a, b, c] = await Promise.allSettled(appends)
        assert.equal(a?.status, 'fulfilled')
        assert.equal(b?.status, 'rejected')
        assert.equal(c?.status, 'fulfilled')
        assert.deepEqual(
          (await readEverything(store)).map((e) => e.stream),
          ['a', 'answers', 'c'],
          'nothing of the refused append',
        )
        await assertChainOk()
      })
    })
  })
}
