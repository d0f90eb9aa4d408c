import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GovernanceApiError, GovernanceClient } from '../../src/sdk/index.js'

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

describe('GovernanceApiError', () => {
  it('carries the status and the one error shape of the answer', async () => {
    const error = await GovernanceApiError.from(
      json(400, { error: 'invalid', message: 'invalid body: body.plan required', details: { fields: [] } }),
    )
    assert.equal(error.status, 400)
    assert.equal(error.code, 'invalid')
    assert.equal(error.message, 'invalid body: body.plan required')
    assert.deepEqual(error.details, { fields: [] })
  })

  it('still gives a usable error for an answer that is not the error shape (a proxy page)', async () => {
    const error = await GovernanceApiError.from(new Response('<html>bad gateway</html>', { status: 502 }))
    assert.equal(error.status, 502)
    assert.equal(error.code, 'http-502')
    assert.match(error.message, /bad gateway/)
    assert.equal(error.retryable, true)
  })

  it('tells a lost concurrency race (retry it) from a conflict of the rules (do not)', async () => {
    const race = await GovernanceApiError.from(
      json(409, {
        error: 'conflict',
        message: 'stream proposal-p1 is at version 6, expected 5',
        details: { stream: 'proposal-p1', expected: 5, actual: 6 },
      }),
    )
    assert.equal(race.concurrencyConflict, true)
    const rule = await GovernanceApiError.from(
      json(409, {
        error: 'conflict',
        message: 'policy version 3 is out of sequence',
        details: { expected: 2 },
      }),
    )
    assert.equal(rule.concurrencyConflict, false)
    assert.equal(rule.retryable, false)
  })

  it('counts only unavailability as retryable', async () => {
    for (const [status, retryable] of [
      [400, false],
      [401, false],
      [403, false],
      [404, false],
      [429, true],
      [500, false],
      [503, true],
      [504, true],
    ] as const) {
      const error = await GovernanceApiError.from(json(status, { error: 'x', message: 'y', details: null }))
      assert.equal(error.retryable, retryable, String(status))
    }
  })

  it('reads Retry-After in seconds, and nothing else as one', async () => {
    const limited = (retryAfter: string) =>
      GovernanceApiError.from(
        new Response(JSON.stringify({ error: 'too-many-requests', message: 'slow down', details: null }), {
          status: 429,
          headers: { 'retry-after': retryAfter },
        }),
      )
    assert.equal((await limited('7')).retryAfterSeconds, 7)
    assert.equal((await limited('Wed, 21 Oct 2015 07:28:00 GMT')).retryAfterSeconds, null)
    assert.equal((await limited('-1')).retryAfterSeconds, null)
  })
})

describe('GovernanceClient against a 429', () => {
  /** A client whose fetch answers 429 with this Retry-After once, then 200; counts the calls. */
  const throttledOnce = (retryAfter: string) => {
    let calls = 0
    const client = new GovernanceClient({
      baseUrl: 'http://governance.invalid',
      token: 't',
      fetch: async () => {
        calls += 1
        return calls === 1
          ? new Response(
              JSON.stringify({ error: 'too-many-requests', message: 'slow down', details: null }),
              {
                status: 429,
                headers: { 'retry-after': retryAfter },
              },
            )
          : json(200, { ok: true })
      },
    })
    return { client, calls: () => calls }
  }

  it('retries after the Retry-After the service asked for', async () => {
    const { client, calls } = throttledOnce('1')
    assert.deepEqual(await client.request('GET', '/v1/kill-switches', { retries: 2 }), { ok: true })
    assert.equal(calls(), 2)
  })

  it('hands a Retry-After longer than it waits on its own to the caller at once', async () => {
    const { client, calls } = throttledOnce('60')
    await assert.rejects(
      client.request('GET', '/v1/kill-switches', { retries: 2 }),
      (error) =>
        error instanceof GovernanceApiError && error.status === 429 && error.retryAfterSeconds === 60,
    )
    assert.equal(calls(), 1)
  })
})
