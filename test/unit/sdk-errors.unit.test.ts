import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { GovernanceApiError } from '../../src/sdk/index.js'

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
})
