// What integrators' tools expect of the HTTP API: RFC 6750 bearer challenges on 401 and on a role refusal,
// CORS for the configured browser origins only (preflight ahead of authentication and rate limits), and a
// verdict stream that tells an EventSource how soon to reconnect.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { issueToken } from '../../src/auth/tokens.js'
import { type App, buildApp } from '../../src/http/app.js'
import { STREAM_RECONNECT_MS } from '../../src/http/routes/verdict-stream.js'
import { startTestApi, type TestApi } from '../support/api.js'

const DASHBOARD = 'https://dashboard.example.com'
const ELSEWHERE = 'https://elsewhere.example.com'
const REALM_ONLY = 'Bearer realm="governance-ledger"'

/** The auth-params of an RFC 6750 challenge; fails unless every value keeps to the characters it allows. */
const challenge = (response: LightMyRequestResponse | Response): Record<string, string> => {
  const header =
    response instanceof Response
      ? response.headers.get('www-authenticate')
      : (response.headers['www-authenticate'] as string | undefined)
  const match = /^Bearer ((?:[a-z_]+="[\x20\x21\x23-\x5b\x5d-\x7e]*"(?:, |$))+)$/.exec(header ?? '')
  assert.ok(match, `not an RFC 6750 challenge: ${JSON.stringify(header)}`)
  return Object.fromEntries([...(match[1] ?? '').matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
}

const corsHeaders = (response: LightMyRequestResponse) =>
  Object.keys(response.headers).filter((name) => name.startsWith('access-control-'))

describe('HTTP conventions', () => {
  let api: TestApi
  let base: string

  before(async () => {
    api = await startTestApi({ CORS_ALLOWED_ORIGINS: `${DASHBOARD}, http://localhost:5173` })
    base = await api.app.listen({ host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await api?.close()
  })

  const get = (url: string, headers: Record<string, string> = {}, app: App = api.app) =>
    app.inject({ method: 'GET', url, headers })

  it('what the router refuses (a path segment too long, a broken percent-encoding) answers in the one error shape', async () => {
    const auditor = { authorization: `Bearer ${await api.tokenFor('auditor-1', 'auditor')}` }
    const long = await get(`/v1/audit/resources/production/${'x'.repeat(501)}`, auditor)
    assert.equal(long.statusCode, 414)
    assert.deepEqual(long.json(), {
      error: 'uri-too-long',
      message: 'a path segment is longer than 500 characters',
      details: null,
    })
    const broken = await get('/v1/audit/resources/production/web%E0%A4%A', auditor)
    assert.equal(broken.statusCode, 400)
    assert.equal(broken.json().error, 'invalid')
    assert.doesNotMatch(broken.body, /web/, 'the path is not repeated')
  })

  it('a 401 without a bearer token challenges with the realm alone', async () => {
    for (const headers of [
      {},
      { authorization: 'Basic YWRtaW46YWRtaW4=' },
      { authorization: 'Bearer' },
    ] as Array<Record<string, string>>) {
      const r = await get('/v1/ledger/head', headers)
      assert.equal(r.statusCode, 401)
      assert.equal(r.headers['www-authenticate'], REALM_ONLY, JSON.stringify(headers))
      assert.equal(r.json().error, 'unauthenticated')
    }
    assert.equal((await get('/metrics')).headers['www-authenticate'], REALM_ONLY)
  })

  it('a refused token adds invalid_token and why, in a header no part of the token can shape', async () => {
    const crafted = 'x",error="insufficient_scope",realm="evil\\'
    const garbage = await get('/v1/ledger/head', { authorization: `Bearer ${crafted}` })
    assert.equal(garbage.statusCode, 401)
    assert.deepEqual(challenge(garbage), {
      realm: 'governance-ledger',
      error: 'invalid_token',
      error_description: garbage.json().message,
    })
    // a token signed with the right key whose subject is built to break out of the quoted string
    const token = await issueToken(
      api.runtime.tokenKey as NonNullable<typeof api.runtime.tokenKey>,
      api.config,
      {
        sub: 'evil", error="insufficient_scope", x="\\',
        roles: ['auditor'],
      },
    )
    const signed = await get('/v1/ledger/head', { authorization: `Bearer ${token}` })
    assert.equal(signed.statusCode, 401, signed.body)
    const found = challenge(signed)
    assert.deepEqual(Object.keys(found), ['realm', 'error', 'error_description'])
    assert.equal(found.error, 'invalid_token')
    assert.match(String(found.error_description), /^token claims: sub/)
    for (const header of [garbage.headers['www-authenticate'], signed.headers['www-authenticate']]) {
      assert.ok(
        !String(header).includes('evil') && !String(header).includes(token.slice(0, 20)),
        'no token in it',
      )
    }
  })

  it('a 403 for a role the token lacks is insufficient_scope; a refusal of need to know carries no challenge', async () => {
    const role = await api.as('agent-1', 'agent').get('/metrics')
    assert.equal(role.statusCode, 403)
    assert.deepEqual(challenge(role), {
      realm: 'governance-ledger',
      error: 'insufficient_scope',
      error_description: 'this needs one of the roles: auditor, policy-admin',
    })
    const ownership = await api
      .as('agent-1', 'agent')
      .get('/v1/agents/agent-2/track-record?environment=production')
    assert.equal(ownership.statusCode, 403, ownership.body)
    assert.equal(ownership.headers['www-authenticate'], undefined)
  })

  it('CORS: an allowed origin is answered on preflight, without a token, and on the request, which still needs one', async () => {
    const preflight = await api.app.inject({
      method: 'OPTIONS',
      url: '/v1/proposals',
      headers: {
        origin: DASHBOARD,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, idempotency-key',
      },
    })
    assert.equal(preflight.statusCode, 204, preflight.body)
    assert.equal(preflight.headers['access-control-allow-origin'], DASHBOARD)
    assert.match(String(preflight.headers['access-control-allow-methods']), /\bPOST\b/)
    for (const header of ['authorization', 'content-type', 'idempotency-key', 'last-event-id'])
      assert.match(String(preflight.headers['access-control-allow-headers']), new RegExp(`\\b${header}\\b`))
    assert.equal(preflight.headers['access-control-max-age'], '600')
    assert.equal(
      preflight.headers['access-control-allow-credentials'],
      undefined,
      'bearer tokens, not cookies',
    )
    assert.match(String(preflight.headers.vary), /origin/i)

    const token = await api.tokenFor('auditor-1', 'auditor')
    const allowed = await get('/v1/ledger/head', { origin: DASHBOARD, authorization: `Bearer ${token}` })
    assert.equal(allowed.statusCode, 200)
    assert.equal(allowed.headers['access-control-allow-origin'], DASHBOARD)
    const exposed = String(allowed.headers['access-control-expose-headers'])
    for (const header of ['retry-after', 'x-request-id', 'www-authenticate', 'ratelimit-reset'])
      assert.match(exposed, new RegExp(`\\b${header}\\b`))
    assert.equal(allowed.headers['access-control-allow-credentials'], undefined)
    // the browser reads why a request without its token was refused
    const refused = await get('/v1/ledger/head', { origin: 'http://localhost:5173' })
    assert.equal(refused.statusCode, 401)
    assert.equal(refused.headers['access-control-allow-origin'], 'http://localhost:5173')
    assert.equal(refused.headers['www-authenticate'], REALM_ONLY)
  })

  it('CORS: preflights spend no rate budget; a 429 tells the browser when to retry', async () => {
    const strict = await buildApp(
      { ...api.runtime, config: { ...api.config, RATE_LIMIT_REQUESTS_PER_SECOND: 1 } },
      {
        logger: false,
      },
    )
    try {
      for (let i = 0; i < 10; i++) {
        const preflight = await strict.inject({
          method: 'OPTIONS',
          url: '/v1/ledger/head',
          headers: { origin: DASHBOARD, 'access-control-request-method': 'GET' },
        })
        assert.equal(preflight.statusCode, 204, `preflight ${i}`)
      }
      const authorization = `Bearer ${await api.tokenFor('auditor-budget', 'auditor')}`
      assert.equal(
        (await get('/v1/ledger/head', { origin: DASHBOARD, authorization }, strict)).statusCode,
        200,
      )
      const limited = await get('/v1/ledger/head', { origin: DASHBOARD, authorization }, strict)
      assert.equal(limited.statusCode, 429)
      assert.equal(limited.headers['access-control-allow-origin'], DASHBOARD)
      assert.ok(Number(limited.headers['retry-after']) >= 1)
      assert.match(String(limited.headers['access-control-expose-headers']), /\bretry-after\b/)
    } finally {
      await strict.close()
    }
  })

  it('CORS: another origin gets no CORS header at all, on preflight or request', async () => {
    const preflight = await api.app.inject({
      method: 'OPTIONS',
      url: '/v1/proposals',
      headers: { origin: ELSEWHERE, 'access-control-request-method': 'POST' },
    })
    assert.notEqual(preflight.statusCode, 204)
    assert.deepEqual(corsHeaders(preflight), [])
    const token = await api.tokenFor('auditor-1', 'auditor')
    const request = await get('/v1/ledger/head', { origin: ELSEWHERE, authorization: `Bearer ${token}` })
    assert.equal(request.statusCode, 200)
    assert.deepEqual(corsHeaders(request), [])
  })

  it('CORS: with CORS_ALLOWED_ORIGINS unset, no CORS header at all', async () => {
    const plain = await buildApp(
      { ...api.runtime, config: { ...api.config, CORS_ALLOWED_ORIGINS: undefined } },
      {
        logger: false,
      },
    )
    try {
      const preflight = await plain.inject({
        method: 'OPTIONS',
        url: '/v1/proposals',
        headers: { origin: DASHBOARD, 'access-control-request-method': 'POST' },
      })
      assert.notEqual(preflight.statusCode, 204)
      assert.deepEqual(corsHeaders(preflight), [])
      const token = await api.tokenFor('auditor-1', 'auditor')
      const request = await get(
        '/v1/ledger/head',
        { origin: DASHBOARD, authorization: `Bearer ${token}` },
        plain,
      )
      assert.equal(request.statusCode, 200)
      assert.deepEqual(corsHeaders(request), [])
    } finally {
      await plain.close()
    }
  })

  it('the verdict stream opens with retry: and its position, and carries the CORS headers of an allowed origin', async () => {
    const controller = new AbortController()
    const response = await fetch(`${base}/v1/verdicts/stream`, {
      headers: { authorization: `Bearer ${await api.tokenFor('auditor-1', 'auditor')}`, origin: DASHBOARD },
      signal: controller.signal,
    })
    try {
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('access-control-allow-origin'), DASHBOARD)
      assert.match(response.headers.get('access-control-expose-headers') ?? '', /\bx-request-id\b/)
      const reader = (response.body as ReadableStream<Uint8Array>).getReader()
      let text = ''
      while (!/\nid: \d+\n\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value)
      assert.match(
        text,
        new RegExp(`^: verdicts after position \\d+\\n\\nretry: ${STREAM_RECONNECT_MS}\\nid: \\d+\\n\\n`),
      )
      assert.equal(STREAM_RECONNECT_MS, 1000)
    } finally {
      controller.abort()
    }
  })
})
