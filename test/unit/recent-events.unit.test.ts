import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { StoredEvent } from '../../src/store/port.js'
import { RecentEvents } from '../../src/store/recent-events.js'

const events = (from: number, count: number): StoredEvent[] =>
  Array.from({ length: count }, (_, i) => ({ position: from + i }) as StoredEvent)
const positions = (found: readonly StoredEvent[] | null) => found?.map((e) => e.position) ?? null

test('the tail serves what this process committed, in order, by count and by size, and nothing it does not hold', () => {
  const tail = new RecentEvents(5)
  assert.equal(tail.after(0, 10, 1000), null, 'empty: read the ledger')
  tail.add(events(1, 3), [10, 10, 10])
  assert.deepEqual(positions(tail.after(0, 10, 1000)), [1, 2, 3])
  assert.deepEqual(positions(tail.after(1, 1, 1000)), [2], 'a count')
  assert.deepEqual(positions(tail.after(0, 10, 15)), [1, 2], 'stops at the event that reaches the budget')
  assert.equal(tail.after(3, 10, 1000), null, 'past its end: the ledger may hold more')
  tail.add(events(4, 4), [1, 1, 1, 1])
  assert.equal(tail.after(0, 10, 1000), null, 'beyond its capacity the oldest are dropped')
  assert.deepEqual(positions(tail.after(2, 10, 1000)), [3, 4, 5, 6, 7])
  // another writer appended 8 and 9: a commit at 10 does not follow on, and is not kept
  tail.add(events(10, 1), [1])
  assert.equal(tail.after(7, 10, 1000), null, 'past its end: 8 and 9 are read from the ledger')
  assert.equal(tail.after(9, 10, 1000), null, 'nothing after a gap')
  // a reader reads 8 to 10 from the ledger: they follow on, and the next reader is served them
  tail.add(events(8, 3), [1, 1, 1])
  assert.deepEqual(positions(tail.after(7, 10, 1000)), [8, 9, 10])
  assert.equal(tail.after(4, 10, 1000), null, 'the oldest dropped past capacity')
  // what it holds already, read again, changes nothing; a read behind it or beyond a gap is not kept
  tail.add(events(6, 5), [1, 1, 1, 1, 1])
  tail.add(events(12, 2), [1, 1])
  assert.deepEqual(positions(tail.after(5, 10, 1000)), [6, 7, 8, 9, 10])
  assert.equal(tail.after(10, 10, 1000), null)
  // a read that overlaps its end keeps what follows on
  tail.add(events(9, 3), [1, 1, 1])
  assert.deepEqual(positions(tail.after(8, 10, 1000)), [9, 10, 11])
})

test('the tail keeps no more of their stored JSON than its byte capacity: large events never fill the heap', () => {
  const tail = new RecentEvents(100, 50)
  tail.add(events(1, 4), [10, 10, 10, 10])
  assert.deepEqual(positions(tail.after(0, 10, 1000)), [1, 2, 3, 4])
  // 30 more bytes: the oldest go until what is held fits in 50
  tail.add(events(5, 1), [30])
  assert.equal(tail.after(0, 10, 1000), null)
  assert.deepEqual(positions(tail.after(2, 10, 1000)), [3, 4, 5])
  // an event larger than the capacity on its own is not held at all: its readers read the ledger
  tail.add(events(6, 1), [60])
  assert.equal(tail.after(5, 10, 1000), null)
  assert.equal(tail.after(2, 10, 1000), null)
  // the next events follow on from nothing held: the tail starts again with them
  tail.add(events(7, 2), [5, 5])
  assert.deepEqual(positions(tail.after(6, 10, 1000)), [7, 8])
})
