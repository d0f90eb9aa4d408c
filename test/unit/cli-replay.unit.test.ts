import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { windowStarts } from '../../src/cli/commands/metrics.js'
import { compareDecisions } from '../../src/cli/commands/replay.js'
import { UsageError } from '../../src/cli/errors.js'
import type { Decision } from '../../src/decision/replay.js'

const verdict = (cause: string, decision: 'allow' | 'block', revision = 1): Decision => ({
  stream: 'proposal-p-1',
  type: 'VerdictIssued',
  data: { decision, revision },
  causationId: cause,
})
const revoked = (cause: string): Decision => ({
  stream: 'proposal-p-1',
  type: 'VerdictRevoked',
  data: { reason: 'kill switch' },
  causationId: cause,
})

describe('replay --check: comparing answers cause by cause', () => {
  const recorded = [verdict('e1', 'block'), verdict('e2', 'allow', 2), revoked('e3')]

  it('finds no difference when every answer is replayed the same', () => {
    const result = compareDecisions(recorded, structuredClone(recorded), new Set())
    assert.deepEqual(result, { differences: [], pending: 0, matched: 3 })
  })

  it('names the event whose answer differs, and only that one', () => {
    const replayed = [verdict('e1', 'block'), verdict('e2', 'block', 2), revoked('e3')]
    const { differences, matched } = compareDecisions(recorded, replayed, new Set())
    assert.equal(matched, 2)
    assert.deepEqual(differences, [
      { causationId: 'e2', recorded: [verdict('e2', 'allow', 2)], replayed: [verdict('e2', 'block', 2)] },
    ])
  })

  it('counts answers to events the service had not reached as pending, not as differences', () => {
    const replayed = [...recorded, verdict('e4', 'block')]
    const result = compareDecisions(recorded, replayed, new Set(['e4']))
    assert.deepEqual(result, { differences: [], pending: 1, matched: 3 })
  })

  it('reports a missing answer to an event the service had decided', () => {
    const replayed = [...recorded, verdict('e4', 'block')]
    const { differences } = compareDecisions(recorded, replayed, new Set())
    assert.deepEqual(
      differences.map((d) => [d.causationId, d.recorded.length, d.replayed.length]),
      [['e4', 0, 1]],
    )
  })

  it('reports an answer in the ledger that replay does not give', () => {
    const { differences } = compareDecisions(recorded, recorded.slice(0, 2), new Set(['e3']))
    assert.deepEqual(
      differences.map((d) => [d.causationId, d.recorded.length, d.replayed.length]),
      [['e3', 1, 0]],
    )
  })
})

describe('metrics: the windows of a range', () => {
  const now = new Date('2026-03-10T15:42:00.000Z')

  it('defaults to the 24 hours up to now, the current hour included', () => {
    const starts = windowStarts({ window: 'hour', from: undefined, to: undefined }, now)
    assert.equal(starts.length, 24)
    assert.equal(starts.at(-1), '2026-03-10T15:00:00.000Z')
    assert.equal(starts[0], '2026-03-09T16:00:00.000Z')
  })

  it('covers every day that holds a moment of the range', () => {
    const starts = windowStarts(
      { window: 'day', from: '2026-01-05T23:59:00Z', to: '2026-01-07T00:00:00Z' },
      now,
    )
    assert.deepEqual(starts, [
      '2026-01-05T00:00:00.000Z',
      '2026-01-06T00:00:00.000Z',
      '2026-01-07T00:00:00.000Z',
    ])
  })

  it('refuses a start after the end, which defaults to now', () => {
    assert.throws(
      () => windowStarts({ window: 'day', from: '2026-04-01T00:00:00Z', to: undefined }, now),
      (error: unknown) => error instanceof UsageError && /--from: must not be after --to/.test(error.message),
    )
  })

  it('refuses a range of more than 1000 windows', () => {
    assert.throws(
      () => windowStarts({ window: 'hour', from: '2025-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, now),
      (error: unknown) => error instanceof UsageError && /at most 1000/.test(error.message),
    )
  })
})
