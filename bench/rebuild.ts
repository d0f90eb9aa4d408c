// Full rebuild of every projection, ledger events/s, against a raw read and JSON parse of the same ledger file.
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { projections } from '../projections/index.js'
import { catchUpAll, ProjectionRunner } from '../projections/runner.js'
import { openSqliteDocStore } from '../src/store/sqlite/doc-store.js'
import { openSqliteEventStore } from '../src/store/sqlite/event-store.js'
import { copyFixture, ledgerFixture } from './ledger.js'
import {
  type BenchOptions,
  type Figure,
  fmt,
  median,
  now,
  progress,
  ratioAtLeast,
  reported,
  tempFolder,
} from './lib.js'

/** SELECT data, metadata FROM events and JSON.parse of both, every row. */
const rawRead = (path: string): { rows: number; seconds: number } => {
  const db = new Database(path, { readonly: true })
  const started = now()
  let rows = 0
  for (const row of db
    .prepare<[], { data: string; metadata: string }>('SELECT data, metadata FROM events')
    .iterate()) {
    JSON.parse(row.data)
    JSON.parse(row.metadata)
    rows += 1
  }
  const seconds = (now() - started) / 1000
  db.close()
  return { rows, seconds }
}

/** ProjectionRunner.rebuild of the four projections, one after the other, into a fresh derived file. */
const rebuildAll = async (
  ledger: string,
  derived: string,
): Promise<{ seconds: number; perProjection: number[] }> => {
  const store = openSqliteEventStore({ path: ledger })
  const docs = openSqliteDocStore(derived)
  const perProjection: number[] = []
  const started = now()
  for (const projection of projections) {
    const t0 = now()
    await new ProjectionRunner(store, docs, projection).rebuild()
    perProjection.push((now() - t0) / 1000)
  }
  const seconds = (now() - started) / 1000
  docs.close()
  await store.close()
  return { seconds, perProjection }
}

/** The four projections wiped, then caught up together in one pass over the ledger (the service's start-up). */
const rebuildOnePass = async (ledger: string, derived: string): Promise<number> => {
  const store = openSqliteEventStore({ path: ledger })
  const docs = openSqliteDocStore(derived)
  const runners = projections.map((projection) => new ProjectionRunner(store, docs, projection))
  const started = now()
  for (const projection of projections) docs.wipe(projection.name)
  await catchUpAll(store, runners)
  const seconds = (now() - started) / 1000
  docs.close()
  await store.close()
  return seconds
}

export const rebuildFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const size = options.quick ? 10_000 : 100_000
  const rounds = 3
  const fixture = await ledgerFixture(size, progress)
  const folder = tempFolder('rebuild')
  try {
    copyFixture(fixture, folder.path)
    const ledger = join(folder.path, 'ledger.db')
    const events = fixture.events
    const split: number[][] = []
    const result = { baseline: [] as number[], measured: [] as number[], onePass: [] as number[] }
    progress(`rebuild: ${rounds} rounds over a ledger of ${events} events`)
    for (let round = 0; round < rounds; round += 1) {
      // interleaved: raw read, rebuild one projection at a time, rebuild all in one pass
      const raw = rawRead(ledger)
      if (raw.rows !== events) throw new Error(`read ${raw.rows} rows, expected ${events}`)
      result.baseline.push(raw.rows / raw.seconds)
      const { seconds, perProjection } = await rebuildAll(ledger, join(folder.path, `derived-${round}.db`))
      split.push(perProjection)
      result.measured.push(events / seconds)
      result.onePass.push(events / (await rebuildOnePass(ledger, join(folder.path, `one-pass-${round}.db`))))
      progress(
        `  round ${round + 1}/${rounds}: raw ${fmt(result.baseline.at(-1))}, rebuild ${fmt(result.measured.at(-1))}, one pass ${fmt(result.onePass.at(-1))} events/s`,
      )
    }
    const names = projections.map((p) => p.name)
    const medianSplit = names.map((name, i) => `${name} ${fmt(median(split.map((s) => s[i] ?? 0)))} s`)
    return [
      // here each projection reads and types the whole ledger on its own: reported; the one pass is the figure
      reported({
        name: 'projection rebuild, each of the four on its own',
        value: median(result.measured),
        unit: 'events/s',
        baseline:
          'raw SELECT data, metadata FROM events of the same ledger file and JSON.parse of both, every row',
        baselineValue: median(result.baseline),
        note: `${rounds} interleaved rounds over a generated ledger of ${events} events; ledger events divided by the time of ProjectionRunner.rebuild of the four projections in turn into a fresh SQLite doc store; median split: ${medianSplit.join(', ')}`,
        rounds: { measured: result.measured, baseline: result.baseline },
      }),
      ratioAtLeast(
        {
          name: 'projection rebuild, all four in one pass',
          value: median(result.onePass),
          unit: 'events/s',
          baseline: 'the same raw read and parse',
          baselineValue: median(result.baseline),
          note: `the same rounds: the four projections wiped, then catchUpAll (each batch read and typed once for all four, as the service's start-up does)`,
          rounds: { measured: result.onePass, baseline: result.baseline },
        },
        0.5,
      ),
    ]
  } finally {
    folder.remove()
  }
}
