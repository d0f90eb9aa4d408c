import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  AccessDeniedError,
  DeadlineExceededError,
  MaxAppendSizeExceededError,
  NotLeaderError,
  StreamDeletedError,
  UnavailableError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client'
import { draftWrites, type PendingAppend } from '../../src/store/append-plan.js'
import {
  APPEND_BUDGET_BYTES,
  estimatedBytes,
  failureOf,
  landed,
  takeBatch,
} from '../../src/store/kurrentdb/commit.js'
import type { StoredEvent } from '../../src/store/port.js'

const pending = (name: string, bytes = 10): PendingAppend => ({
  writes: draftWrites(
    [
      {
        stream: name,
        events: [{ type: 'Noted', data: { text: 'x'.repeat(bytes) }, metadata: { actor: 'a' } }],
        expectedVersion: 'any',
      },
    ],
    null,
  ),
  key: null,
  resolve: () => {},
  reject: () => {},
})

const names = (calls: readonly PendingAppend[]) => calls.map((c) => c.writes[0]?.stream)

describe('KurrentDB group commit: how many calls one ledger append carries', () => {
  it('estimates a call by its data in UTF-8 plus the envelope of each event', () => {
    const ascii = estimatedBytes(pending('a', 1000))
    const wide = estimatedBytes({
      ...pending('b'),
      writes: draftWrites(
        [
          {
            stream: 'b',
            events: [{ type: 'T', data: { text: '✓'.repeat(1000) }, metadata: { actor: 'a' } }],
            expectedVersion: 'any',
          },
        ],
        null,
      ),
    })
    assert.ok(ascii > 1000 && ascii < 2000, String(ascii))
    // three bytes a character
    assert.ok(wide > 3000 && wide < 4000, String(wide))
  })

  it('takes every call that fits the budget, in order, and leaves the rest for the next append', () => {
    const queue = ['a', 'b', 'c', 'd'].map((name) => pending(name, 1000))
    const size = estimatedBytes(queue[0] as PendingAppend)
    const { batch, rest } = takeBatch(queue, size * 2 + 1)
    assert.deepEqual(names(batch), ['a', 'b'])
    assert.deepEqual(names(rest), ['c', 'd'])
    assert.deepEqual(names(takeBatch(queue).batch), ['a', 'b', 'c', 'd'])
  })

  it('always takes the first call, even one over the budget, so the server can refuse it alone', () => {
    const big = pending('big', APPEND_BUDGET_BYTES * 2)
    const { batch, rest } = takeBatch([big, pending('small')])
    assert.deepEqual(names(batch), ['big'])
    assert.deepEqual(names(rest), ['small'])
    assert.deepEqual(takeBatch([]), { batch: [], rest: [] })
  })
})

describe('KurrentDB group commit: what a failed ledger append means', () => {
  it('a wrong expected version is a race lost to another writer', () => {
    const error = new WrongExpectedVersionError(undefined, {
      streamName: 'ledger',
      expected: 4n,
      current: 6n,
    })
    assert.equal(failureOf(error), 'conflict')
  })

  it('a refusal by the server wrote nothing', () => {
    assert.equal(failureOf(MaxAppendSizeExceededError.fromMaxAppendSize(1_048_576)), 'refused')
    assert.equal(failureOf(new AccessDeniedError()), 'refused')
    assert.equal(failureOf(StreamDeletedError.fromStreamName('ledger')), 'refused')
  })

  it('a lost answer may have been written', () => {
    assert.equal(failureOf(new UnavailableError()), 'unknown')
    assert.equal(failureOf(new DeadlineExceededError()), 'unknown')
    // what the client throws for an append while the server cannot be reached: a plain gRPC error
    assert.equal(failureOf(new Error('14 UNAVAILABLE: No connection established')), 'unknown')
    assert.equal(failureOf(Object.create(NotLeaderError.prototype)), 'unknown')
  })
})

describe('KurrentDB group commit: did an append whose answer was lost land?', () => {
  const event = (position: number, id: string) => ({ position, id }) as StoredEvent
  const planned = [event(5, 'a'), event(6, 'b')]

  it('yes when the planned positions hold the planned ids', () => {
    assert.equal(landed(planned, [event(5, 'a'), event(6, 'b')]), true)
  })

  it('no when another writer holds them, or the ledger stops short', () => {
    assert.equal(landed(planned, [event(5, 'x'), event(6, 'y')]), false)
    assert.equal(landed(planned, [event(5, 'a')]), false)
    assert.equal(landed(planned, []), false)
    assert.equal(landed([], []), false)
  })
})
