import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { backoffMs, type ConnectionChange, followVerdicts, SseParser } from '../../src/sdk/index.js'

const parseAll = (...chunks: string[]) => {
  const parser = new SseParser()
  return chunks.flatMap((c) => parser.push(c))
}

describe('SSE parser', () => {
  it('dispatches an event on a blank line, with its id, name and data', () => {
    const [message, ...rest] = parseAll('id: 7\nevent: VerdictIssued\ndata: {"position":7}\n\n')
    assert.deepEqual(message, { id: '7', event: 'VerdictIssued', data: '{"position":7}' })
    assert.equal(rest.length, 0)
  })

  it('waits for the blank line before dispatching', () => {
    const parser = new SseParser()
    assert.deepEqual(parser.push('id: 1\nevent: A\ndata: x\n'), [])
    assert.deepEqual(parser.push('\n'), [{ id: '1', event: 'A', data: 'x' }])
  })

  it('reassembles events split anywhere across chunks, CRLF included', () => {
    const text =
      'id: 3\r\nevent: VerdictRevoked\r\ndata: {"a":1}\r\n\r\nid: 4\r\nevent: VerdictExpired\r\ndata: {"b":2}\r\n\r\n'
    for (let cut = 1; cut < text.length; cut++) {
      const messages = parseAll(text.slice(0, cut), text.slice(cut))
      assert.deepEqual(
        messages.map((m) => [m.id, m.event, m.data]),
        [
          ['3', 'VerdictRevoked', '{"a":1}'],
          ['4', 'VerdictExpired', '{"b":2}'],
        ],
        `cut at ${cut}`,
      )
    }
  })

  it('accepts a lone CR as a line end', () => {
    assert.deepEqual(parseAll('data: a\rdata: b\r\r'), [{ id: '', event: 'message', data: 'a\nb' }])
  })

  it('ignores comments (the heartbeat) and does not dispatch an event without data', () => {
    assert.deepEqual(parseAll(': heartbeat\n\n', 'event: Lonely\n\n', ': verdicts after position 0\n\n'), [])
  })

  it('joins multi-line data with LF and keeps the value after "data:" without one leading space', () => {
    assert.deepEqual(parseAll('data:first\ndata:  second\n\n'), [
      { id: '', event: 'message', data: 'first\n second' },
    ])
  })

  it('keeps the last event id for later events, as EventSource does, and ignores an id with NUL', () => {
    const messages = parseAll('id: 10\ndata: a\n\ndata: b\n\nid: 1\u00002\ndata: c\n\n')
    assert.deepEqual(
      messages.map((m) => m.id),
      ['10', '10', '10'],
    )
  })

  it('reads the retry field as the reconnection delay, and ignores one that is not a number', () => {
    const parser = new SseParser()
    parser.push('retry: 1500\n\n')
    assert.equal(parser.retryMs, 1500)
    parser.push('retry: soon\n\n')
    assert.equal(parser.retryMs, 1500)
  })
})

describe('reconnection backoff', () => {
  it('doubles per attempt up to the maximum, between half and all of the ceiling', () => {
    assert.equal(
      backoffMs(0, 250, 10_000, () => 0),
      125,
    )
    assert.equal(
      backoffMs(0, 250, 10_000, () => 1),
      250,
    )
    assert.equal(
      backoffMs(3, 250, 10_000, () => 1),
      2000,
    )
    assert.equal(
      backoffMs(3, 250, 10_000, () => 0),
      1000,
    )
    assert.equal(
      backoffMs(30, 250, 10_000, () => 1),
      10_000,
    )
    assert.equal(
      backoffMs(30, 250, 10_000, () => 0),
      5000,
    )
  })
})

describe('reconnection delay the stream asks for', () => {
  /** A stream that opens with `retry:` and its position, then ends: the SDK must reconnect. */
  const endingStream = (retry: string) => ({
    url: 'http://governance.test/v1/verdicts/stream',
    authorization: async () => 'Bearer t',
    fetch: (async () =>
      new Response(`: verdicts after position 0\n\n${retry}id: 0\n\n`, {
        headers: { 'content-type': 'text/event-stream' },
      })) as typeof fetch,
  })
  const firstDelay = async (retry: string, initialBackoffMs?: number) => {
    let dropped: (retryInMs: number) => void = () => {}
    const delayed = new Promise<number>((resolve) => {
      dropped = resolve
    })
    const subscription = followVerdicts(endingStream(retry), () => {}, {
      ...(initialBackoffMs === undefined ? {} : { initialBackoffMs }),
      onConnectionChange: (change: ConnectionChange) => {
        if (change.state === 'disconnected') dropped(change.retryInMs)
      },
    })
    const delay = await delayed
    await subscription.close()
    return delay
  }

  it("takes the stream's retry: as its first reconnection delay, doubled with jitter from there", async () => {
    const delay = await firstDelay('retry: 3000\n')
    assert.ok(delay >= 3000 && delay <= 6000, `${delay} ms`)
  })

  it("keeps its own delay without one, and the caller's over the stream's", async () => {
    const without = await firstDelay('')
    assert.ok(without >= 250 && without <= 500, `${without} ms`)
    const chosen = await firstDelay('retry: 3000\n', 40)
    assert.ok(chosen >= 40 && chosen <= 80, `${chosen} ms`)
  })
})
