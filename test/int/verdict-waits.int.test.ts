// The verdict long-poll (GET /v1/proposals/:id/verdict?wait=N) waits on the ledger's events, not in a loop:
// one read of the proposal per wait (the verdicts that follow are handed to it by the ledger tail, and once the
// gate is open it reads only the events after the last it has), one listener on the ledger tail for all waiters, caps per principal
// and in all, and every slot freed when a wait ends, however it ends.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { streams } from '../../src/domain/events.js'
import {
  type AllowedProposal,
  allowedProposal,
  expectError,
  rollbackTestOf,
  SEED,
  seedWorld,
  startTestApi,
  type TestApi,
  type World,
} from '../support/api.js'
import { eventually } from '../support/service.js'

/** Counts the reads of each stream the service makes, by wrapping its store. */
const countReads = (api: TestApi) => {
  const reads = new Map<string, number>()
  const { store } = api.runtime
  const readStream = store.readStream.bind(store)
  store.readStream = (stream, fromVersion) => {
    reads.set(stream, (reads.get(stream) ?? 0) + 1)
    return readStream(stream, fromVersion)
  }
  return (stream: string) => reads.get(stream) ?? 0
}

/** A new piece of evidence on the proposal: the decision service answers it with a new verdict. */
const newEvidence = async (api: TestApi, p: AllowedProposal, run: string) => {
  const r = await api
    .as(SEED.simulator, 'simulator')
    .post(`/v1/proposals/${p.proposalId}/rollback-tests`, rollbackTestOf(p.actionDigest, run))
  assert.equal(r.statusCode, 201, r.body)
}

interface WaitAnswer {
  verdict: { revision: number; verdictId: string } | null
  timedOut: boolean
}

describe('a verdict long-poll', () => {
  let api: TestApi
  let world: World
  let readsOf: (stream: string) => number
  const figures: Record<string, unknown> = {}

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
    readsOf = countReads(api)
  })

  after(async () => {
    console.log(`verdict wait figures: ${JSON.stringify(figures)}`)
    await api?.close()
  })

  it('with afterRevision far beyond the current one, answers the next verdict while /health answers', async () => {
    const p = await allowedProposal(api, world)
    const stream = streams.proposal(p.proposalId)
    const before = readsOf(stream)
    const waiting = api
      .as('agent-1', 'agent')
      .get(`/v1/proposals/${p.proposalId}/verdict?wait=6&afterRevision=1000`)
    await eventually('the wait has read the proposal', async () =>
      readsOf(stream) > before ? true : undefined,
    )
    await newEvidence(api, p, 'run-again')
    const health = await api.app.inject({ method: 'GET', url: '/health' })
    assert.equal(health.statusCode, 200)
    const r = await waiting
    assert.equal(r.statusCode, 200, r.body)
    const answer = r.json() as WaitAnswer
    assert.equal(answer.timedOut, false)
    assert.ok(answer.verdict && answer.verdict.revision > p.revision, 'the next verdict, not the one it had')
    await api.settle()
    const reads = readsOf(stream) - before
    // the wait reads the proposal once; the new verdict reaches it from the ledger tail, and once the gate is
    // open it reads only the events after the last it has. The evidence command's own reads count too
    assert.ok(reads <= 4, `${reads} reads of the proposal during one wait`)
    figures.readsDuringOneWait = reads
  })

  it('with no new verdict, times out cleanly after one read of the proposal, its one timer, and one read of what came after it', async () => {
    const p = await allowedProposal(api, world, { replicas: 6 })
    const stream = streams.proposal(p.proposalId)
    const before = readsOf(stream)
    const r = await api
      .as('agent-1', 'agent')
      .get(`/v1/proposals/${p.proposalId}/verdict?wait=1&afterRevision=1000`)
    assert.equal(r.statusCode, 200, r.body)
    const answer = r.json() as WaitAnswer
    assert.equal(answer.timedOut, true)
    assert.equal(answer.verdict?.verdictId, p.verdictId, 'the current verdict with timedOut')
    assert.equal(
      readsOf(stream) - before,
      2,
      'one read before the wait, one of the events after it once the gate is open',
    )
  })

  it('wakes many waiters of one proposal through one tail listener, and leaves none behind', async () => {
    const p = await allowedProposal(api, world, { replicas: 7 })
    const stream = streams.proposal(p.proposalId)
    const listeners = api.runtime.tail.listenerCount('events')
    const warnings: Error[] = []
    const onWarning = (w: Error) => void warnings.push(w)
    process.on('warning', onWarning)
    const before = readsOf(stream)
    const n = 60
    const waiting = Array.from({ length: n }, (_, i) =>
      api
        .as(`auditor-${i}`, 'auditor')
        .get(`/v1/proposals/${p.proposalId}/verdict?wait=10&afterRevision=${p.revision}`),
    )
    await eventually('every wait has read the proposal', async () =>
      readsOf(stream) - before >= n ? true : undefined,
    )
    assert.equal(api.runtime.tail.listenerCount('events'), listeners, 'no listener per waiter')
    await newEvidence(api, p, 'run-many')
    const answers = await Promise.all(waiting)
    for (const r of answers) {
      assert.equal(r.statusCode, 200, r.body)
      assert.ok(((r.json() as WaitAnswer).verdict?.revision ?? 0) > p.revision, r.body)
    }
    await api.settle()
    const reads = readsOf(stream) - before
    assert.ok(reads <= 2 * n + 2, `${reads} reads for ${n} waiters: two each, and the evidence command's`)
    assert.equal(api.runtime.tail.listenerCount('events'), listeners)
    process.off('warning', onWarning)
    assert.deepEqual(
      warnings.map((w) => w.name),
      [],
    )
    figures.waiters = n
    figures.readsForAllWaiters = reads
  })

  it('refuses another agent at once, without waiting', async () => {
    const p = await allowedProposal(api, world, { replicas: 8 })
    const r = await api.as('agent-2', 'agent').get(`/v1/proposals/${p.proposalId}/verdict?wait=30`)
    expectError(r, 403, 'forbidden')
  })

  // last: the kill switch it engages stays engaged
  it('answers as the ledger holds the proposal when the answer is given, even while the ledger tail is behind', async () => {
    const p = await allowedProposal(api, world, { replicas: 9 })
    // the tail lags (as a PostgreSQL tail may behind another instance's commit, or any tail behind a backlog)
    const { tail } = api.runtime
    const emit = tail.emit
    const forward = emit.bind(tail) as (name: string, ...args: unknown[]) => boolean
    const held: Array<() => void> = []
    tail.emit = ((name: string, ...args: unknown[]) => {
      held.push(() => forward(name, ...args))
      return true
    }) as typeof tail.emit
    try {
      const agent = api.as('agent-1', 'agent')
      const poll = agent.get(`/v1/proposals/${p.proposalId}/verdict?wait=1&afterRevision=${p.revision}`)
      await new Promise((r) => setTimeout(r, 100))
      const engaged = await api
        .as(SEED.admin, 'policy-admin')
        .post('/v1/kill-switches', { scope: 'agent', target: 'agent-1', reason: 'stop the agent' })
      assert.equal(engaged.statusCode, 201, engaged.body)
      const served = (await poll).json() as WaitAnswer & { verdict: { revoked: boolean } }
      assert.equal(served.timedOut, true, 'no newer verdict')
      assert.equal(
        served.verdict.revoked,
        true,
        'the revocation the ledger holds, though the tail had not told it',
      )
    } finally {
      tail.emit = emit
      for (const release of held) release()
    }
  })
})

describe('verdict long-polls are capped per principal and in all', () => {
  let api: TestApi
  let world: World
  let base: string
  let p: AllowedProposal

  before(async () => {
    api = await startTestApi({ WAIT_MAX_PER_PRINCIPAL: '2', WAIT_MAX_TOTAL: '3' })
    world = await seedWorld(api)
    p = await allowedProposal(api, world)
    base = await api.app.listen({ port: 0, host: '127.0.0.1' })
  })

  after(async () => {
    await api?.close()
  })

  /** A long-poll over real HTTP that waits for the next verdict; abort() hangs up. */
  const open = async (sub: string, role: 'auditor' | 'executor' = 'auditor') => {
    const controller = new AbortController()
    const token = await api.tokenFor(sub, role)
    const response = fetch(
      `${base}/v1/proposals/${p.proposalId}/verdict?wait=20&afterRevision=${p.revision}`,
      {
        headers: { authorization: `Bearer ${token}` },
        signal: controller.signal,
      },
    ).catch((error: unknown) => error)
    return { response, abort: () => controller.abort() }
  }
  const waitUrl = (seconds: number) =>
    `/v1/proposals/${p.proposalId}/verdict?wait=${seconds}&afterRevision=${p.revision}`
  /** the server holds this many waits once it has read the proposal for each */
  const held = (n: number) => eventually(`${n} waits held`, async () => (readsOf() >= n ? true : undefined))
  let readsOf: () => number

  it('answers 429 to a principal beyond its own cap, 503 beyond the total, and frees slots on hang-up', async () => {
    const counter = countReads(api)
    const from = counter(streams.proposal(p.proposalId))
    readsOf = () => counter(streams.proposal(p.proposalId)) - from
    const a1 = await open('auditor-a')
    const a2 = await open('auditor-a')
    await held(2)
    const own = await api.as('auditor-a', 'auditor').get(waitUrl(20))
    const ownError = expectError(own, 429, 'too-many-requests')
    assert.equal(own.headers['retry-after'], '1')
    assert.match(ownError.message, /auditor-a already holds 2 open verdict waits/)

    // another principal still gets through, up to the total
    const b1 = await open('auditor-b')
    await held(3)
    const total = await api.as('auditor-c', 'auditor').get(waitUrl(20))
    expectError(total, 503, 'unavailable')
    assert.equal(total.headers['retry-after'], '1')
    // a read without ?wait holds nothing and takes no slot
    assert.equal((await api.as('auditor-c', 'auditor').get(waitUrl(0))).statusCode, 200)

    // a client that hangs up frees its slot: a short wait then gets one, and times out
    a1.abort()
    await a1.response
    const c = await eventually('a slot freed by the hang-up', async () => {
      const r = await api.as('auditor-c', 'auditor').get(waitUrl(1))
      return r.statusCode === 503 ? undefined : r
    })
    assert.equal(c.statusCode, 200, c.body)
    assert.equal((c.json() as WaitAnswer).timedOut, true)

    // a verdict answers every wait still held and frees its slot
    await newEvidence(api, p, 'run-caps')
    for (const w of [a2, b1]) {
      const r = (await w.response) as Response
      assert.equal(r.status, 200)
      assert.equal(((await r.json()) as WaitAnswer).timedOut, false)
    }
    for (const sub of ['auditor-a', 'auditor-b', 'auditor-c']) {
      const r = await api.as(sub, 'auditor').get(waitUrl(1))
      assert.equal(r.statusCode, 200, `${sub}: ${r.body}`)
    }
  })
})

describe('a server that stops', () => {
  it('answers every long-poll with the verdict it has before it drops connections', async () => {
    const api = await startTestApi()
    try {
      const world = await seedWorld(api)
      const p = await allowedProposal(api, world)
      const readsOf = countReads(api)
      const base = await api.app.listen({ port: 0, host: '127.0.0.1' })
      const token = await api.tokenFor('agent-1', 'agent')
      const waiting = fetch(
        `${base}/v1/proposals/${p.proposalId}/verdict?wait=30&afterRevision=${p.revision}`,
        {
          headers: { authorization: `Bearer ${token}` },
        },
      )
      await eventually('the wait has read the proposal', async () =>
        readsOf(streams.proposal(p.proposalId)) > 0 ? true : undefined,
      )
      await api.app.close()
      const r = await waiting
      assert.equal(r.status, 200)
      const answer = (await r.json()) as WaitAnswer
      assert.equal(answer.timedOut, true)
      assert.equal(answer.verdict?.verdictId, p.verdictId)
    } finally {
      await api.close()
    }
  })
})
