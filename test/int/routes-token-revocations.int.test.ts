import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { decodeJwt } from 'jose'
import pino from 'pino'
import { issueToken, type Role } from '../../src/auth/tokens.js'
import { buildApp } from '../../src/http/app.js'
import { startRuntime } from '../../src/runtime.js'
import { appendsNothing, expectError, startTestApi, type TestApi } from '../support/api.js'
import { eventually } from '../support/service.js'

describe('token revocation', () => {
  let api: TestApi
  const admin = () => api.as('admin', 'policy-admin')
  /** a fresh token of its own, with its jti */
  const freshToken = async (sub: string, ...roles: Role[]) => {
    if (!api.runtime.tokenKey) throw new Error('needs AUTH_MODE=embedded')
    const token = await issueToken(api.runtime.tokenKey, api.config, { sub, roles })
    return { token, jti: String(decodeJwt(token).jti) }
  }
  const read = (token: string, app = api.app) =>
    app.inject({ method: 'GET', url: '/v1/kill-switches', headers: { authorization: `Bearer ${token}` } })
  const revoke = (token: string, body: unknown, app = api.app) =>
    app.inject({
      method: 'POST',
      url: '/v1/token-revocations',
      headers: { authorization: `Bearer ${token}` },
      payload: body as Record<string, unknown>,
    })

  before(async () => {
    api = await startTestApi()
  })
  after(() => api.close())

  test('a revoked token is refused on its next request after the revocation commits, cache or not', async () => {
    const stolen = await freshToken('agent-1', 'agent')
    const spare = await freshToken('agent-1', 'agent')
    assert.equal((await read(stolen.token)).statusCode, 200, 'trusted from now on for a minute')
    const answer = await admin().post('/v1/token-revocations', { jti: stolen.jti, reason: 'leaked in a log' })
    assert.equal(answer.statusCode, 201, answer.body)
    assert.deepEqual(
      answer.json().events.map((e: { type: string; stream: string }) => [e.type, e.stream]),
      [['TokenRevoked', 'token-revocations']],
    )
    const committed = Date.now()
    const refused = await eventually(
      'the revoked token refused',
      async () => {
        const r = await read(stolen.token)
        return r.statusCode === 401 ? r : undefined
      },
      60_000,
    )
    console.log(`revoked token refused ${Date.now() - committed} ms after its revocation was answered`)
    assert.match(expectError(refused, 401, 'unauthenticated').message, /the token has been revoked/)
    assert.equal((await read(spare.token)).statusCode, 200, "the subject's other token still works")
  })

  test('revoking the same jti again answers 200 and appends nothing', async () => {
    const { jti } = await freshToken('agent-2', 'agent')
    assert.equal((await admin().post('/v1/token-revocations', { jti, reason: 'first' })).statusCode, 201)
    const again = await appendsNothing(api, () =>
      api.as('admin-2', 'policy-admin').post('/v1/token-revocations', { jti, reason: 'second' }),
    )
    assert.equal(again.statusCode, 200, again.body)
    assert.deepEqual(again.json().events, [])
  })

  test('an agent, an observer, an executor or an auditor cannot revoke a token: 403, nothing appended', async () => {
    const { jti, token } = await freshToken('agent-3', 'agent')
    for (const [sub, role] of [
      ['agent-3', 'agent'],
      ['observer-1', 'observer'],
      ['executor-1', 'executor'],
      ['auditor-1', 'auditor'],
    ] as const) {
      const r = await appendsNothing(api, () =>
        api.as(sub, role).post('/v1/token-revocations', { jti, reason: 'not mine to revoke' }),
      )
      expectError(r, 403, 'forbidden')
    }
    assert.equal((await read(token)).statusCode, 200, 'the token still works')
  })

  test('bad input is a 400 naming the field, and appends nothing', async () => {
    for (const body of [
      { jti: 'has a space', reason: 'x' },
      { jti: 'x'.repeat(201), reason: 'x' },
      { jti: 'a' },
    ]) {
      const r = await appendsNothing(api, () => admin().post('/v1/token-revocations', body))
      expectError(r, 400, 'invalid')
    }
  })

  test('a revoked admin is refused everywhere: it cannot revoke, nor undo its own revocation', async () => {
    const rogue = await freshToken('admin-3', 'policy-admin')
    const victim = await freshToken('admin-4', 'policy-admin')
    assert.equal((await revoke(rogue.token, { jti: 'some-other', reason: 'warm up' })).statusCode, 201)
    const answer = await api
      .as('admin-2', 'policy-admin')
      .post('/v1/token-revocations', { jti: rogue.jti, reason: 'rogue admin' })
    assert.equal(answer.statusCode, 201, answer.body)
    await eventually('the rogue admin refused', async () =>
      (await read(rogue.token)).statusCode === 401 ? true : undefined,
    )
    const r = await appendsNothing(api, () => revoke(rogue.token, { jti: victim.jti, reason: 'revenge' }))
    expectError(r, 401, 'unauthenticated')
    assert.equal((await read(victim.token)).statusCode, 200)
    const reset = await appendsNothing(api, () =>
      api.app.inject({
        method: 'DELETE',
        url: `/v1/token-revocations/${encodeURIComponent(rogue.jti)}`,
        headers: { authorization: `Bearer ${rogue.token}` },
      }),
    )
    assert.ok([401, 404].includes(reset.statusCode), `no way back: ${reset.statusCode}`)
  })

  test('revocations are read from the ledger at start: a restarted service refuses the token at once', async () => {
    const held = await freshToken('agent-5', 'agent')
    assert.equal(
      (await admin().post('/v1/token-revocations', { jti: held.jti, reason: 'laptop lost' })).statusCode,
      201,
    )
    await api.settle()
    const config = api.config
    await api.app.close()
    await api.runtime.close()
    // the same data folder, opened again: nothing to follow yet, the ledger alone says what is revoked
    const runtime = await startRuntime(config, pino({ level: 'silent' }))
    const app = await buildApp(runtime, { logger: false })
    try {
      expectError(await read(held.token, app), 401, 'unauthenticated')
      const other = await issueToken(runtime.tokenKey as NonNullable<typeof runtime.tokenKey>, config, {
        sub: 'agent-5',
        roles: ['agent'],
      })
      assert.equal((await read(other, app)).statusCode, 200)
    } finally {
      await app.close()
      await runtime.close()
    }
  })
})
