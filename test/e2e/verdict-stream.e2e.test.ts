import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  AuditorClient,
  type ConnectionChange,
  ExecutorClient,
  type VerdictStreamEvent,
  verifyVerdictOffline,
} from '../../src/sdk/index.js'
import {
  type Cast,
  eventually,
  governed,
  policyV,
  proposeWithEvidence,
  type RunningService,
  setUpWorld,
  startService,
} from '../support/service.js'

const VERDICT_TYPES = new Set(['VerdictIssued', 'VerdictRevoked', 'VerdictExpired'])
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The verdict stream over real HTTP: resumable, gap-free, duplicate-free, in ledger order. */
describe('the verdict stream (Server-Sent Events)', () => {
  let svc: RunningService
  let cast: Cast
  let other: Cast
  let auditor: AuditorClient
  const proposals: string[] = []
  /** the plan of each proposal, by id: an executor knows the plan it is about to run */
  const plans = new Map<string, Record<string, unknown>>()
  const figures: Record<string, unknown> = {}

  before(async () => {
    svc = await startService()
    cast = await setUpWorld(svc)
    other = await setUpWorld(svc, { agentId: 'agent-other', policy: false })
    auditor = new AuditorClient({ baseUrl: svc.url, token: await svc.tokenFor('auditor-1', 'auditor') })
  })

  after(async () => {
    console.log(`e2e verdict stream figures: ${JSON.stringify(figures)}`)
    await svc?.close()
  })

  const propose = async (who: Cast, n: number) => {
    const plan = { replicas: n }
    const made = await proposeWithEvidence(who, `deployment/svc-${proposals.length}`, plan)
    proposals.push(made.proposalId)
    plans.set(made.proposalId, plan)
    return made
  }

  /** Waits until the decision service, every view and the scheduler have nothing left to add. */
  const settled = async () => {
    let last = -1
    for (;;) {
      const head = await auditor.request<{
        position: number
        decision: { lag: number }
        views: Record<string, { lag: number }>
      }>('GET', '/v1/ledger/head')
      const idle = head.decision.lag === 0 && Object.values(head.views).every((v) => v.lag === 0)
      if (idle && head.position === last) return head.position
      last = idle ? head.position : -1
      await sleep(400)
    }
  }

  /** Every verdict event of every proposal, from the audit timelines, in ledger order. */
  const ledgerVerdicts = async () => {
    const events: { position: number; eventId: string; type: string; proposalId: string }[] = []
    for (const proposalId of proposals) {
      const audit = await auditor.auditAction(proposalId)
      for (const e of audit.timeline) if (VERDICT_TYPES.has(e.type)) events.push({ ...e, proposalId })
    }
    return events.sort((a, b) => a.position - b.position)
  }

  it('rejects a garbage resume point with 400 in the one error shape', async () => {
    const token = await svc.tokenFor('exec-1', 'executor')
    for (const [query, header] of [
      ['?after=abc', undefined],
      ['?after=-1', undefined],
      ['?after=1.5', undefined],
      ['', 'twelve'],
      ['', '-3'],
    ] as const) {
      const response = await fetch(`${svc.url}/v1/verdicts/stream${query}`, {
        headers: { authorization: `Bearer ${token}`, ...(header ? { 'last-event-id': header } : {}) },
      })
      assert.equal(response.status, 400, `${query} ${header ?? ''}`)
      const body = (await response.json()) as { error: string; message: string; details: unknown }
      assert.equal(body.error, 'invalid')
      assert.match(body.message, header ? /last-event-id/ : /after/)
    }
  })

  it('answers with the event-stream headers, and Last-Event-ID takes precedence over ?after', async () => {
    await propose(cast, 1)
    const all = await ledgerVerdicts()
    const pivot = all[1]?.position ?? 0
    const controller = new AbortController()
    const response = await fetch(`${svc.url}/v1/verdicts/stream?after=0`, {
      headers: {
        authorization: `Bearer ${await svc.tokenFor('exec-1', 'executor')}`,
        'last-event-id': String(pivot),
      },
      signal: controller.signal,
    })
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/)
    assert.equal(response.headers.get('cache-control'), 'no-store')
    assert.equal(response.headers.get('x-accel-buffering'), 'no')
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    while (!/\nid: \d+\nevent: /.test(text)) text += new TextDecoder().decode((await reader.read()).value)
    controller.abort()
    const firstId = Number(/\nid: (\d+)\nevent: /.exec(text)?.[1])
    assert.equal(firstId, all[2]?.position, 'the stream resumes right after the Last-Event-ID')
    assert.match(text, new RegExp(`^: verdicts after position ${pivot}\n\nretry: \\d+\nid: ${pivot}\n\n`))
  })

  it('delivers every verdict exactly once, in ledger order, across an abort and a service restart', async () => {
    const executor = new ExecutorClient({ baseUrl: svc.url, token: await svc.tokenFor('exec-1', 'executor') })
    const received: VerdictStreamEvent[] = []
    const changes: ConnectionChange[] = []
    const options = {
      initialBackoffMs: 100,
      maxBackoffMs: 1000,
      onConnectionChange: (c: ConnectionChange) => changes.push(c),
    }

    // consume some, then abort the connection
    const first = executor.subscribe((e) => void received.push(e), options)
    await propose(cast, 2)
    const target = (await ledgerVerdicts()).at(-1)?.position ?? 0
    await eventually('the first verdicts', async () => (first.lastEventId >= target ? true : undefined))
    await first.close()
    const abortedAt = first.lastEventId
    const seenBeforeAbort = received.length

    // produce more while nobody listens: new proposals, a revocation
    await propose(cast, 3)
    await propose(other, 4)
    await cast.admin.engageKillSwitch({ scope: 'agent', target: 'agent-other', reason: 'stream test' })
    await governed(
      cast.secondAdmin,
      cast.admin.releaseKillSwitch({ scope: 'agent', target: 'agent-other', reason: 'stream test over' }),
    )
    assert.equal(received.length, seenBeforeAbort, 'nothing arrives after close()')

    // resume with the last id, then drop the connection from the server side by restarting the service
    const second = executor.subscribe((e) => void received.push(e), { ...options, after: abortedAt })
    const beforeRestart = (await ledgerVerdicts()).at(-1)?.position ?? 0
    await eventually('the resumed verdicts', async () =>
      second.lastEventId >= beforeRestart ? true : undefined,
    )
    const restartStarted = Date.now()
    await svc.restart()
    await eventually('the reconnection', async () =>
      changes.filter((c) => c.state === 'connected').length >= 3 ? true : undefined,
    )
    figures.reconnectAfterRestartMs = Date.now() - restartStarted

    // more after the restart, with expiries: a one-second verdict lifetime
    await propose(other, 5)
    await governed(cast.secondAdmin, cast.admin.publishPolicy(policyV(2, { verdictTtlSeconds: 1 })))
    await sleep(1500)
    await settled()
    const expected = await ledgerVerdicts()
    const last = expected.at(-1)?.position ?? 0
    await eventually('every verdict', async () => (second.lastEventId >= last ? true : undefined))
    await sleep(300)
    await second.close()

    const ids = received.map((e) => e.eventId)
    assert.equal(new Set(ids).size, ids.length, 'no verdict is delivered twice')
    const positions = received.map((e) => e.position)
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => a - b),
      'in ledger order',
    )
    assert.deepEqual(
      received.map((e) => [e.position, e.eventId, e.type, e.data.proposalId]),
      expected.map((e) => [e.position, e.eventId, e.type, e.proposalId]),
      'exactly the verdict events of the ledger, none missing, none invented',
    )
    const types = new Set(received.map((e) => e.type))
    assert.deepEqual([...types].sort(), ['VerdictExpired', 'VerdictIssued', 'VerdictRevoked'])

    // every issued verdict carries the service's signature over exactly its fields
    const keys = await executor.signingKeys()
    for (const e of received) {
      if (e.type !== 'VerdictIssued') continue
      const { proposalId, tool, action, resource, environment, executingIdentity } = e.data
      const plan = plans.get(proposalId)
      const checked = await verifyVerdictOffline(
        e.data,
        keys,
        { action: { proposalId, tool, action, resource, environment, executingIdentity, plan } },
        new Date(e.data.decidedAt),
      )
      assert.ok(
        checked.ok || checked.reason === 'not-allowed',
        `${e.eventId}: ${checked.ok ? '' : checked.reason}`,
      )
    }

    const drops = changes.filter((c) => c.state === 'disconnected')
    assert.ok(drops.length >= 1, 'the restart dropped the connection')
    assert.ok(drops.every((c) => c.after >= beforeRestart && c.retryInMs <= 1000))
    assert.ok(
      changes.some((c) => c.state === 'connected' && c.after >= beforeRestart),
      'the reconnection resumed after the last position seen',
    )
    figures.verdictEvents = received.length
    figures.beforeAbort = seenBeforeAbort
    figures.byType = Object.fromEntries(
      [...types].map((t) => [t, received.filter((e) => e.type === t).length]),
    )
    figures.connections = changes.filter((c) => c.state === 'connected').length
  })

  it('shows an agent only the verdicts of its own proposals', async () => {
    const token = await svc.tokenFor('agent-other', 'agent')
    const asAgent = new ExecutorClient({ baseUrl: svc.url, token })
    const mine: VerdictStreamEvent[] = []
    const expected = (await ledgerVerdicts()).filter((e) => e.position > 0)
    const ownProposals = new Set<string>()
    for (const proposalId of proposals) {
      if ((await cast.approver.getProposal(proposalId)).proposal.agentId === 'agent-other')
        ownProposals.add(proposalId)
    }
    const own = expected.filter((e) => ownProposals.has(e.proposalId))
    assert.ok(own.length > 0 && own.length < expected.length)
    const subscription = asAgent.subscribe((e) => void mine.push(e))
    const last = own.at(-1)?.position ?? 0
    await eventually("the agent's verdicts", async () =>
      subscription.lastEventId >= last ? true : undefined,
    )
    await sleep(300)
    await subscription.close()
    assert.deepEqual(
      mine.map((e) => e.eventId),
      own.map((e) => e.eventId),
      'its own issued, revoked and expired verdicts, and nothing else',
    )
    assert.ok(mine.some((e) => e.type === 'VerdictRevoked') && mine.some((e) => e.type === 'VerdictExpired'))
    figures.agentSawOfTotal = `${mine.length}/${expected.length}`
  })

  it('keeps a quiet stream alive with a comment heartbeat every 15 s', async () => {
    const head = await auditor.ledgerHead()
    const controller = new AbortController()
    const started = Date.now()
    const response = await fetch(`${svc.url}/v1/verdicts/stream?after=${head.position}`, {
      headers: { authorization: `Bearer ${await svc.tokenFor('auditor-1', 'auditor')}` },
      signal: controller.signal,
    })
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    const timer = setTimeout(() => controller.abort(), 20_000)
    try {
      while (!text.includes(': heartbeat\n\n')) text += new TextDecoder().decode((await reader.read()).value)
    } finally {
      clearTimeout(timer)
      controller.abort()
    }
    const waited = Date.now() - started
    assert.ok(waited >= 14_000 && waited < 20_000, `the heartbeat came after ${waited} ms`)
    assert.doesNotMatch(text, /\nevent: /, 'a quiet stream carries no event')
    figures.heartbeatAfterMs = waited
  })

  it('closed the ledger subscription of every stream whose client went away', async () => {
    const count = (msg: string) => svc.output().split(`"msg":"${msg}"`).length - 1
    const opened = count('verdict stream opened')
    assert.ok(opened >= 6, `${opened} streams were opened`)
    await eventually('every stream closed', async () =>
      count('verdict stream closed') === opened ? true : undefined,
    )
    figures.streamsOpenedAndClosed = opened
  })
})
