// Reads as of a past ledger position, against the same reads answered now, on a generated ledger (10^6 events;
// quick: 10^5; BENCH_AS_OF_EVENTS sets another size). The read models are caught up first, keeping their
// snapshots (reported: catch-up events/s); each as-of read loads the events after the snapshot boundary at or
// before its position and evolves them in memory, so its cost is bounded by SNAPSHOT_EVERY, not by the ledger.
import { join } from 'node:path'
import { type ViewsOf, viewsAsOf } from '../projections/as-of.js'
import { auditKeys, indexedProposals } from '../projections/audit.js'
import { authorityKeys } from '../projections/authority.js'
import { audit, authority, openActions } from '../projections/index.js'
import { catchUpAll, ProjectionRunner, SNAPSHOT_EVERY } from '../projections/runner.js'
import { actionSummaries } from '../src/application/queries.js'
import { openSqliteDocStore } from '../src/store/sqlite/doc-store.js'
import { openSqliteEventStore } from '../src/store/sqlite/event-store.js'
import { seeded } from '../test/support/history.js'
import { copyFixture, ledgerFixture } from './ledger.js'
import { type BenchOptions, type Figure, fmt, median, now, progress, reported, tempFolder } from './lib.js'

/** as-of reads a round, each at a random position */
const READS = 15
const ROUNDS = 3

/** What an auditor opens: the first page of open actions, and an agent's authority with its first actions. */
const auditorRead = (views: ViewsOf<Runners>): number => {
  const open = views.openActions.list('open:', { limit: 100 })
  const agent = views.authority.get(authorityKeys.agent('agent-1'))
  const entries = views.audit.list(auditKeys.agentEntries('agent-1'), { limit: 100 })
  return open.length + actionSummaries(views.audit, indexedProposals(entries)).length + (agent ? 1 : 0)
}

type Runners = {
  authority: ProjectionRunner<typeof authority>
  openActions: ProjectionRunner<typeof openActions>
  audit: ProjectionRunner<typeof audit>
}

export const asOfFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const size = Number(process.env.BENCH_AS_OF_EVENTS ?? (options.quick ? 100_000 : 1_000_000))
  const fixture = await ledgerFixture(size, progress)
  const folder = tempFolder('as-of')
  try {
    copyFixture(fixture, folder.path)
    const store = openSqliteEventStore({ path: join(folder.path, 'ledger.db') })
    const docs = openSqliteDocStore(join(folder.path, 'derived.db'))
    const runners: Runners = {
      authority: new ProjectionRunner(store, docs, authority),
      openActions: new ProjectionRunner(store, docs, openActions),
      audit: new ProjectionRunner(store, docs, audit),
    }
    const head = (await store.head()).position
    progress(`as-of: catching up three read models over ${head} events, keeping snapshots`)
    let started = now()
    await catchUpAll(store, Object.values(runners), (p) => {
      if (p.projection === 'audit' && p.position % 100_000 < 5000) progress(`  ${p.position}/${head}`)
    })
    const catchUpSeconds = (now() - started) / 1000
    const random = seeded(20261201)
    const result = { baseline: [] as number[], measured: [] as number[] }
    const all = { baseline: [] as number[], measured: [] as number[] }
    for (let round = 0; round < ROUNDS; round += 1) {
      // interleaved: the read answered now, then the same read as of random positions
      const nowMs: number[] = []
      for (let i = 0; i < READS; i += 1) {
        started = now()
        auditorRead(runners)
        nowMs.push(now() - started)
      }
      const pastMs: number[] = []
      for (let i = 0; i < READS; i += 1) {
        const position = random.int(1, head)
        started = now()
        auditorRead(await viewsAsOf(store, runners, position))
        pastMs.push(now() - started)
      }
      result.baseline.push(median(nowMs))
      result.measured.push(median(pastMs))
      all.baseline.push(...nowMs)
      all.measured.push(...pastMs)
      progress(
        `  round ${round + 1}/${ROUNDS}: now ${fmt(result.baseline.at(-1))} ms, as of a random position ${fmt(result.measured.at(-1))} ms (max ${fmt(Math.max(...pastMs))} ms)`,
      )
    }
    docs.close()
    await store.close()
    return [
      reported({
        name: `read as of a random position, ${head} events`,
        value: median(result.measured),
        unit: 'ms',
        baseline: 'the same read answered now (the runners, no snapshot, no events evolved)',
        baselineValue: median(result.baseline),
        note: `${ROUNDS} interleaved rounds of ${READS} reads at seeded random positions over a generated ledger of ${head} events; the read: the first page of open actions, agent-1's authority and its first 100 audited actions; an as-of read loads the events after the snapshot boundary (every ${SNAPSHOT_EVERY}) and evolves the three projections over them; median per round, max over all ${fmt(Math.max(...all.measured))} ms`,
        rounds: result,
      }),
      reported({
        name: `catch-up of three read models keeping snapshots, ${head} events`,
        value: head / catchUpSeconds,
        unit: 'events/s',
        baseline: 'none: the cost of snapshots is in the rebuild figure, which keeps them too',
        baselineValue: null,
        note: `authority, open-actions and audit caught up together from zero into a fresh derived.db, a snapshot boundary every ${SNAPSHOT_EVERY} events`,
      }),
    ]
  } finally {
    folder.remove()
  }
}
