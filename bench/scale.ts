// Decision latency and audit-query latency on a quiet service whose ledger holds 10^4 and 10^6 events (quick:
// 10^5), the larger at most 1.2 times the smaller; the catch-up time of each; and the resident memory of the
// service holding the large ledger, at most 256 MB.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { copyFixture, type LedgerFixture, ledgerFixture } from './ledger.js'
import {
  type BenchOptions,
  type Figure,
  fmt,
  now,
  peakRssMb,
  percentile,
  progress,
  ratioAtMost,
  reported,
  valueAtMost,
} from './lib.js'
import {
  type Answer,
  api,
  decideOnce,
  type Principals,
  preparePhase,
  principals,
  type Service,
  seedLowImpactWorld,
  startService,
} from './service.js'

interface Side {
  readonly label: string
  readonly fixture: LedgerFixture
  readonly svc: Service
  readonly who: Principals
  readonly rssAfterCatchUp: number
  readonly sample: readonly string[]
  readonly latencies: { decision: number[]; audit: number[]; open: number[] }
  /** how many actions the open-actions page held, each time */
  readonly openPage: number[]
}

/** a page both ledgers fill: the 10^4-event ledger has about 60 open actions */
const OPEN_PAGE = 50

const power = (n: number): string => `10^${Math.round(Math.log10(n))}`

/** Every k-th proposal of the ledger, so that the audit queries hit old and new actions alike. */
const sampleOf = (ids: readonly string[], count: number): string[] => {
  const step = Math.max(1, Math.floor(ids.length / count))
  return ids.filter((_, i) => i % step === 0).slice(0, count)
}

const timed = async (call: () => Promise<Answer>, into: number[]): Promise<Answer> => {
  const started = now()
  const answer = await call()
  if (answer.status !== 200) throw new Error(`a query answered ${answer.status}`)
  into.push(now() - started)
  return answer
}

/** One round on one service, one request at a time: decisions, then audit queries, then open actions. */
const measureRound = async (side: Side, round: number, samples: number): Promise<void> => {
  const http = api(side.svc.url)
  const phase = await preparePhase(side.svc, side.who, `scale-${round}`)
  for (let i = 0; i < samples; i += 1) {
    const { decision, ms } = await decideOnce(side.svc.url, side.who.agent, phase.body)
    if (decision !== 'allow') throw new Error(`a scale decision was ${decision}`)
    side.latencies.decision.push(ms)
  }
  for (const id of side.sample) {
    await timed(() => http.call('GET', `/v1/audit/actions/${id}`, side.who.auditor), side.latencies.audit)
  }
  for (let i = 0; i < samples; i += 1) {
    const page = await timed(
      () => http.call('GET', `/v1/open-actions?limit=${OPEN_PAGE}`, side.who.auditor),
      side.latencies.open,
    )
    side.openPage.push(Array.isArray(page.body.actions) ? page.body.actions.length : 0)
  }
}

const open = async (
  label: string,
  fixture: LedgerFixture,
  samples: number,
  dirs: string[],
): Promise<Side> => {
  const dataDir = mkdtempSync(join(tmpdir(), `bench-scale-${label}-`))
  dirs.push(dataDir)
  copyFixture(fixture, dataDir)
  progress(
    `scale: starting the service on ${fixture.events} events (catch-up of the decision service and projections)`,
  )
  const svc = await startService(dataDir, 3_600_000)
  const rssAfterCatchUp = svc.rssMb()
  progress(`  ready after ${fmt(svc.readyAfterMs / 1000)} s, RSS ${fmt(rssAfterCatchUp)} MB`)
  const who = await principals(svc)
  await seedLowImpactWorld(svc, who)
  const sample = sampleOf(fixture.proposals, samples)
  return {
    label,
    fixture,
    svc,
    who,
    rssAfterCatchUp,
    sample,
    latencies: { decision: [], audit: [], open: [] },
    openPage: [],
  }
}

export const scaleFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const smallSize = 10_000
  const largeSize = options.quick ? 100_000 : 1_000_000
  const rounds = options.quick ? 2 : 3
  const samples = options.quick ? 30 : 60
  const sizes = `${power(largeSize)} vs ${power(smallSize)} events${options.quick ? ' (quick)' : ''}`
  const quickNote = options.quick ? 'quick mode: the large ledger holds 10^5 events, not 10^6; ' : ''
  const smallFixture = await ledgerFixture(smallSize, progress)
  const largeFixture = await ledgerFixture(largeSize, progress)
  const dirs: string[] = []
  const sides: Side[] = []
  try {
    // start-up alone, for reference: an empty data folder
    const emptyDir = mkdtempSync(join(tmpdir(), 'bench-scale-empty-'))
    dirs.push(emptyDir)
    const empty = await startService(emptyDir)
    const startUpSeconds = empty.readyAfterMs / 1000
    await empty.stop()

    const small = await open('small', smallFixture, samples, dirs)
    sides.push(small)
    const large = await open('large', largeFixture, samples, dirs)
    sides.push(large)

    progress(
      `scale: ${rounds} interleaved rounds of ${samples} decisions, ${samples} audit and ${samples} open-action queries`,
    )
    for (let round = 0; round < rounds; round += 1) {
      await measureRound(small, round, samples)
      await measureRound(large, round, samples)
      progress(
        `  round ${round + 1}/${rounds}: decision p50 ${fmt(percentile(small.latencies.decision, 50))} / ${fmt(percentile(large.latencies.decision, 50))} ms so far`,
      )
    }
    const rssAfterRounds = large.svc.rssMb()
    const peak = peakRssMb(large.svc.pid)
    const smallRss = Math.max(small.rssAfterCatchUp, small.svc.rssMb())

    const latencyFigure = (kind: keyof Side['latencies'], name: string, what: string): Figure => {
      const s = small.latencies[kind]
      const l = large.latencies[kind]
      return ratioAtMost(
        {
          name: `${name} p50, ${sizes}`,
          value: percentile(l, 50),
          unit: 'ms',
          baseline: `the same on the ${power(smallSize)}-event ledger`,
          baselineValue: percentile(s, 50),
          note: `${quickNote}${what}; ${rounds} rounds alternating the two services, one request at a time on a quiet service, ${l.length} and ${s.length} samples; p99 ${fmt(percentile(l, 99))} ms vs ${fmt(percentile(s, 99))} ms`,
          rounds: {
            measured: [percentile(l, 50), percentile(l, 99)],
            baseline: [percentile(s, 50), percentile(s, 99)],
          },
        },
        1.2,
      )
    }
    const catchUp = (side: Side) => side.svc.readyAfterMs / 1000
    const generated = (f: LedgerFixture) =>
      `${f.events} events generated in ${fmt(f.generatedSeconds)} s${f.reused ? ` (reused from the cache, made ${f.generatedAt})` : ' (this run)'}`
    return [
      latencyFigure(
        'decision',
        'decision latency',
        'POST /v1/proposals?wait, answered 201 with the verdict in one request, a low-impact allow',
      ),
      latencyFigure(
        'audit',
        'audit action query latency',
        'GET /v1/audit/actions/:id for proposals spread over the whole ledger',
      ),
      latencyFigure(
        'open',
        'open-actions query latency',
        `GET /v1/open-actions?limit=${OPEN_PAGE} (the first page), pages of ${fmt(percentile(large.openPage, 50))} vs ${fmt(percentile(small.openPage, 50))} actions`,
      ),
      reported({
        name: `catch-up on start, ${power(largeSize)} events${options.quick ? ' (quick)' : ''}`,
        value: catchUp(large),
        unit: 's',
        baseline: `the same on ${power(smallSize)} events`,
        baselineValue: catchUp(small),
        note: `${quickNote}from spawn to /ready on a data folder holding only the ledger: the decision service re-decides every event (its answers are already in the ledger, found by idempotency key) and the four projections are built; ${fmt(large.fixture.events / catchUp(large))} vs ${fmt(small.fixture.events / catchUp(small))} events/s; start-up on an empty folder ${fmt(startUpSeconds)} s; ${generated(large.fixture)}; ${generated(small.fixture)}`,
      }),
      valueAtMost(
        {
          name: `service RSS holding ${power(largeSize)} events${options.quick ? ' (quick)' : ''}`,
          value: Math.max(large.rssAfterCatchUp, rssAfterRounds),
          unit: 'MB',
          baseline: `the same service holding ${power(smallSize)} events`,
          baselineValue: smallRss,
          note: `${quickNote}VmRSS of the service process: ${fmt(large.rssAfterCatchUp)} MB after catch-up, ${fmt(rssAfterRounds)} MB after the latency rounds (peak VmHWM ${fmt(peak)} MB); the larger is the value`,
        },
        256,
      ),
    ]
  } finally {
    await Promise.all(sides.map((s) => s.svc.stop()))
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
}
