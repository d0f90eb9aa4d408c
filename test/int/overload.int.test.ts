// The overload guard: while a command has been in progress for longer than OVERLOAD_MAX_COMMAND_WAIT_MS, new
// commands are refused at once with 503 and Retry-After, before their body is read, and append nothing;
// reads, the POSTs that append nothing, /health and /ready are served, and a kill switch is still engaged. A command is held in progress by
// holding its append, so the overload lasts exactly as long as the test wants.
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../../src/config.js'
import { streams } from '../../src/domain/events.js'
import type { EventStore } from '../../src/store/port.js'
import { expectError, startTestApi, type TestApi } from '../support/api.js'

const MAX_WAIT_MS = 20
const ENVIRONMENT = 'production'
const RESOURCE = 'deployment/web'
const STREAM = streams.resource(ENVIRONMENT, RESOURCE)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const observationOf = (version: string) => ({
  environment: ENVIRONMENT,
  resource: RESOURCE,
  version,
  digest: `sha256:web-${version}`,
  observedAt: new Date().toISOString(),
})

/**
 * Holds the next append to `stream` until released (every other append goes through): the command that makes
 * it stays in progress meanwhile. `appends` counts the appends to `stream` that reached the store.
 */
const holdNextAppend = (store: EventStore, stream: string) => {
  const append = store.append.bind(store)
  let release = () => {}
  const released = new Promise<void>((done) => {
    release = done
  })
  let reached = () => {}
  const held = new Promise<void>((done) => {
    reached = done
  })
  const counted = { appends: 0 }
  store.append = async (...args) => {
    if (args[0] !== stream) return append(...args)
    counted.appends += 1
    if (counted.appends === 1) {
      reached()
      await released
    }
    return append(...args)
  }
  const restore = () => {
    release()
    store.append = append
  }
  return { held, release, counted, restore }
}

describe('the overload guard', () => {
  let api: TestApi
  let port = 0

  before(async () => {
    api = await startTestApi({ OVERLOAD_MAX_COMMAND_WAIT_MS: String(MAX_WAIT_MS) })
    await api.app.listen({ host: '127.0.0.1', port: 0 })
    const address = api.app.server.address()
    port = typeof address === 'object' && address !== null ? address.port : 0
  })
  after(() => api.close())

  test('while a command waits past the limit, new commands are refused with 503 and Retry-After and append nothing; reads are served; then commands are taken again', async () => {
    const hold = holdNextAppend(api.runtime.store, STREAM)
    try {
      const first = api.as('observer-a', 'observer').post('/v1/observations', observationOf('v1'))
      await hold.held
      await sleep(3 * MAX_WAIT_MS)
      const headBefore = await api.head()

      const observer = api.as('observer-b', 'observer')
      const refused = await observer.post('/v1/observations', observationOf('v2'))
      const body = expectError(refused, 503, 'unavailable')
      assert.equal(refused.headers['retry-after'], '1')
      assert.match(body.message, /overloaded/)
      const details = body.details as {
        overloaded: boolean
        oldestCommandMs: number
        maxCommandWaitMs: number
      }
      assert.equal(details.overloaded, true)
      assert.equal(details.maxCommandWaitMs, MAX_WAIT_MS)
      assert.ok(details.oldestCommandMs > MAX_WAIT_MS, `oldest ${details.oldestCommandMs} ms`)
      // refused before its body is read: an invalid body is not even looked at
      expectError(await observer.post('/v1/observations', { version: 'v0' }), 503, 'unavailable')
      // another command route, of another role
      const admin = api.as('admin', 'policy-admin')
      expectError(await admin.post('/v1/agents', { agentId: 'agent-x', owner: 'team' }), 503, 'unavailable')

      // the emergency brake is never shed: an overloaded service can still be stopped, and it is recorded
      const engaged = await admin.post('/v1/kill-switches', {
        scope: 'global',
        reason: 'stop every agent while the service is overloaded',
      })
      assert.equal(engaged.statusCode, 201, engaged.body)
      const switchEvents = await api.runtime.store.readStream(
        streams.killSwitch({ scope: 'global', target: null }),
      )
      assert.deepEqual(
        switchEvents.map((e) => e.type),
        ['KillSwitchEngaged'],
      )
      const headAfterBrake = await api.head()
      assert.ok(headAfterBrake > headBefore, 'the kill switch reached the ledger')

      // reads are served, and so are the POSTs that append nothing (a policy version the ledger lacks: 404)
      assert.equal((await observer.get('/v1/kill-switches')).statusCode, 200)
      const auditor = api.as('auditor-1', 'auditor')
      const replay = await auditor.post('/v1/policies/counterfactual', { policyVersion: 1 })
      expectError(replay, 404, 'not-found')
      for (const url of ['/health', '/ready']) {
        const answer = await api.app.inject({ method: 'GET', url })
        assert.equal(answer.statusCode, 200, `${url}: ${answer.body}`)
      }
      const scraped = await auditor.get('/metrics')
      assert.equal(scraped.statusCode, 200)
      assert.match(scraped.body, /^governance_commands_shed_total 3$/m)

      // nothing of the refused commands reached the ledger, and the first one was still in progress all along
      assert.equal(hold.counted.appends, 1)
      assert.equal(await api.head(), headAfterBrake)

      hold.release()
      assert.equal((await first).statusCode, 201)
      const again = await observer.post('/v1/observations', observationOf('v2'))
      assert.equal(again.statusCode, 201, again.body)
      const versions = (await api.runtime.store.readStream(STREAM)).map(
        (e) => (e.data as { version: string }).version,
      )
      assert.deepEqual(versions, ['v1', 'v2'])
    } finally {
      hold.restore()
    }
  })

  test('a body still arriving ages nothing: a slow sender does not make the service overloaded', async () => {
    const token = await api.tokenFor('observer-slow', 'observer')
    const socket: Socket = connect(port, '127.0.0.1')
    await new Promise<void>((done) => socket.once('connect', () => done()))
    let heard = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      heard += chunk
    })
    socket.on('error', () => {})
    const received = new Promise<void>((done) => api.app.server.once('request', () => done()))
    socket.write(
      'POST /v1/observations HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n' +
        `authorization: Bearer ${token}\r\ncontent-length: 1000\r\n\r\n{"environment":"`,
    )
    try {
      // the service has the slow request, admitted and waiting for the rest of its body, for longer than the
      // limit: had its wait counted, the next command would be refused
      await received
      await sleep(3 * MAX_WAIT_MS)
      const served = await api.as('observer-c', 'observer').post('/v1/observations', observationOf('v3'))
      assert.equal(served.statusCode, 201, served.body)
      assert.equal(heard, '', 'the slow request is still in flight, neither refused nor answered')
    } finally {
      socket.destroy()
    }
  })
})

describe('the overload setting', () => {
  test('no value turns the guard off: zero, below 10 ms, over a minute, a fraction or a word stops the start', () => {
    for (const value of ['0', '-1', '9', '60001', '2.5', 'off']) {
      assert.throws(
        () => loadConfig({ OVERLOAD_MAX_COMMAND_WAIT_MS: value }),
        (error) => error instanceof ConfigError && error.message.includes('OVERLOAD_MAX_COMMAND_WAIT_MS'),
        value,
      )
    }
    assert.equal(loadConfig({}).OVERLOAD_MAX_COMMAND_WAIT_MS, 1000)
  })
})
