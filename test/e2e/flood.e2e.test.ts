// Drill: one principal floods the real service while another keeps asking for its verdict; the other's
// latency during the flood stays within a stated factor of its latency without it, measured in the same run.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type autocannon from 'autocannon'
import Database from 'better-sqlite3'
import {
  type Cast,
  DEFAULT_RATES,
  proposeWithEvidence,
  type RunningService,
  setUpWorld,
  startService,
} from '../support/service.js'

/** The stated factor: the victim's median and p95 during the flood, against the same without it. */
const FACTOR = 5
/** Added to the factor's bound: tens of milliseconds are the noise of a shared 2-core machine, not harm. */
const P50_ALLOWANCE_MS = 25
const P95_ALLOWANCE_MS = 150

/** The agent of the world, climbed to execute: each proposal it sends is appended, then judged. */
const FLOODER = 'agent-e2e'
const FLOOD_CONNECTIONS = 20
const FLOOD_SECONDS = 5
const BASELINE_SECONDS = 3
const ROUNDS = 2
/** The victim's pace: one request every this many milliseconds, within its own request budget. */
const VICTIM_INTERVAL_MS = 40

const FLOOD = fileURLToPath(new URL('../support/flood.ts', import.meta.url))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN

const summary = (samples: readonly number[]) => {
  const sorted = [...samples].sort((a, b) => a - b)
  return { n: sorted.length, p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95) }
}

const ms = (value: number) => `${value.toFixed(1)} ms`

describe('a bounded flood from one principal', () => {
  let svc: RunningService
  let cast: Cast
  let verdictUrl: string
  let victimToken: string
  let flooderToken: string

  before(async () => {
    // the limits a service starts with: the drill is about them
    svc = await startService({ ...DEFAULT_RATES, LOG_LEVEL: 'warn' })
    cast = await setUpWorld(svc, { agentId: FLOODER })
    const { proposalId } = await proposeWithEvidence(cast, 'deployment/flood-drill', { replicas: 3 })
    verdictUrl = `${svc.url}/v1/proposals/${proposalId}/verdict`
    // the executor bound to run the allowed proposal asks for its verdict; the agent floods with proposals
    victimToken = await svc.tokenFor(`${cast.identity}-runner`, 'executor')
    flooderToken = await svc.tokenFor(FLOODER, 'agent')
  })
  after(async () => {
    await svc?.close()
  })

  /** The victim's steady series for `seconds`: the latency of each request, and every status it got. */
  const victim = async (seconds: number) => {
    const latencies: number[] = []
    const statuses = new Map<number, number>()
    const end = performance.now() + seconds * 1000
    while (performance.now() < end) {
      const started = performance.now()
      const response = await fetch(verdictUrl, { headers: { authorization: `Bearer ${victimToken}` } })
      const verdict = (await response.json()) as { verdict?: { decision?: string } }
      latencies.push(performance.now() - started)
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
      if (response.status === 200) assert.equal(verdict.verdict?.decision, 'allow')
      await sleep(Math.max(0, VICTIM_INTERVAL_MS - (performance.now() - started)))
    }
    return { latencies, statuses }
  }

  /** The flood (test/support/flood.ts): each connection proposes on a new resource as soon as it is answered. */
  const flood = async (): Promise<autocannon.Result> => {
    const options = {
      url: `${svc.url}/v1/proposals`,
      token: flooderToken,
      body: JSON.stringify({
        agentId: FLOODER,
        executingIdentity: cast.identity,
        tool: cast.tool,
        action: 'scale',
        resource: 'deployment/flooded-{n}',
        environment: cast.environment,
        plan: { replicas: 3 },
        expectedImpact: 'high',
        snapshot: { version: 'v1' },
      }),
      connections: FLOOD_CONNECTIONS,
      seconds: FLOOD_SECONDS,
    }
    const child = spawn(process.execPath, ['--import', 'tsx', FLOOD, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const code = await new Promise<number | null>((done) => child.once('exit', done))
    assert.equal(code, 0, `the flood failed: ${stderr}`)
    return JSON.parse(stdout) as autocannon.Result
  }

  test(`the others' median stays within ${FACTOR}x (+${P50_ALLOWANCE_MS} ms) and their p95 within ${FACTOR}x (+${P95_ALLOWANCE_MS} ms); the flooder appends within its budget`, async () => {
    const head = async () => {
      const response = await fetch(`${svc.url}/v1/ledger/head`, {
        headers: { authorization: `Bearer ${svc.bootstrapToken}` },
      })
      return ((await response.json()) as { position: number }).position
    }
    await victim(1) // warm up
    const baseline: number[] = []
    const during: number[] = []
    const statuses: number[] = []
    let admitted = 0
    let refused = 0
    let sent = 0
    const headBefore = await head()
    // baseline and flood interleaved, so that a change in the machine's other load falls on both
    for (let round = 0; round < ROUNDS; round += 1) {
      const quiet = await victim(BASELINE_SECONDS)
      const [loud, flooded] = await Promise.all([victim(FLOOD_SECONDS), flood()])
      baseline.push(...quiet.latencies)
      during.push(...loud.latencies)
      statuses.push(...quiet.statuses.keys(), ...loud.statuses.keys())
      admitted += flooded['2xx']
      refused += flooded.statusCodeStats?.['429']?.count ?? 0
      sent += flooded.requests.sent
      assert.equal(flooded.errors, 0, 'the flood got an answer to every request')
      assert.equal(
        flooded.non2xx,
        flooded.statusCodeStats?.['429']?.count ?? 0,
        `every refusal is a 429: ${JSON.stringify(flooded.statusCodeStats)}`,
      )
    }
    const headAfter = await head()
    // what the flooder appended, as the ledger holds it
    const ledger = new Database(join(svc.dataDir, 'ledger.db'), { readonly: true })
    const appended = (
      ledger
        .prepare(
          "SELECT count(*) AS n FROM events WHERE position > ? AND json_extract(metadata, '$.actor') = ?",
        )
        .get(headBefore, FLOODER) as { n: number }
    ).n
    ledger.close()

    const base = summary(baseline)
    const load = summary(during)
    const commandsPerMinute = Number(DEFAULT_RATES.RATE_LIMIT_COMMANDS_PER_MINUTE)
    const requestsPerSecond = Number(DEFAULT_RATES.RATE_LIMIT_REQUESTS_PER_SECOND)
    console.log(
      `flood drill: ${ROUNDS} rounds of ${FLOOD_SECONDS} s, ${FLOOD_CONNECTIONS} connections from one principal, interleaved with ${BASELINE_SECONDS} s without; limits ${requestsPerSecond} requests/s and ${commandsPerMinute} commands/min per principal`,
    )
    console.log(
      `  flooder: ${sent} requests, ${admitted} answered 201, ${refused} refused (429); ${appended} events appended by the flooder, ledger head ${headBefore} -> ${headAfter}`,
    )
    console.log(`  victim without the flood: ${base.n} requests, p50 ${ms(base.p50)}, p95 ${ms(base.p95)}`)
    console.log(
      `  victim during the flood:  ${load.n} requests, p50 ${ms(load.p50)}, p95 ${ms(load.p95)} (p50 x${(load.p50 / base.p50).toFixed(2)}, p95 x${(load.p95 / base.p95).toFixed(2)})`,
    )

    // the victim was never refused, and the flood went far beyond the budget
    assert.deepEqual([...new Set(statuses)], [200])
    assert.ok(admitted > 0, 'the flooder got some commands in')
    assert.ok(refused > admitted, 'the flood went beyond the budget')
    // every flood fell in the flooder's first minute: one minute's budget at most (its commands while the world
    // was set up spent some of it), one event per proposal (a command admitted as the flood stopped is appended
    // without autocannon counting its answer; the verdicts are the decision service's)
    assert.ok(appended <= commandsPerMinute, `${appended} events appended by the flooder in a minute`)
    assert.ok(appended >= admitted, `${appended} events for ${admitted} answers 201`)
    assert.ok(headAfter - headBefore >= appended)

    assert.ok(
      load.p50 <= FACTOR * base.p50 + P50_ALLOWANCE_MS,
      `p50 during the flood ${ms(load.p50)} > ${FACTOR} x ${ms(base.p50)} + ${P50_ALLOWANCE_MS} ms`,
    )
    assert.ok(
      load.p95 <= FACTOR * base.p95 + P95_ALLOWANCE_MS,
      `p95 during the flood ${ms(load.p95)} > ${FACTOR} x ${ms(base.p95)} + ${P95_ALLOWANCE_MS} ms`,
    )
  })
})
