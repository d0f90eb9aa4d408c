import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { NO_STREAM } from '@kurrent/kurrentdb-client'
import { draftWrites, type PendingAppend, type Plan, planBatch } from '../../src/store/append-plan.js'
import { verifyChain } from '../../src/store/chain.js'
import { knownOf, LedgerIndex, runsOf } from '../../src/store/kurrentdb/ledger-index.js'
import { expectedLedgerState } from '../../src/store/kurrentdb/mapping.js'
import {
  type AppendResult,
  GENESIS_HASH,
  type StoredEvent,
  type StreamWrite,
  WrongExpectedVersionError,
} from '../../src/store/port.js'

const NOW = new Date('2025-03-01T09:00:00.000Z')

const noted = (n: number) => ({ type: 'Noted', data: { n }, metadata: { actor: 'tester' } })

/** One queued call, and what it was told once its batch was planned. */
const call = (writes: StreamWrite[], key: string | null = null) => {
  const told: { result?: AppendResult; error?: unknown } = {}
  const pending: PendingAppend = {
    writes: draftWrites(writes, key),
    key,
    resolve: (result) => {
      told.result = result
    },
    reject: (error) => {
      told.error = error
    },
  }
  return { pending, told }
}

/** Plans calls against the index as the adapter does: snapshot, the keys' events from the ledger, then the plan. */
const plan = (index: LedgerIndex, ledger: readonly StoredEvent[], calls: readonly PendingAppend[]): Plan => {
  const snapshot = index.snapshot(calls)
  const stored = new Map<string, StoredEvent[]>()
  for (const [key, range] of snapshot.keys) {
    stored.set(
      key,
      ledger.filter((e) => e.position >= range.first && e.position <= range.last),
    )
  }
  const planned = planBatch(calls, knownOf(snapshot, stored), NOW)
  for (const { call, outcome } of planned.settled) {
    if (outcome instanceof Error) call.reject(outcome)
    else call.resolve(outcome)
  }
  return planned
}

describe('KurrentDB ledger index', () => {
  it('starts at the genesis tip with no stream and no key', () => {
    const index = new LedgerIndex()
    assert.deepEqual(index.tip, { position: 0, hash: GENESIS_HASH, recordedAt: '' })
    assert.equal(index.version('s'), 0)
    assert.deepEqual(index.positions('s'), [])
    assert.equal(index.keyRange('k'), undefined)
  })

  it('seals a batch after the tip it knows and indexes it: versions, positions, keys and the new tip', () => {
    const index = new LedgerIndex()
    const a = call([{ stream: 's', events: [noted(1), noted(2)], expectedVersion: 'no-stream' }], 'k-1')
    const b = call([{ stream: 't', events: [noted(3)], expectedVersion: 'any' }])
    const first = plan(index, [], [a.pending, b.pending])
    assert.equal(expectedLedgerState(index.tip.position), NO_STREAM)
    assert.deepEqual(
      first.events.map((e) => [e.position, e.stream, e.streamVersion]),
      [
        [1, 's', 1],
        [2, 's', 2],
        [3, 't', 1],
      ],
    )
    assert.equal(first.events[0]?.prevHash, GENESIS_HASH)
    assert.equal(verifyChain(first.events).ok, true)
    index.add(first.events)
    assert.deepEqual(index.tip, { position: 3, hash: first.events[2]?.hash, recordedAt: NOW.toISOString() })
    assert.equal(index.version('s'), 2)
    assert.deepEqual(index.positions('s'), [1, 2])
    assert.deepEqual(index.positions('s', 2), [2])
    assert.deepEqual(index.keyRange('k-1'), { first: 1, last: 2 })
    assert.equal(a.told.result?.duplicate, false)
  })

  it('checks the next batch against what it indexed: a stale version conflicts, a known key repeats', () => {
    const index = new LedgerIndex()
    const ledger: StoredEvent[] = []
    const seed = call([{ stream: 's', events: [noted(1), noted(2)], expectedVersion: 'no-stream' }], 'k-1')
    const seeded = plan(index, ledger, [seed.pending])
    ledger.push(...seeded.events)
    index.add(seeded.events)

    const stale = call([{ stream: 's', events: [noted(3)], expectedVersion: 1 }])
    const repeat = call([{ stream: 'x', events: [noted(9)], expectedVersion: 5 }], 'k-1')
    const fresh = call([{ stream: 's', events: [noted(4)], expectedVersion: 2 }])
    const next = plan(index, ledger, [stale.pending, repeat.pending, fresh.pending])
    assert.ok(stale.told.error instanceof WrongExpectedVersionError)
    assert.equal(stale.told.error.actual, 2)
    assert.deepEqual(repeat.told.result, { events: seeded.events, duplicate: true })
    assert.deepEqual(
      next.events.map((e) => [e.position, e.stream, e.streamVersion]),
      [[3, 's', 3]],
    )
    // the ledger append expects the tip the batch was sealed after
    assert.equal(expectedLedgerState(index.tip.position), 1n)
    assert.equal(next.events[0]?.prevHash, index.tip.hash)
    index.add(next.events)
    assert.equal(verifyChain([...ledger, ...next.events]).ok, true)
  })

  it('takes each event once, whether its own append or a read of the ledger hands it over first', () => {
    const index = new LedgerIndex()
    const batch = plan(
      index,
      [],
      [call([{ stream: 's', events: [noted(1), noted(2)], expectedVersion: 'any' }]).pending],
    )
    index.add(batch.events.slice(0, 1))
    index.add(batch.events)
    index.add(batch.events)
    assert.deepEqual(index.positions('s'), [1, 2])
    assert.equal(index.version('s'), 2)
    assert.equal(index.tip.position, 2)
  })

  it('follows a ledger whose first events were truncated away, so that verify can name the gap', () => {
    const index = new LedgerIndex()
    const batch = plan(
      index,
      [],
      [call([{ stream: 's', events: [1, 2, 3, 4].map(noted), expectedVersion: 'any' }]).pending],
    )
    index.add(batch.events.slice(2))
    assert.deepEqual(index.positions('s'), [3, 4])
    assert.equal(index.tip.position, 4)
    assert.deepEqual(verifyChain(batch.events.slice(2)).firstFault, {
      kind: 'gap',
      position: 3,
      expectedPosition: 1,
    })
  })

  it('takes a snapshot that later additions do not change', () => {
    const index = new LedgerIndex()
    const a = call([{ stream: 's', events: [noted(1)], expectedVersion: 'any' }], 'k')
    const snapshot = index.snapshot([a.pending])
    index.add(plan(index, [], [a.pending]).events)
    assert.deepEqual(snapshot.tip.position, 0)
    assert.deepEqual([...snapshot.versions], [['s', 0]])
    assert.deepEqual([...snapshot.keys], [])
    assert.deepEqual([...index.snapshot([a.pending]).keys], [['k', { first: 1, last: 1 }]])
  })

  it('lets a key stand for the first call under it, even if an event elsewhere repeats it', () => {
    const index = new LedgerIndex()
    const first = plan(
      index,
      [],
      [call([{ stream: 's', events: [noted(1)], expectedVersion: 'any' }], 'k').pending],
    )
    index.add(first.events)
    const other = plan(
      index,
      [],
      [call([{ stream: 't', events: [noted(2)], expectedVersion: 'any' }]).pending],
    )
    index.add(other.events)
    // an event written by hand with the same key, not next to the first call's events
    const stray = plan(
      index,
      [],
      [call([{ stream: 'u', events: [noted(3)], expectedVersion: 'any' }]).pending],
    )
    index.add(stray.events.map((e) => ({ ...e, metadata: { ...e.metadata, idempotencyKey: 'k' } })))
    assert.deepEqual(index.keyRange('k'), { first: 1, last: 1 })
  })
})

describe('KurrentDB runs of positions', () => {
  it('groups consecutive positions, so a stream is read in as few requests as it has runs', () => {
    assert.deepEqual(runsOf([]), [])
    assert.deepEqual(runsOf([4]), [{ first: 4, count: 1 }])
    assert.deepEqual(runsOf([1, 2, 3, 7, 8, 10]), [
      { first: 1, count: 3 },
      { first: 7, count: 2 },
      { first: 10, count: 1 },
    ])
  })
})
