import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type EventData, NO_STREAM, type RecordedEvent, START } from '@kurrent/kurrentdb-client'
import { chainHash, verifyChain } from '../../src/store/chain.js'
import {
  DEFAULT_LEDGER_STREAM,
  expectedLedgerState,
  fromRecorded,
  LedgerFormatError,
  ledgerStreamName,
  positionOf,
  readFrom,
  revisionOf,
  toEventData,
} from '../../src/store/kurrentdb/mapping.js'
import { GENESIS_HASH, type StoredEvent } from '../../src/store/port.js'

/** A chained ledger of `count` events, as the planner seals them. */
const chained = (count: number): StoredEvent[] => {
  const events: StoredEvent[] = []
  let prevHash = GENESIS_HASH
  for (let position = 1; position <= count; position++) {
    const body = {
      id: `0190c0de-0000-7000-8000-${String(position).padStart(12, '0')}`,
      type: 'Noted',
      stream: `s-${position % 2}`,
      streamVersion: Math.ceil(position / 2),
      position,
      recordedAt: '2025-03-01T09:00:00.000Z',
      data: { n: position, text: 'é ✓ 😀 \u0000', list: [1, 2.5, null], nested: { z: 1, a: 2 } },
      metadata: { actor: 'tester', correlationId: 'c-1', causationId: null, idempotencyKey: null },
    }
    const hash = chainHash(prevHash, body)
    events.push({ ...body, prevHash, hash })
    prevHash = hash
  }
  return events
}

/**
 * What the client hands back for an event it appended: it writes JSON.stringify of data and metadata and parses
 * them on read; the revision is the event's place in the ledger stream.
 */
const recordedFrom = (data: EventData, revision: bigint, streamId = 'ledger'): RecordedEvent =>
  ({
    streamId,
    id: data.id,
    revision,
    type: data.type,
    isJson: data.contentType === 'application/json',
    data: JSON.parse(JSON.stringify(data.data)),
    metadata: JSON.parse(JSON.stringify(data.metadata)),
    created: new Date(),
  }) as RecordedEvent

describe('KurrentDB mapping: the ledger stream', () => {
  it('is governance-ledger unless named, and never a system stream', () => {
    assert.equal(ledgerStreamName(), DEFAULT_LEDGER_STREAM)
    assert.equal(ledgerStreamName('ledger-eu'), 'ledger-eu')
    assert.throws(() => ledgerStreamName(''), TypeError)
    assert.throws(() => ledgerStreamName('$all'), /system stream/)
  })
})

describe('KurrentDB mapping: positions are revisions of the ledger stream', () => {
  it('puts position p at revision p - 1, and back', () => {
    assert.equal(revisionOf(1), 0n)
    assert.equal(revisionOf(1000), 999n)
    assert.equal(positionOf(0n), 1)
    for (const position of [1, 2, 17, 1_000_000, Number.MAX_SAFE_INTEGER]) {
      assert.equal(positionOf(revisionOf(position)), position)
    }
  })

  it('refuses positions and revisions that name no event', () => {
    assert.throws(() => revisionOf(0), RangeError)
    assert.throws(() => revisionOf(-1), RangeError)
    assert.throws(() => revisionOf(1.5), RangeError)
    assert.throws(() => positionOf(-1n), RangeError)
    assert.throws(() => positionOf(BigInt(Number.MAX_SAFE_INTEGER)), RangeError)
  })

  it('reads strictly after a position: from the start, or from the revision of the next position', () => {
    assert.equal(readFrom(0), START)
    assert.equal(readFrom(-5), START)
    // after position 1 comes position 2, at revision 1
    assert.equal(readFrom(1), 1n)
    assert.equal(readFrom(41), 41n)
  })

  it('expects no stream for an empty ledger, and the tip revision after it', () => {
    assert.equal(expectedLedgerState(0), NO_STREAM)
    assert.equal(expectedLedgerState(1), 0n)
    assert.equal(expectedLedgerState(250), 249n)
  })
})

describe('KurrentDB mapping: stored events as KurrentDB events', () => {
  it('keeps the envelope id as the event id and the domain type as the event type, data as JSON', () => {
    const [event] = chained(1)
    assert.ok(event)
    const data = toEventData(event)
    assert.equal(data.id, event.id)
    assert.equal(data.type, 'Noted')
    assert.equal(data.contentType, 'application/json')
    assert.deepEqual(data.data, event.data)
    assert.deepEqual(data.metadata, {
      stream: event.stream,
      streamVersion: event.streamVersion,
      recordedAt: event.recordedAt,
      metadata: event.metadata,
      prevHash: event.prevHash,
      hash: event.hash,
    })
  })

  it('reads back every event identically, so the chain still verifies', () => {
    const events = chained(6)
    const back = events.map((event) =>
      fromRecorded(recordedFrom(toEventData(event), revisionOf(event.position))),
    )
    assert.deepEqual(back, events)
    assert.equal(verifyChain(back).ok, true)
  })

  it('takes the position from the revision, so an event read at another place fails the chain there', () => {
    const events = chained(4)
    // the third event's KurrentDB event found at revision 3 (position 4): what a reordering would look like
    const moved = events.map((event, i) => {
      const source = i === 3 ? events[2] : i === 2 ? events[3] : event
      assert.ok(source)
      return fromRecorded(recordedFrom(toEventData(source), BigInt(i)))
    })
    assert.deepEqual(
      moved.map((e) => e.position),
      [1, 2, 3, 4],
    )
    assert.deepEqual(verifyChain(moved).firstFault, { kind: 'broken-link', position: 3 })
  })

  it('keeps data that is not an object', () => {
    for (const data of ['text', 7, null, [1, 'two']]) {
      const [event] = chained(1)
      assert.ok(event)
      const body = { ...event, data }
      const sealed = { ...body, hash: chainHash(GENESIS_HASH, body) }
      assert.deepEqual(fromRecorded(recordedFrom(toEventData(sealed), 0n)), sealed)
    }
  })

  it('names the position of an event that no ledger wrote', () => {
    const [event] = chained(1)
    assert.ok(event)
    const foreign = {
      ...recordedFrom(toEventData(event), 8n),
      metadata: { note: 'by hand' },
    } as RecordedEvent
    assert.throws(() => fromRecorded(foreign), LedgerFormatError)
    assert.throws(() => fromRecorded(foreign), /position 9 of ledger/)
    const binary = { ...recordedFrom(toEventData(event), 2n), isJson: false } as RecordedEvent
    assert.throws(() => fromRecorded(binary), /position 3 of ledger is not a ledger event/)
    const partial = recordedFrom({ ...toEventData(event), metadata: { metadata: {}, stream: 's' } }, 0n)
    assert.throws(() => fromRecorded(partial), /lacks envelope fields/)
  })
})
