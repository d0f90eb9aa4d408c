// Bodies sent slowly hold their buffers until they are whole: a principal may have only so many commands in
// flight, and a request still arriving after REQUEST_TIMEOUT_SECONDS is cut off, so slow senders cannot hold
// the service's memory.
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { startTestApi, type TestApi } from '../support/api.js'

const IN_FLIGHT = 3
let api: TestApi
let port = 0

before(async () => {
  api = await startTestApi({
    COMMANDS_IN_FLIGHT_PER_PRINCIPAL: String(IN_FLIGHT),
    REQUEST_TIMEOUT_SECONDS: '2',
  })
  await api.app.listen({ host: '127.0.0.1', port: 0 })
  const address = api.app.server.address()
  port = typeof address === 'object' && address !== null ? address.port : 0
})

after(async () => {
  await api.close()
})

/** A POST that announces a mebibyte and sends a few bytes of it, then waits; resolves with what it hears. */
const slowPost = async (token: string): Promise<{ socket: Socket; answer: Promise<string> }> => {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(
    'POST /v1/observations HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n' +
      `authorization: Bearer ${token}\r\ncontent-length: 1048000\r\n\r\n{"environment":"`,
  )
  let heard = ''
  const answer = new Promise<string>((resolve) => {
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      heard += chunk
    })
    socket.once('close', () => resolve(heard))
  })
  return { socket, answer }
}

const post = async (token: string) =>
  fetch(`http://127.0.0.1:${port}/v1/observations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({}),
  })

test('a principal with its commands in flight gets 429 for one more; others are not held back; slots free on close', async () => {
  const token = await api.tokenFor('observer-slow', 'observer')
  const slow = await Promise.all(Array.from({ length: IN_FLIGHT }, () => slowPost(token)))
  // the slow bodies have reached the service: one more of this principal's is refused at once
  let refused: Response | undefined
  for (let i = 0; i < 50 && refused?.status !== 429; i++) {
    refused = await post(token)
    if (refused.status !== 429) await new Promise((r) => setTimeout(r, 20))
  }
  assert.equal(refused?.status, 429)
  const body = (await refused?.json()) as { error: string; message: string; details: { limit: number } }
  assert.equal(body.error, 'too-many-requests')
  assert.match(body.message, /commands in flight/)
  assert.equal(body.details.limit, IN_FLIGHT)
  assert.equal(refused?.headers.get('retry-after'), '1')
  // another principal still gets through to validation (400 for an empty observation)
  assert.equal((await post(await api.tokenFor('observer-other', 'observer'))).status, 400)
  for (const { socket } of slow) socket.destroy()
  await Promise.all(slow.map((s) => s.answer))
  let freed = 0
  for (let i = 0; i < 50 && freed !== 400; i++) {
    freed = (await post(token)).status
    if (freed !== 400) await new Promise((r) => setTimeout(r, 20))
  }
  assert.equal(freed, 400, 'the closed connections gave their slots back')
})

test('a body still arriving after REQUEST_TIMEOUT_SECONDS is cut off with 408', async () => {
  const token = await api.tokenFor('observer-late', 'observer')
  const started = Date.now()
  const { answer } = await slowPost(token)
  const heard = await answer
  assert.match(heard, /^HTTP\/1\.1 408/)
  console.log(`a slow body was cut off with 408 after ${Date.now() - started} ms (timeout 2 s)`)
})
