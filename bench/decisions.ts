// End-to-end decisions/s over HTTP (a proposal with its evidence submitted with ?wait, answered with its durable
// verdict in one request), against a bare Fastify route that parses and returns the same JSON body, both loaded by
// autocannon with the same connections and duration; the decision latency of one client alone on a quiet
// service, one decision after the other; then p50/p99 of the decision latency at half of the measured maximum rate.
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
  valueAtMost,
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

/** What one autocannon load of decisions received. */
export interface Load {
  /** allow verdicts received per second */
  readonly rate: number
  readonly allows: number
  readonly blocks: number
  /** answers other than a 201 with a verdict, by status ('201' here: a 201 without a verdict) */
  readonly refused: Readonly<Record<string, number>>
  /** connection errors and timeouts */
  readonly errors: number
}

/** Everything but the allows of a load, in a few words; '' when there is nothing else. */
export const unexpected = (load: Load): string => {
  const refused = Object.entries(load.refused).map(([status, n]) => `${n} answered ${status}`)
  const parts = [
    ...(load.blocks > 0 ? [`${load.blocks} blocks`] : []),
    ...refused,
    ...(load.errors > 0 ? [`${load.errors} connection errors or timeouts`] : []),
  ]
  return parts.join(', ')
}

/** How many decisions of some loads were not allows, in all. */
export const notAllowed = (loads: readonly Load[]): number =>
  loads.reduce((n, l) => n + l.blocks + l.errors + Object.values(l.refused).reduce((a, b) => a + b, 0), 0)

/**
 * autocannon on the service, each connection looping over one request: the proposal submitted with `?wait`,
 * answered 201 with its verdict, decided in the commit that appended it. Several URLs (instances serving one
 * ledger) share the connections, one after the other.
 */
export const loadDecisions = async (
  urls: readonly string[],
  agentToken: string,
  body: Record<string, unknown>,
  seconds: number,
  connections: number,
): Promise<Load> => {
  let allows = 0
  let blocks = 0
  const refused: Record<string, number> = {}
  const result = await run({
    // autocannon takes a list of URLs and gives its connections to them in turn; its types know one URL only
    url: (urls.length === 1 ? urls[0] : urls) as string,
    connections,
    duration: seconds,
    timeout: 30,
    headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' },
    requests: [
      {
        method: 'POST',
        path: '/v1/proposals?wait',
        body: JSON.stringify(body),
        onResponse: (status, text) => {
          const verdict =
            status === 201
              ? (JSON.parse(text) as { verdict?: { decision: string } | null }).verdict
              : undefined
          if (verdict?.decision === 'allow') allows += 1
          else if (verdict?.decision === 'block') blocks += 1
          else refused[String(status)] = (refused[String(status)] ?? 0) + 1
        },
      },
    ],
  })
  return { rate: allows / result.duration, allows, blocks, refused, errors: result.errors }
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

/**
 * One client alone on the service: decisions one after the other, each timed from its request to its verdict;
 * a decision not allowed, or a request that fails, is counted, not timed.
 */
const sequentialLatency = async (
  svc: Service,
  agentToken: string,
  phase: Phase,
  count: number,
): Promise<{ latencies: number[]; failed: string[] }> => {
  const latencies: number[] = []
  const failed: string[] = []
  for (let i = 0; i < count; i += 1) {
    try {
      const { decision, ms } = await decideOnce(svc.url, agentToken, phase.body)
      if (decision === 'allow') latencies.push(ms)
      else failed.push(`decided ${decision}`)
    } catch (error) {
      failed.push(error instanceof Error ? error.message : String(error))
    }
  }
  return { latencies, failed }
}

export const decisionsFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const seconds = options.quick ? 4 : 10
  const rounds = options.quick ? 2 : 3
  const latencySeconds = options.quick ? 8 : 20
  const sequential = options.quick ? 300 : 1000
  const sequentialWarmUp = options.quick ? 100 : 200
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
    await loadDecisions([svc.url], who.agent, warm.body, 2, CONNECTIONS)

    progress(
      `decisions: one client alone, ${sequential} decisions one after the other (after ${sequentialWarmUp} not timed)`,
    )
    const quiet = await preparePhase(svc, who, 'one-client')
    await sequentialLatency(svc, who.agent, quiet, sequentialWarmUp)
    const { latencies: alone, failed: aloneFailed } = await sequentialLatency(
      svc,
      who.agent,
      quiet,
      sequential,
    )
    if (aloneFailed.length > 0)
      progress(`  ${aloneFailed.length} not allowed or failed, the first: ${aloneFailed[0]}`)
    const aloneNote = `one client alone on the service (nothing else loads it), ${sequential} decisions one after the other over fetch keep-alive after ${sequentialWarmUp} not timed, each POST /v1/proposals?wait timed from its request to its 201 with the allow verdict; ${aloneFailed.length} not allowed or failed${aloneFailed.length > 0 ? ` (the first: ${aloneFailed[0]})` : ''}; SQLite ledger`

    const loads: Load[] = []
    const echoSide = echo
    const serviceSide = svc
    const result = await interleave(
      rounds,
      () => loadEcho(echoSide, body, seconds),
      async (round) => {
        const phase = await preparePhase(serviceSide, who, `round-${round + 1}`)
        const load = await loadDecisions([serviceSide.url], who.agent, phase.body, seconds, CONNECTIONS)
        loads.push(load)
        const besides = unexpected(load)
        if (besides) progress(`  round ${round + 1}: ${besides} besides ${load.allows} allows`)
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
    const rssAfter = svc.rssMb()
    const latencyNote = `open loop at ${fmt(rate)} decisions/s (half the measured maximum) for ${latencySeconds} s over fetch keep-alive, ${latencies.length} decisions (POST /v1/proposals?wait) timed from their scheduled start to the 201 with the verdict; ${failed} not allowed or failed; ${shed} refused as overloaded (503); ${late} started over 50 ms late by the client`
    return [
      ratioAtLeast(
        {
          name: 'decisions over HTTP',
          value: maxRate,
          unit: 'decisions/s',
          baseline: `bare Fastify POST route that parses and returns the same JSON body, autocannon, ${CONNECTIONS} connections, same duration (requests/s)`,
          baselineValue: median(result.baseline),
          note: `${rounds} interleaved rounds of ${seconds} s; autocannon with ${CONNECTIONS} connections, each looping one request, POST /v1/proposals?wait, answered 201 with the verdict decided in the commit that appended the proposal (a low-impact proposal with its snapshot evidence, allowed); counts allow verdicts received; ${notAllowed(loads)} blocks, other answers or errors in all rounds; each round on a fresh identity, grant and observation; proposals stay open (none is executed); service RSS after the load ${fmt(rssAfter)} MB`,
          rounds: result,
        },
        0.25,
      ),
      valueAtMost(
        {
          name: 'decision latency p50, one client alone',
          value: percentile(alone, 50),
          unit: 'ms',
          baseline: 'none: an absolute limit',
          baselineValue: null,
          note: aloneNote,
        },
        2,
      ),
      valueAtMost(
        {
          name: 'decision latency p99, one client alone',
          value: percentile(alone, 99),
          unit: 'ms',
          baseline: 'none: an absolute limit',
          baselineValue: null,
          note: aloneNote,
        },
        10,
      ),
      reported({
        name: 'decision latency p50 at half max rate',
        value: percentile(latencies, 50),
        unit: 'ms',
        baseline: 'none: reported',
        baselineValue: null,
        note: latencyNote,
      }),
      valueAtMost(
        {
          name: 'decision latency p99 at half max rate',
          value: percentile(latencies, 99),
          unit: 'ms',
          baseline: 'none: an absolute limit',
          baselineValue: null,
          note: latencyNote,
        },
        50,
      ),
    ]
  } finally {
    await Promise.all([echo?.stop(), svc?.stop()])
    rmSync(dataDir, { recursive: true, force: true })
  }
}
