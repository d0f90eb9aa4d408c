import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import Fastify, { type LightMyRequestResponse } from 'fastify'
import { issueToken } from '../../src/auth/tokens.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { authPlugin } from '../../src/http/auth.js'
import { errorHandler } from '../../src/http/errors.js'
import { rateLimitsPlugin } from '../../src/http/rate-limits.js'
import { appendsNothing, type Client, expectError, startTestApi, type TestApi } from '../support/api.js'

const REQUESTS_PER_SECOND = 20
const COMMANDS_PER_MINUTE = 3

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A read every principal may make, that appends nothing. */
const READ = '/v1/kill-switches'

/** An observation of a fresh version: a command that appends one event each time. */
const observationOf = (n: number) => ({
  environment: 'production',
  resource: 'deployment/web',
  version: `v${n}`,
  digest: `sha256:web-${n}`,
  observedAt: new Date().toISOString(),
})

/** Sends until the first 429, at most `limit` requests; the answers admitted before it, and the refusal. */
const untilRefused = async (send: () => Promise<LightMyRequestResponse>, limit: number) => {
  const admitted: LightMyRequestResponse[] = []
  for (let i = 0; i < limit; i += 1) {
    const answer = await send()
    if (answer.statusCode === 429) return { admitted, refused: answer }
    admitted.push(answer)
  }
  assert.fail(`no 429 after ${limit} requests`)
}

const retryAfterOf = (answer: LightMyRequestResponse): number => {
  const seconds = Number(answer.headers['retry-after'])
  assert.ok(Number.isInteger(seconds) && seconds >= 1, `Retry-After: ${answer.headers['retry-after']}`)
  return seconds
}

describe('rate limits per principal', () => {
  let api: TestApi

  before(async () => {
    api = await startTestApi({
      RATE_LIMIT_REQUESTS_PER_SECOND: String(REQUESTS_PER_SECOND),
      RATE_LIMIT_COMMANDS_PER_MINUTE: String(COMMANDS_PER_MINUTE),
    })
  })
  after(() => api.close())

  test('a principal over its request rate is answered 429 with Retry-After and RateLimit headers; another is not', async () => {
    const flooder = api.as('reader-a', 'auditor')
    const other = api.as('reader-b', 'auditor')
    const { admitted, refused } = await untilRefused(() => flooder.get(READ), 10 * REQUESTS_PER_SECOND)
    assert.equal(admitted.length, REQUESTS_PER_SECOND)
    assert.deepEqual(
      admitted.map((a) => [a.statusCode, a.headers['ratelimit-remaining']]),
      admitted.map((_, i) => [200, String(REQUESTS_PER_SECOND - 1 - i)]),
    )
    const body = expectError(refused, 429, 'too-many-requests')
    assert.match(
      body.message,
      new RegExp(`requests-per-second: at most ${REQUESTS_PER_SECOND} requests in 1 s`),
    )
    assert.deepEqual(body.details, {
      budget: 'requests-per-second',
      max: REQUESTS_PER_SECOND,
      windowSeconds: 1,
      retryAfterSeconds: retryAfterOf(refused),
    })
    assert.equal(refused.headers['ratelimit-limit'], String(REQUESTS_PER_SECOND))
    assert.equal(refused.headers['ratelimit-remaining'], '0')
    assert.equal(refused.headers['ratelimit-reset'], refused.headers['retry-after'])

    // the same moment, the same address: the other principal spends its own budget only
    const theirs = await other.get(READ)
    assert.equal(theirs.statusCode, 200, theirs.body)
    assert.equal(theirs.headers['ratelimit-remaining'], String(REQUESTS_PER_SECOND - 1))
    assert.equal((await flooder.get(READ)).statusCode, 429)
  })

  test('no header changes the key, and a forged token spends no one’s budget', async () => {
    const flooder = api.as('reader-c', 'auditor')
    let n = 0
    const disguised = () => {
      n += 1
      return flooder.get(READ, {
        'x-forwarded-for': `10.0.${n}.1`,
        'x-real-ip': `10.1.${n}.1`,
        forwarded: `for=10.2.${n}.1`,
        'x-principal': `someone-${n}`,
      })
    }
    const { admitted, refused } = await untilRefused(disguised, 10 * REQUESTS_PER_SECOND)
    assert.equal(admitted.length, REQUESTS_PER_SECOND)
    expectError(refused, 429, 'too-many-requests')

    // tokens for the victim's subject, signed with another key: refused before any budget is spent
    const { privateKey } = generateKeyPairSync('ed25519')
    const forged = await issueToken(privateKey, api.config, { sub: 'reader-d', roles: ['auditor'] })
    for (let i = 0; i < 3 * REQUESTS_PER_SECOND; i += 1) {
      const answer = await api.app.inject({
        method: 'GET',
        url: READ,
        headers: { authorization: `Bearer ${forged}` },
      })
      expectError(answer, 401, 'unauthenticated')
    }
    const victim = await api.as('reader-d', 'auditor').get(READ)
    assert.equal(victim.statusCode, 200, victim.body)
    assert.equal(victim.headers['ratelimit-remaining'], String(REQUESTS_PER_SECOND - 1))
  })

  test('a principal over its command budget is answered 429 and the ledger does not move', async () => {
    const observer = api.as('observer-flood', 'observer')
    // input its schema refuses spends no command: the budget is whole after it
    for (let i = 0; i < COMMANDS_PER_MINUTE; i += 1) {
      expectError(await observer.post('/v1/observations', { version: 'v0' }), 400, 'invalid')
    }
    for (let n = 1; n <= COMMANDS_PER_MINUTE; n += 1) {
      const answer = await observer.post('/v1/observations', observationOf(n))
      assert.equal(answer.statusCode, 201, answer.body)
      // an admitted command answers with the request budget's headers
      assert.equal(answer.headers['ratelimit-limit'], String(REQUESTS_PER_SECOND))
    }
    const refused = await appendsNothing(api, async () => {
      const answers: LightMyRequestResponse[] = []
      for (let n = COMMANDS_PER_MINUTE + 1; n <= COMMANDS_PER_MINUTE + 3; n += 1) {
        answers.push(await observer.post('/v1/observations', observationOf(n)))
      }
      return answers
    })
    for (const answer of refused) {
      const body = expectError(answer, 429, 'too-many-requests')
      assert.equal((body.details as { budget: string }).budget, 'commands-per-minute')
      assert.equal(answer.headers['ratelimit-limit'], String(COMMANDS_PER_MINUTE))
      assert.equal(answer.headers['ratelimit-remaining'], '0')
      const retryAfter = retryAfterOf(answer)
      assert.ok(retryAfter <= 60, `Retry-After ${retryAfter} within the minute`)
    }
    // nothing of the refused observations reached the ledger
    const latest = await observer.get('/v1/observations/production/deployment%2Fweb')
    assert.equal(latest.statusCode, 200, latest.body)
    assert.equal(latest.json().version, `v${COMMANDS_PER_MINUTE}`)
    // reads spend the request budget only
    assert.equal((await observer.get(READ)).statusCode, 200)
    // another principal's commands are not refused
    const other = await api.as('observer-other', 'observer').post('/v1/observations', observationOf(99))
    assert.equal(other.statusCode, 201, other.body)
  })

  test('the request budget opens again after Retry-After', async () => {
    const reader = api.as('reader-e', 'auditor')
    const { refused } = await untilRefused(() => reader.get(READ), 10 * REQUESTS_PER_SECOND)
    await sleep(retryAfterOf(refused) * 1000)
    const again = await reader.get(READ)
    assert.equal(again.statusCode, 200, again.body)
    assert.equal(again.headers['ratelimit-remaining'], String(REQUESTS_PER_SECOND - 1))
  })
})

describe('the rate-limit plugin with a short command window', () => {
  let api: TestApi
  const app = Fastify()
  let client: Pick<Client, 'get' | 'post'>

  before(async () => {
    // the service's own authentication in front of the limits, on a small app with a 300 ms command window
    api = await startTestApi()
    app.setErrorHandler(errorHandler)
    await app.register(async (scope) => {
      await scope.register(authPlugin, { verifier: api.runtime.verifier })
      await scope.register(rateLimitsPlugin, {
        requests: { max: 100, windowMs: 1000 },
        commands: { max: 2, windowMs: 300 },
        inFlight: { perPrincipal: 100, total: 1000 },
      })
      scope.get('/thing', async () => ({ ok: true }))
      scope.post('/thing', async (_request, reply) => reply.code(201).send({ ok: true }))
    })
    await app.ready()
    const authorization = `Bearer ${await api.tokenFor('agent-w', 'agent')}`
    client = {
      get: (url) => app.inject({ method: 'GET', url, headers: { authorization } }),
      post: (url, body = {}) =>
        app.inject({ method: 'POST', url, headers: { authorization }, payload: body as object }),
    }
  })
  after(async () => {
    await app.close()
    await api.close()
  })

  test('the command budget opens again after its window; reads never spend it', async () => {
    const { admitted, refused } = await untilRefused(() => client.post('/thing'), 10)
    assert.deepEqual(
      admitted.map((a) => a.statusCode),
      [201, 201],
    )
    const body = expectError(refused, 429, 'too-many-requests')
    assert.deepEqual(body.details, {
      budget: 'commands-per-minute',
      max: 2,
      windowSeconds: 0.3,
      retryAfterSeconds: 1,
    })
    for (let i = 0; i < 5; i += 1) assert.equal((await client.get('/thing')).statusCode, 200)
    await sleep(retryAfterOf(refused) * 1000)
    assert.equal((await client.post('/thing')).statusCode, 201)
  })
})

describe('the rate-limit settings', () => {
  test('no value turns a limit off: zero, a negative, a fraction or a word stops the start, naming it', () => {
    for (const name of ['RATE_LIMIT_REQUESTS_PER_SECOND', 'RATE_LIMIT_COMMANDS_PER_MINUTE']) {
      for (const value of ['0', '-1', '2.5', 'unlimited']) {
        assert.throws(
          () => loadConfig({ [name]: value }),
          (error) => error instanceof ConfigError && error.message.includes(name),
          `${name}=${value}`,
        )
      }
    }
    const defaults = loadConfig({})
    assert.ok(defaults.RATE_LIMIT_REQUESTS_PER_SECOND >= 1)
    assert.ok(defaults.RATE_LIMIT_COMMANDS_PER_MINUTE >= 1)
  })
})
