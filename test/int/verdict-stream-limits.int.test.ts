// The verdict stream over real HTTP, as a client would meet its limits: a new stream starts at the ledger
// head, history is asked for (?after=0) and replayed in pages bounded by bytes, and open streams are capped
// per principal and in all, each slot freed when its client hangs up.
import assert from 'node:assert/strict'
import { ServerResponse } from 'node:http'
import { after, before, describe, it } from 'node:test'
import type { Role } from '../../src/auth/tokens.js'
import { VERDICT_EVENT_TYPES } from '../../src/http/routes/verdict-stream.js'
import { type SseMessage, SseParser } from '../../src/sdk/sse.js'
import {
  type AllowedProposal,
  allowedProposal,
  rollbackTestOf,
  SEED,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'
import { eventually } from '../support/service.js'

const PAGE_BYTES = 16 * 1024

/** One open verdict stream: its answer, the messages parsed so far, and a hang-up. */
interface OpenStream {
  readonly status: number
  readonly headers: Headers
  readonly body: string
  readonly messages: SseMessage[]
  /** the last id the stream told, with or without an event (what an EventSource resumes from) */
  lastId(): string
  until(what: string, done: (messages: readonly SseMessage[]) => boolean): Promise<void>
  close(): Promise<void>
}

const openStream = async (
  api: TestApi,
  base: string,
  who: { sub: string; role: Role },
  query = '',
  headers: Record<string, string> = {},
): Promise<OpenStream> => {
  const controller = new AbortController()
  const token = await api.tokenFor(who.sub, who.role)
  const response = await fetch(`${base}/v1/verdicts/stream${query}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
    signal: controller.signal,
  })
  if (response.status !== 200) {
    return {
      status: response.status,
      headers: response.headers,
      body: await response.text(),
      messages: [],
      lastId: () => '',
      until: async () => {},
      close: async () => {},
    }
  }
  const parser = new SseParser()
  const messages: SseMessage[] = []
  let lastId = ''
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  const reading = (async () => {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      const text = decoder.decode(value, { stream: true })
      for (const m of text.matchAll(/^id: (\d+)$/gm)) lastId = m[1] ?? lastId
      messages.push(...parser.push(text))
    }
  })().catch(() => {})
  return {
    status: 200,
    headers: response.headers,
    body: '',
    messages,
    lastId: () => lastId,
    until: async (what, done) => {
      await eventually(what, async () => (done(messages) ? true : undefined))
    },
    close: async () => {
      controller.abort()
      await reading
    },
  }
}

/** Every verdict event of the ledger, in order, as the stream tells them: [id, type]. */
const ledgerVerdicts = async (api: TestApi) => {
  const events = await api.runtime.store.readAll(0)
  return events.filter((e) => VERDICT_EVENT_TYPES.has(e.type)).map((e) => [String(e.position), e.type])
}

/** A new piece of evidence on the proposal: the decision service answers it with a new verdict. */
const newEvidence = async (api: TestApi, p: AllowedProposal, run: string) => {
  const r = await api
    .as(SEED.simulator, 'simulator')
    .post(`/v1/proposals/${p.proposalId}/rollback-tests`, rollbackTestOf(p.actionDigest, run))
  assert.equal(r.statusCode, 201, r.body)
}

describe('a verdict stream starts at the head; history is asked for and paged', () => {
  let api: TestApi
  let world: World
  let base: string
  const figures: Record<string, unknown> = {}

  before(async () => {
    api = await startTestApi({ STREAM_PAGE_BYTES: String(PAGE_BYTES) })
    world = await seedWorld(api)
    for (let i = 0; i < 6; i++) await allowedProposal(api, world, { replicas: i + 2 })
    await api.settle()
    base = await api.app.listen({ port: 0, host: '127.0.0.1' })
  })

  after(async () => {
    console.log(`verdict stream limits figures: ${JSON.stringify(figures)}`)
    await api?.close()
  })

  it('sends no old verdict to a new stream, tells it the head as its id, then sends the new ones', async () => {
    const old = await ledgerVerdicts(api)
    assert.ok(old.length >= 6, `${old.length} verdicts in the ledger`)
    const head = await api.head()
    const stream = await openStream(api, base, { sub: 'exec-new', role: 'executor' })
    assert.equal(stream.status, 200)
    await stream.until('the head as the id', () => stream.lastId() !== '')
    assert.equal(stream.lastId(), String(head))
    const p = await allowedProposal(api, world, { replicas: 42 })
    await newEvidence(api, p, 'run-new')
    await api.settle()
    const fresh = (await ledgerVerdicts(api)).filter(([id]) => Number(id) > head)
    await stream.until('the new verdicts', (m) => m.length >= fresh.length)
    await stream.close()
    assert.deepEqual(
      stream.messages.map((m) => [m.id, m.event]),
      fresh,
      'exactly the verdicts after the head, none of the history',
    )
    figures.oldVerdictsNotSent = old.length
    figures.newVerdictsSent = fresh.length
  })

  it('replays the whole history for ?after=0, in ledger order, in pages bounded by bytes', async () => {
    const expected = await ledgerVerdicts(api)
    const pages: { bytes: number; events: number }[] = []
    // every page the server writes to a verdict stream, as it hands it to the socket
    const write = ServerResponse.prototype.write
    ServerResponse.prototype.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      if (typeof chunk === 'string') {
        const events = chunk.split(/\nevent: Verdict/).length - 1
        if (events > 0) pages.push({ bytes: Buffer.byteLength(chunk), events })
      }
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
    } as typeof write
    try {
      const stream = await openStream(api, base, { sub: 'auditor-history', role: 'auditor' }, '?after=0')
      assert.equal(stream.status, 200)
      await stream.until('the whole history', (m) => m.length >= expected.length)
      await stream.close()
      assert.deepEqual(
        stream.messages.map((m) => [m.id, m.event]),
        expected,
      )
    } finally {
      ServerResponse.prototype.write = write
    }
    assert.equal(
      pages.reduce((n, p) => n + p.events, 0),
      expected.length,
    )
    for (const page of pages) {
      assert.ok(
        page.bytes <= PAGE_BYTES || page.events === 1,
        `a page of ${page.bytes} bytes, ${page.events} events`,
      )
    }
    assert.ok(pages.length < expected.length, 'pages gather several events')
    figures.historyEvents = expected.length
    figures.historyPages = pages.length
    figures.largestPageBytes = Math.max(...pages.map((p) => p.bytes))
  })

  it('resumes after Last-Event-ID, and shows an agent only its own history', async () => {
    const expected = await ledgerVerdicts(api)
    const pivot = expected[3]?.[0] ?? '0'
    const resumed = await openStream(api, base, { sub: 'exec-resume', role: 'executor' }, '', {
      'last-event-id': pivot,
    })
    const rest = expected.filter(([id]) => Number(id) > Number(pivot))
    await resumed.until('the rest', (m) => m.length >= rest.length)
    await resumed.close()
    assert.deepEqual(
      resumed.messages.map((m) => [m.id, m.event]),
      rest,
    )
    // agent-2 proposed nothing: its whole history is empty, and nobody else's verdict reaches it
    const other = await openStream(api, base, { sub: 'agent-2', role: 'agent' }, '?after=0')
    assert.equal(other.status, 200)
    await other.until('the start', () => other.lastId() === '0')
    const own = await openStream(api, base, { sub: 'agent-1', role: 'agent' }, '?after=0')
    await own.until("agent-1's history", (m) => m.length >= expected.length)
    await own.close()
    await other.close()
    assert.deepEqual(other.messages, [])
  })
})

describe('verdict streams are capped per principal and in all', () => {
  let api: TestApi
  let base: string
  const open = (sub: string) => openStream(api, base, { sub, role: 'executor' })

  before(async () => {
    api = await startTestApi({ STREAM_MAX_PER_PRINCIPAL: '2', STREAM_MAX_TOTAL: '3' })
    base = await api.app.listen({ port: 0, host: '127.0.0.1' })
  })

  after(async () => {
    await api?.close()
  })

  it('answers 429 beyond a principal’s cap, 503 beyond the total, and frees a slot when its client hangs up', async () => {
    const a1 = await open('exec-a')
    const a2 = await open('exec-a')
    assert.deepEqual([a1.status, a2.status], [200, 200])
    const a3 = await open('exec-a')
    assert.equal(a3.status, 429, a3.body)
    assert.equal(a3.headers.get('retry-after'), '5')
    const refused = JSON.parse(a3.body) as { error: string; message: string }
    assert.equal(refused.error, 'too-many-requests')
    assert.match(refused.message, /exec-a already holds 2 open verdict streams/)

    const b1 = await open('exec-b')
    assert.equal(b1.status, 200, 'another principal still gets through')
    const c1 = await open('exec-c')
    assert.equal(c1.status, 503, c1.body)
    assert.equal(c1.headers.get('retry-after'), '5')
    assert.equal((JSON.parse(c1.body) as { error: string }).error, 'unavailable')

    await a1.close()
    const c2 = await eventually('a slot freed by the hang-up', async () => {
      const s = await open('exec-c')
      return s.status === 200 ? s : undefined
    })
    // and the principal that hung up has a slot of its own again
    await c2.close()
    const a4 = await eventually('exec-a has a slot again', async () => {
      const s = await open('exec-a')
      return s.status === 200 ? s : undefined
    })
    for (const s of [a2, b1, a4]) await s.close()
    // every slot freed: three streams of three principals open again
    const again = await eventually('every slot free', async () => {
      const all = await Promise.all(['exec-x', 'exec-y', 'exec-z'].map(open))
      if (all.every((s) => s.status === 200)) return all
      for (const s of all) await s.close()
      return undefined
    })
    for (const s of again) await s.close()
  })
})
