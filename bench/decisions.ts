// End-to-end decisions/s over HTTP (a proposal with its evidence submitted, the durable verdict waited for),
// against a bare Fastify route that parses and returns the same JSON body, both loaded by autocannon with the
// same connections and duration; then p50/p99 of the decision latency at half of the measured maximum rate.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import {
  type BenchOptions,
  type Figure,
  fmt,
  interleave,
  median,
  now,
  percentile,
  progress,
  ratioAtLeast,
  reported,
  sleep,
} from './lib.js'
import {
  type Child,
  decideOnce,
  type Phase,
  type Principals,
  preparePhase,
  principals,
  type Service,
  seedLowImpactWorld,
  startEchoServer,
  startService,
} from './service.js'

const CONNECTIONS = 64

interface Load {
  readonly rate: number
  readonly allows: number
  readonly blocks: number
  readonly errors: number
  /** submissions refused by the overload guard (503), counted apart from the errors */
  readonly shed: number
}

/** Whether a 503's body is the overload guard's refusal (rather than a closed gate or a busy storage). */
const overloaded = (body: string): boolean =>
  (JSON.parse(body) as { details?: { overloaded?: boolean } | null }).details?.overloaded === true

const run = (options: autocannon.Options): Promise<autocannon.Result> =>
  new Promise((done, fail) => {
    autocannon(options, (error, result) => (error ? fail(error) : done(result)))
  })

/** autocannon on the echo route: requests/s answered 2xx. */
const loadEcho = async (echo: Child, body: string, seconds: number): Promise<number> => {
  const result = await run({
    url: `${echo.url}/echo`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    duration: seconds,
  })
  if (result.non2xx > 0 || result.errors > 0)
    progress(`  echo: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return result['2xx'] / result.duration
}

/**
 * autocannon on the service, each connection looping over a two-request sequence: submit the proposal, then
 * wait for its verdict (the proposal id carried from the first response to the second in the context).
 */
const loadDecisions = async (
  svc: Service,
  agentToken: string,
  phase: Phase,
  seconds: number,
): Promise<Load> => {
  let allows = 0
  let blocks = 0
  let errors = 0
  let shed = 0
  type Context = { proposalId?: string }
  const result = await run({
    url: svc.url,
    connections: CONNECTIONS,
    duration: seconds,
    timeout: 30,
    headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
    requests: [
      {
        method: 'POST',
        path: '/v1/proposals',
        body: JSON.stringify(phase.body),
        onResponse: (status, body, context: Context) => {
          context.proposalId =
            status === 201 ? (JSON.parse(body) as { proposalId: string }).proposalId : undefined
          if (status === 503 && overloaded(body)) shed += 1
          else if (status !== 201) errors += 1
        },
      },
      {
        method: 'GET',
        // a falsy answer starts the sequence again: the submission failed
        setupRequest: (request, context: Context) =>
          (context.proposalId
            ? { ...request, path: `/v1/proposals/${context.proposalId}/verdict?wait=10` }
            : undefined) as autocannon.Request,
        onResponse: (status, body) => {
          const verdict =
            status === 200 ? (JSON.parse(body) as { verdict: { decision: string } | null }).verdict : null
          if (verdict?.decision === 'allow') allows += 1
          else if (verdict?.decision === 'block') blocks += 1
          else errors += 1
        },
      },
    ],
  })
  return { rate: allows / result.duration, allows, blocks, errors, shed }
}

/**
 * Decisions started at a fixed rate whatever the answers (an open loop over fetch keep-alive), each timed from
 * its scheduled start to its verdict, so that a stall shows as latency rather than as fewer requests.
 */
const latencyAtRate = async (
  svc: Service,
  agentToken: string,
  phase: Phase,
  rate: number,
  seconds: number,
): Promise<{ latencies: number[]; late: number; failed: number; shed: number }> => {
  const latencies: number[] = []
  const inFlight: Promise<void>[] = []
  let failed = 0
  let shed = 0
  const warmUp = Math.min(2, seconds / 5)
  const total = Math.floor(rate * (seconds + warmUp))
  const started = now()
  let late = 0
  for (let i = 0; i < total; i += 1) {
    const due = started + (i / rate) * 1000
    const wait = due - now()
    if (wait > 1) await sleep(wait)
    else if (wait < -50) late += 1
    const counted = i >= rate * warmUp
    inFlight.push(
      decideOnce(svc.url, agentToken, phase.body, due).then(
        ({ decision, ms }) => {
          if (decision === 'shed') shed += 1
          else if (decision !== 'allow') failed += 1
          else if (counted) latencies.push(ms)
        },
        () => {
          failed += 1
        },
      ),
    )
  }
  await Promise.all(inFlight)
  return { latencies, late, failed, shed }
}

export const decisionsFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const seconds = options.quick ? 4 : 10
  const rounds = options.quick ? 2 : 3
  const latencySeconds = options.quick ? 8 : 20
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-decisions-'))
  let echo: Child | null = null
  let svc: Service | null = null
  try {
    ;[echo, svc] = await Promise.all([startEchoServer(), startService(dataDir)])
    const who: Principals = await principals(svc)
    await seedLowImpactWorld(svc, who)
    const warm = await preparePhase(svc, who, 'warm-up')
    const body = JSON.stringify(warm.body)
    progress(`decisions: ${rounds} rounds of ${seconds} s per side, ${CONNECTIONS} connections; warming up`)
    await loadEcho(echo, body, 2)
    await loadDecisions(svc, who.agent, warm, 2)
    const loads: Load[] = []
    const echoSide = echo
    const serviceSide = svc
    const result = await interleave(
      rounds,
      () => loadEcho(echoSide, body, seconds),
      async (round) => {
        const phase = await preparePhase(serviceSide, who, `round-${round + 1}`)
        const load = await loadDecisions(serviceSide, who.agent, phase, seconds)
        loads.push(load)
        if (load.blocks + load.errors + load.shed > 0)
          progress(
            `  round ${round + 1}: ${load.blocks} blocks, ${load.errors} errors and ${load.shed} shed besides ${load.allows} allows`,
          )
        return load.rate
      },
    )
    const maxRate = median(result.measured)
    const rate = Math.max(1, maxRate / 2)
    progress(
      `decisions: latency at ${fmt(rate)} decisions/s (half of ${fmt(maxRate)}) for ${latencySeconds} s`,
    )
    const phase = await preparePhase(svc, who, 'latency')
    const { latencies, late, failed, shed } = await latencyAtRate(svc, who.agent, phase, rate, latencySeconds)
    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    const rssAfter = svc.rssMb()
    const latencyNote = `open loop at ${fmt(rate)} decisions/s (half the measured maximum) for ${latencySeconds} s over fetch keep-alive, ${latencies.length} decisions timed from their scheduled start to the verdict; ${shed} submissions shed by the overload guard (503, OVERLOAD_MAX_COMMAND_WAIT_MS at its default), not timed; ${failed} not allowed or failed; ${late} started over 50 ms late by the client`
    const blocked = loads.reduce((n, l) => n + l.blocks + l.errors, 0)
    const shedAtMax = loads.reduce((n, l) => n + l.shed, 0)
    return [
      ratioAtLeast(
        {
          name: 'decisions over HTTP',
          value: maxRate,
          unit: 'decisions/s',
          baseline: `bare Fastify POST route that parses and returns the same JSON body, autocannon, ${CONNECTIONS} connections, same duration (requests/s)`,
          baselineValue: median(result.baseline),
          note: `${rounds} interleaved rounds of ${seconds} s; autocannon with ${CONNECTIONS} connections, each looping POST /v1/proposals then GET /v1/proposals/:id/verdict?wait=10 (a low-impact proposal with its snapshot evidence, allowed); counts allow verdicts received; ${blocked} blocks or errors and ${shedAtMax} submissions shed (503) in all rounds; each round on a fresh identity, grant and observation; proposals stay open (none is executed); service RSS after the load ${fmt(rssAfter)} MB`,
          rounds: result,
        },
        0.25,
      ),
      reported({
        name: 'decision latency p50 at half max rate',
        value: p50,
        unit: 'ms',
        baseline: 'none: reported',
        baselineValue: null,
        note: latencyNote,
      }),
      reported({
        name: 'decision latency p99 at half max rate',
        value: p99,
        unit: 'ms',
        baseline: 'none: reported',
        baselineValue: null,
        note: latencyNote,
      }),
    ]
  } finally {
    await Promise.all([echo?.stop(), svc?.stop()])
    rmSync(dataDir, { recursive: true, force: true })
  }
}
