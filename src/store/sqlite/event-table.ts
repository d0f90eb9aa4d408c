import type Database from 'better-sqlite3'
import { jsonText } from '../../domain/canonical.js'
import { READ_BUDGET_BYTES, ReadBudget, type StoredEvent } from '../port.js'

/** The ledger's tables: one row per event, and the positions each idempotency key appended. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  stream TEXT NOT NULL,
  stream_version INTEGER NOT NULL,
  type TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  data TEXT NOT NULL,
  metadata TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  UNIQUE (stream, stream_version)
);
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  first_position INTEGER NOT NULL,
  last_position INTEGER NOT NULL
) WITHOUT ROWID;
`

export interface EventRow {
  readonly position: number
  readonly id: string
  readonly stream: string
  readonly stream_version: number
  readonly type: string
  readonly recorded_at: string
  readonly data: string
  readonly metadata: string
  readonly prev_hash: string
  readonly hash: string
}

export const fromRow = (row: EventRow): StoredEvent => ({
  id: row.id,
  type: row.type,
  stream: row.stream,
  streamVersion: row.stream_version,
  position: row.position,
  recordedAt: row.recorded_at,
  data: JSON.parse(row.data),
  metadata: JSON.parse(row.metadata),
  prevHash: row.prev_hash,
  hash: row.hash,
})

/** The row of an event; `dataText`, when the writer holds it, is the data's JSON already serialised. */
export const toRow = (e: StoredEvent, dataText = jsonText(e.data)) => [
  e.position,
  e.id,
  e.stream,
  e.streamVersion,
  e.type,
  e.recordedAt,
  dataText,
  jsonText(e.metadata),
  e.prevHash,
  e.hash,
]

type Statement<P extends unknown[], R = unknown> = Database.Statement<P, R>

export interface EventStatements {
  readonly insertEvent: Statement<unknown[]>
  readonly insertKey: Statement<[string, number, number]>
  readonly findKey: Statement<[string], { first: number; last: number }>
  readonly range: Statement<[number, number], EventRow>
  /** plucked: the highest version of the stream, null when it has no event */
  readonly streamVersion: Statement<[string], number | null>
  readonly readStream: Statement<[string, number], EventRow>
  readonly readAll: Statement<[number, number], EventRow>
  readonly readStreamPage: Statement<[string, number, number], EventRow>
  readonly tip: Statement<[], { position: number; hash: string; recordedAt: string }>
}

/** Every statement the store runs, prepared once. */
export const prepare = (db: Database.Database): EventStatements => ({
  insertEvent: db.prepare(
    `INSERT INTO events (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ),
  insertKey: db.prepare('INSERT INTO idempotency (key, first_position, last_position) VALUES (?, ?, ?)'),
  findKey: db.prepare('SELECT first_position AS first, last_position AS last FROM idempotency WHERE key = ?'),
  range: db.prepare('SELECT * FROM events WHERE position BETWEEN ? AND ? ORDER BY position'),
  streamVersion: db
    .prepare<[string], number | null>('SELECT MAX(stream_version) FROM events WHERE stream = ?')
    .pluck(),
  readStream: db.prepare(
    'SELECT * FROM events WHERE stream = ? AND stream_version >= ? ORDER BY stream_version',
  ),
  readAll: db.prepare('SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?'),
  readStreamPage: db.prepare(
    'SELECT * FROM events WHERE stream = ? AND stream_version >= ? ORDER BY stream_version LIMIT ?',
  ),
  tip: db.prepare(
    'SELECT position, hash, recorded_at AS recordedAt FROM events ORDER BY position DESC LIMIT 1',
  ),
})

/** The events of rows read one at a time, up to the one that spends `maxBytes`. */
/** Rows as events, up to the one whose stored JSON reaches `maxBytes`, with the size of each. */
const budgetedSized = (
  rows: IterableIterator<EventRow>,
  maxBytes = READ_BUDGET_BYTES,
): { events: StoredEvent[]; sizes: number[] } => {
  const budget = new ReadBudget(maxBytes)
  const events: StoredEvent[] = []
  const sizes: number[] = []
  for (const row of rows) {
    const size = row.data.length + row.metadata.length
    events.push(fromRow(row))
    sizes.push(size)
    // leaving the loop resets the statement: the rows after it are never read
    if (!budget.spend(size)) break
  }
  return { events, sizes }
}

const budgeted = (rows: IterableIterator<EventRow>, maxBytes = READ_BUDGET_BYTES): StoredEvent[] =>
  budgetedSized(rows, maxBytes).events

/** The events after a position, at most `limit` and about `maxBytes` of them, with the stored size of each. */
export const readAfterSized = (
  sql: EventStatements,
  after: number,
  limit: number,
  maxBytes?: number,
): { events: StoredEvent[]; sizes: number[] } => budgetedSized(sql.readAll.iterate(after, limit), maxBytes)

/** The events after a position, at most `limit` and about `maxBytes` of them. */
export const readAfter = (
  sql: EventStatements,
  after: number,
  limit: number,
  maxBytes?: number,
): StoredEvent[] => readAfterSized(sql, after, limit, maxBytes).events

/** A stream's events from a version on: all of them, or with `limit` a page of about `maxBytes` at most. */
export const readStreamFrom = (
  sql: EventStatements,
  stream: string,
  fromVersion: number,
  limit?: number,
  maxBytes?: number,
): StoredEvent[] =>
  limit === undefined
    ? sql.readStream.all(stream, fromVersion).map(fromRow)
    : budgeted(sql.readStreamPage.iterate(stream, fromVersion, limit), maxBytes)
