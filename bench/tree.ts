// The cost of keeping the Merkle tree: durable appends with the tree following the ledger against the same
// appends without it, in the same run; the tree's own work per event, catching up over the ledger those appends
// wrote, against reading the same events without it; and the service's derived state caught up over a realistic
// ledger with the tree and without it.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { projections } from '../projections/index.js'
import { catchUpAll, ProjectionRunner } from '../projections/runner.js'
import { openSqliteDocStore } from '../src/store/sqlite/doc-store.js'
import type { SqliteEventStore } from '../src/store/sqlite/event-store.js'
import { openSqliteEventStore } from '../src/store/sqlite/event-store.js'
import { LedgerTree } from '../src/tree/ledger-tree.js'
import { appendConcurrently, WRITERS } from './appends.js'
import { copyFixture, ledgerFixture } from './ledger.js'
import {
  type BenchOptions,
  type Figure,
  fmt,
  interleave,
  median,
  now,
  progress,
  ratioAtLeast,
  reported,
  sleep,
  tempFolder,
} from './lib.js'

/** Events read at once: what the tree's catch-up reads at a time. */
const PAGE = 1000

/**
 * Appends by WRITERS writers into a fresh ledger, the tree following it into its own derived.db when `withTree`;
 * the rate counts the appends alone, and `lagMs` is how long after the last append the tree held every event.
 */
const appendRound = async (folder: string, count: number, withTree: boolean) => {
  const store = openSqliteEventStore({ path: join(folder, 'ledger.db') })
  const tree = withTree ? new LedgerTree(join(folder, 'derived.db'), store) : null
  const following = tree?.follow()
  const { events, seconds } = await appendConcurrently(store, count)
  const caughtUp = now()
  while (tree && tree.size() < events) await sleep(1)
  const lagMs = now() - caughtUp
  await following?.close()
  tree?.close()
  await store.close()
  return { rate: events / seconds, lagMs }
}

/** Every event of a ledger read a page at a time, as the tree's catch-up reads them; events/s. */
const readRound = async (store: SqliteEventStore): Promise<number> => {
  const started = now()
  let after = 0
  for (;;) {
    const page = await store.readAll(after, PAGE)
    const last = page.at(-1)
    if (!last) break
    after = last.position
  }
  return after / ((now() - started) / 1000)
}

/**
 * The four read models caught up in one pass over the whole ledger into a fresh derived.db, as the service starts,
 * then the tree when `withTree`; events/s.
 */
const derivedRound = async (store: SqliteEventStore, derived: string, withTree: boolean): Promise<number> => {
  const docs = openSqliteDocStore(derived)
  const tree = withTree ? new LedgerTree(derived, store) : null
  const started = now()
  const events = await catchUpAll(
    store,
    projections.map((projection) => new ProjectionRunner(store, docs, projection)),
  )
  await tree?.catchUp()
  const seconds = (now() - started) / 1000
  tree?.close()
  docs.close()
  return events / seconds
}

/** The tree built over the whole ledger into a fresh derived.db; events/s. */
const catchUpRound = async (store: SqliteEventStore, derived: string): Promise<number> => {
  const tree = new LedgerTree(derived, store)
  const started = now()
  const size = await tree.catchUp()
  const seconds = (now() - started) / 1000
  tree.close()
  return size / seconds
}

export const treeFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const count = options.quick ? 16_000 : 64_000
  const rounds = options.quick ? 3 : 5
  const folder = tempFolder('tree')
  try {
    progress(`tree: ${rounds} rounds of ${count} appends without and with the tree following`)
    const lags: number[] = []
    const appends = await interleave(
      rounds,
      async (round) => (await appendRound(tempIn(folder.path, `without-${round}`), count, false)).rate,
      async (round) => {
        const r = await appendRound(tempIn(folder.path, `with-${round}`), count, true)
        lags.push(r.lagMs)
        return r.rate
      },
    )
    progress(`tree: ${rounds} rounds of reading the ledger, and of building the tree over it`)
    const store = openSqliteEventStore({ path: join(folder.path, 'without-0', 'ledger.db') })
    const events = (await store.head()).position
    const catchUp = await interleave(
      rounds,
      async () => readRound(store),
      async (round) => catchUpRound(store, join(folder.path, `catch-up-${round}.db`)),
    )
    await store.close()

    const fixture = await ledgerFixture(options.quick ? 10_000 : 100_000, progress)
    const service = join(folder.path, 'service')
    copyFixture(fixture, service)
    progress(
      `tree: ${rounds} rounds of the read models caught up over ${fixture.events} events, without and with the tree`,
    )
    const ledger = openSqliteEventStore({ path: join(service, 'ledger.db') })
    const derived = await interleave(
      rounds,
      async (round) => derivedRound(ledger, join(service, `without-${round}.db`), false),
      async (round) => derivedRound(ledger, join(service, `with-${round}.db`), true),
    )
    await ledger.close()
    const readRate = median(catchUp.baseline)
    const treeRate = median(catchUp.measured)
    const perEventUs = (1 / treeRate - 1 / readRate) * 1e6
    return [
      ratioAtLeast(
        {
          name: 'durable appends, 64 writers, Merkle tree following',
          value: median(appends.measured),
          unit: 'events/s',
          baseline: 'the same appends into the same kind of ledger, no tree',
          baselineValue: median(appends.baseline),
          note: `${rounds} interleaved rounds of ${count} single-event appends by ${WRITERS} writers, fresh files; the tree follows in the same process into its own derived.db and held every event a median ${fmt(median(lags))} ms after the last append (max ${fmt(Math.max(...lags))} ms)`,
          rounds: appends,
        },
        0.9,
      ),
      reported({
        name: 'Merkle tree catch-up',
        value: treeRate,
        unit: 'events/s',
        baseline: `reading the same events, ${PAGE} at a time, without the tree`,
        baselineValue: readRate,
        note: `${rounds} interleaved rounds over a ledger of ${events} events written by the appends figure, each into a fresh derived.db; the tree's own work (leaf text, two hashes, about two rows per event) costs ${fmt(perEventUs)} µs per event`,
        rounds: catchUp,
      }),
      ratioAtLeast(
        {
          name: 'derived state catch-up with the Merkle tree',
          value: median(derived.measured),
          unit: 'events/s',
          baseline: 'the four read models alone, caught up in one pass (catchUpAll)',
          baselineValue: median(derived.baseline),
          note: `${rounds} interleaved rounds over a generated ledger of ${fixture.events} events (real deciders and decision service), each into a fresh derived.db: the four read models in one pass, then the tree reading the ledger on its own, as the service's consumers do`,
          rounds: derived,
        },
        0.8,
      ),
    ]
  } finally {
    folder.remove()
  }
}

/** A fresh folder for one round inside the figure's folder. */
const tempIn = (parent: string, name: string): string => {
  const path = join(parent, name)
  mkdirSync(path)
  return path
}
