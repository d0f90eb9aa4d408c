// Durable appends/s under 64 concurrent writers on the SQLite ledger, against raw better-sqlite3 inserting the
// same rows into the same table in transactions of 100, at the same durability (WAL, synchronous=FULL).
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { planHashOf } from '../src/domain/canonical.js'
import { uuidv7 } from '../src/domain/ids.js'
import type { EventStore, NewEvent } from '../src/store/port.js'
import { openSqliteEventStore } from '../src/store/sqlite/event-store.js'
import { SCHEMA } from '../src/store/sqlite/event-table.js'
import {
  type BenchOptions,
  type Figure,
  interleave,
  median,
  now,
  progress,
  ratioAtLeast,
  reported,
  tempFolder,
} from './lib.js'

export const WRITERS = 64
const BASELINE_BATCH = 100

/** A realistic proposal: the same data and metadata, of the same sizes, on both sides. */
export const eventFor = (writer: number, n: number): NewEvent => {
  const plan = { replicas: 3 + (n % 5), strategy: 'rolling', maxUnavailable: 1, reason: 'traffic forecast' }
  return {
    type: 'ProposalSubmitted',
    data: {
      proposalId: `p-${writer}-${n}`,
      agentId: `agent-${writer % 8}`,
      executingIdentity: `svc-agent-${writer % 8}`,
      tool: 'kubectl',
      action: 'scale',
      resource: `deployment/web-${writer}`,
      environment: 'production',
      plan,
      planHash: planHashOf(plan),
      expectedImpact: 'high',
      snapshot: { version: `v${n}` },
      description: 'scale the web tier ahead of the evening peak',
    },
    metadata: { actor: `agent-${writer % 8}`, correlationId: uuidv7(), causationId: null },
  }
}

/** The rows the store would write for these events: same columns, same JSON, same lengths of ids and hashes. */
const rowsFor = (count: number): unknown[][] => {
  const rows: unknown[][] = []
  const recordedAt = new Date().toISOString()
  const hash = 'ab'.repeat(32)
  for (let i = 0; i < count; i += 1) {
    const writer = i % WRITERS
    const n = Math.floor(i / WRITERS)
    const event = eventFor(writer, n)
    rows.push([
      i + 1,
      uuidv7(),
      `proposal-w${writer}`,
      n + 1,
      event.type,
      recordedAt,
      JSON.stringify(event.data),
      JSON.stringify({ ...event.metadata, idempotencyKey: null }),
      hash,
      hash,
    ])
  }
  return rows
}

const baselineRound = (path: string, rows: readonly unknown[][], perTransaction = BASELINE_BATCH): number => {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec(SCHEMA)
  const insert = db.prepare(
    `INSERT INTO events (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
  const batch = db.transaction((slice: readonly unknown[][]) => {
    for (const row of slice) insert.run(...row)
  })
  const started = now()
  for (let i = 0; i < rows.length; i += perTransaction) batch(rows.slice(i, i + perTransaction))
  const seconds = (now() - started) / 1000
  db.close()
  return rows.length / seconds
}

/**
 * WRITERS concurrent writers append about `count` single-event appends, each to its own stream at the exact
 * version it expects, as a command does; resolves with the events appended and the seconds it took.
 */
export const appendConcurrently = async (
  store: EventStore,
  count: number,
): Promise<{ events: number; seconds: number }> => {
  const perWriter = Math.ceil(count / WRITERS)
  const events = Array.from({ length: WRITERS }, (_, w) =>
    Array.from({ length: perWriter }, (_, n) => eventFor(w, n)),
  )
  const started = now()
  await Promise.all(
    events.map(async (mine, writer) => {
      for (let n = 0; n < mine.length; n += 1) {
        await store.append(`proposal-w${writer}`, [mine[n] as NewEvent], n)
      }
    }),
  )
  return { events: perWriter * WRITERS, seconds: (now() - started) / 1000 }
}

const measuredRound = async (path: string, count: number): Promise<{ rate: number; perTx: number }> => {
  const store = openSqliteEventStore({ path })
  const { events, seconds } = await appendConcurrently(store, count)
  const stats = store.stats()
  await store.close()
  return { rate: events / seconds, perTx: stats.appends / stats.transactions }
}

export const appendsFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const count = options.quick ? 16_000 : 64_000
  const rounds = options.quick ? 3 : 5
  const folder = tempFolder('appends')
  try {
    const rows = rowsFor(count)
    const perTx: number[] = []
    const ceiling: number[] = []
    progress(`appends: ${rounds} rounds of ${count} events per side`)
    const result = await interleave(
      rounds,
      async (round) => {
        // the most 64 writers with one append each in flight can give: raw inserts, 64 rows per transaction
        ceiling.push(baselineRound(join(folder.path, `raw64-${round}.db`), rows, WRITERS))
        return baselineRound(join(folder.path, `raw-${round}.db`), rows)
      },
      async (round) => {
        const r = await measuredRound(join(folder.path, `ledger-${round}.db`), count)
        perTx.push(r.perTx)
        return r.rate
      },
    )
    return [
      ratioAtLeast(
        {
          name: 'durable appends, 64 writers',
          value: median(result.measured),
          unit: 'events/s',
          baseline: `raw better-sqlite3 INSERTs of the same rows into the same table, ${BASELINE_BATCH} per transaction, WAL + synchronous=FULL`,
          baselineValue: median(result.baseline),
          note: `${rounds} interleaved rounds of ${count} single-event appends by ${WRITERS} writers (own stream, exact expected version), fresh files; group commit averaged ${median(perTx).toFixed(1)} appends per transaction`,
          rounds: result,
        },
        0.8,
      ),
      reported({
        name: `raw inserts, ${WRITERS} rows per transaction`,
        value: median(ceiling),
        unit: 'events/s',
        baseline: `the same raw inserts, ${BASELINE_BATCH} per transaction`,
        baselineValue: median(result.baseline),
        note: `the ceiling of the appends figure: ${WRITERS} writers with one append each in flight fill a group commit with at most ${WRITERS} events, so even a ledger doing no work of its own would reach this ratio; measured in the same rounds, just before each baseline`,
      }),
    ]
  } finally {
    folder.remove()
  }
}
