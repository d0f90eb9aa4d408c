import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConnectionSlots } from '../../src/http/connections.js'
import { ApiError } from '../../src/http/errors.js'
import { LedgerWaits } from '../../src/http/ledger-waits.js'
import { CommandsInProgress } from '../../src/http/overload.js'
import { pagedWriter } from '../../src/http/routes/verdict-stream.js'
import type { StoredEvent } from '../../src/store/port.js'

const refusal = (take: () => unknown) => {
  try {
    take()
  } catch (error) {
    assert.ok(error instanceof ApiError)
    return error
  }
  assert.fail('expected a refusal')
}

describe('connection slots', () => {
  it('refuses beyond a principal’s cap (429) and the total (503), and a release frees exactly one slot', () => {
    const slots = new ConnectionSlots({ what: 'things', perPrincipal: 2, total: 3, retryAfterSeconds: 7 })
    const a1 = slots.take('a')
    slots.take('a')
    const own = refusal(() => slots.take('a'))
    assert.equal(own.status, 429)
    assert.deepEqual(own.headers, { 'retry-after': '7' })
    slots.take('b')
    const total = refusal(() => slots.take('c'))
    assert.equal(total.status, 503)
    assert.deepEqual(total.headers, { 'retry-after': '7' })
    assert.equal(slots.open(), 3)
    a1()
    a1()
    assert.equal(slots.open(), 2, 'a second release frees nothing more')
    assert.equal(slots.open('a'), 1)
    const c = slots.take('c')
    assert.equal(refusal(() => slots.take('d')).status, 503)
    c()
    assert.equal(slots.open('c'), 0)
  })
})

let position = 0
const event = (stream: string, type: string) => ({ stream, type, position: ++position }) as StoredEvent

describe('ledger waits', () => {
  it('wakes a wait only for its own stream and types, handing it the events, and keeps those that came while it read', async () => {
    const waits = new LedgerWaits(new Set(['VerdictIssued']))
    const wait = waits.wait('proposal-a', 60_000)
    const first = event('proposal-a', 'VerdictIssued')
    waits.feed([event('proposal-b', 'VerdictIssued'), event('proposal-a', 'ApprovalGranted')])
    waits.feed([first])
    assert.deepEqual(await wait.next(), [first], 'the verdict came before next() was called')
    const next = wait.next()
    const second = event('proposal-a', 'VerdictIssued')
    const third = event('proposal-a', 'VerdictIssued')
    waits.feed([second, third])
    assert.deepEqual(await next, [second], 'a waiting wait is woken by the first event')
    assert.deepEqual(await wait.next(), [third], 'and the next call has the rest')
    assert.equal(waits.size, 1)
    wait.end()
    wait.end()
    assert.equal(waits.size, 0)
    assert.equal(await wait.next(), null, 'an ended wait never waits again')
  })

  it('ends on its deadline, on its signal, and on closeAll, each leaving nothing registered', async () => {
    const waits = new LedgerWaits(new Set(['VerdictIssued']))
    assert.equal(await waits.wait('s', 0).next(), null, 'no time at all')
    assert.equal(await waits.wait('s', 1).next(), null, 'its timer')
    const gone = new AbortController()
    const left = waits.wait('s', 60_000, gone.signal)
    const leaving = left.next()
    gone.abort()
    assert.equal(await leaving, null)
    const closing = waits.wait('s', 60_000).next()
    waits.closeAll()
    assert.equal(await closing, null)
    assert.equal(waits.size, 0)
    const aborted = new AbortController()
    aborted.abort()
    assert.equal(await waits.wait('s', 60_000, aborted.signal).next(), null, 'a client gone before it waits')
    assert.equal(waits.size, 0)
  })
})

describe('paged writer', () => {
  it('writes pages of at most the budget, each with at least one item, in order', async () => {
    const written: string[] = []
    const pages = pagedWriter(async (chunk) => void written.push(chunk), 10)
    for (const item of ['aaaa', 'bbbb', 'cc', 'dddddddddddddd', 'e', 'f']) await pages.add(item)
    await pages.flush()
    await pages.flush()
    assert.deepEqual(written, ['aaaabbbbcc', 'dddddddddddddd', 'ef'])
  })

  it('counts bytes, not characters', async () => {
    const written: string[] = []
    const pages = pagedWriter(async (chunk) => void written.push(chunk), 4)
    for (const item of ['é', 'é', 'é']) await pages.add(item)
    await pages.flush()
    assert.deepEqual(written, ['éé', 'é'])
  })
})

describe('commands in progress (the overload guard’s measure)', () => {
  it('the oldest command still in progress is the one that began first; an answered one no longer counts', () => {
    let now = 100
    const commands = new CommandsInProgress(() => now)
    const [a, b, c] = [{}, {}, {}]
    assert.equal(commands.oldestMs(), 0, 'none in progress')
    commands.begin(a)
    now = 105
    commands.begin(b)
    commands.begin(a)
    now = 112
    assert.equal(commands.oldestMs(), 12, 'a began at 100; beginning it again changes nothing')
    commands.end(a)
    assert.equal(commands.oldestMs(), 7, 'then b, begun at 105')
    commands.end(a)
    commands.begin(c)
    now = 120
    assert.equal(commands.oldestMs(), 15)
    commands.end(b)
    assert.equal(commands.oldestMs(), 8, 'c, begun at 112')
    commands.end(c)
    assert.equal(commands.oldestMs(), 0)
  })
})
