import type pg from 'pg'
import { canonicalize } from '../../domain/canonical.js'
import type { Plan, Tip } from '../append-plan.js'
import { GENESIS_HASH, READ_BUDGET_BYTES, type StoredEvent } from '../port.js'
import { CHANNEL, type EventRow, fromRow, type Tables } from './schema.js'

/** A pool or one of its clients: reads run on either, a group commit on one client. */
type Db = Pick<pg.ClientBase, 'query'>

/** What reads the tip: the last event's position, hash and time. */
const TIP = (t: Tables) =>
  `SELECT position, hash, recorded_at FROM ${t.events} ORDER BY position DESC LIMIT 1`

interface TipRow {
  position: string
  hash: string
  recorded_at: Date
}

const tipOf = (rows: readonly TipRow[]): Tip => {
  const tip = rows[0]
  if (tip === undefined) return { position: 0, hash: GENESIS_HASH, recordedAt: '' }
  return { position: Number(tip.position), hash: tip.hash, recordedAt: tip.recorded_at.toISOString() }
}

/**
 * Begins a transaction that holds the chain (every writer, in any process, waits here until the holder ends) and
 * reads the tip it extends, in one round trip. The three statements run one after the other, and under READ
 * COMMITTED each takes its own snapshot: the tip is read once the lock is held, so it is the tip writers extend.
 */
export const lockChainAtTip = async (client: Db, t: Tables): Promise<Tip> => {
  const results = (await client.query(
    `BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(${t.chainLock}); ${TIP(t)}`,
  )) as unknown as pg.QueryResult<TipRow>[]
  const read = results.at(-1)
  if (!read) throw new Error('the chain lock answered no tip')
  return tipOf(read.rows)
}

/** The last event's position, hash and time, as committed now (outside the lock: a head, not a tip to extend). */
export const readTip = async (db: Db, t: Tables): Promise<Tip> => tipOf((await db.query<TipRow>(TIP(t))).rows)

/** The current version of each stream; 0 for a stream with no event yet. */
export const streamVersions = async (
  db: Db,
  t: Tables,
  streams: readonly string[],
): Promise<Map<string, number>> => {
  const { rows } = await db.query<{ stream: string; version: string }>(
    `SELECT stream, MAX(stream_version) AS version FROM ${t.events}
     WHERE stream = ANY($1::text[]) GROUP BY stream`,
    [streams],
  )
  const versions = new Map(streams.map((stream) => [stream, 0]))
  for (const row of rows) versions.set(row.stream, Number(row.version))
  return versions
}

/** What each of the keys appended, for the keys already stored. */
export const findByKeys = async (
  db: Db,
  t: Tables,
  keys: readonly string[],
): Promise<Map<string, StoredEvent[]>> => {
  const { rows } = await db.query<EventRow & { key: string }>(
    `SELECT k.key, e.* FROM ${t.idempotency} k
     JOIN ${t.events} e ON e.position BETWEEN k.first_position AND k.last_position
     WHERE k.key = ANY($1::text[]) ORDER BY e.position`,
    [keys],
  )
  const found = new Map<string, StoredEvent[]>()
  for (const row of rows) {
    const event = fromRow(row)
    // an answer sealed among a call's events carries its own key
    if (event.metadata.idempotencyKey !== row.key) continue
    const events = found.get(row.key) ?? []
    events.push(event)
    found.set(row.key, events)
  }
  return found
}

/** A stream's events from a version on: all of them, or with `limit` a page walked version by version as readAll's. */
export const readStream = async (
  db: Db,
  t: Tables,
  stream: string,
  fromVersion: number,
  limit?: number,
  maxBytes = READ_BUDGET_BYTES,
) => {
  if (limit === undefined) {
    const { rows } = await db.query<EventRow>(
      `SELECT * FROM ${t.events} WHERE stream = $1 AND stream_version >= $2 ORDER BY stream_version`,
      [stream, fromVersion],
    )
    return rows.map(fromRow)
  }
  if (limit < 1) return []
  const { rows } = await db.query<EventRow>(
    `WITH RECURSIVE page AS (
       (SELECT e.*, ${SIZE} AS read_bytes, 1 AS read_count FROM ${t.events} e
        WHERE e.stream = $1 AND e.stream_version >= $2 ORDER BY e.stream_version LIMIT 1)
       UNION ALL
       SELECT e.*, page.read_bytes + ${SIZE}, page.read_count + 1
       FROM page JOIN ${t.events} e ON e.stream = page.stream AND e.stream_version = page.stream_version + 1
       WHERE page.read_bytes < $4 AND page.read_count < $3
     )
     SELECT * FROM page ORDER BY stream_version`,
    [stream, fromVersion, limit, maxBytes],
  )
  return rows.map(fromRow)
}

/** What an event's data and metadata take as stored JSON. */
const SIZE = 'octet_length(e.data::text) + octet_length(e.metadata::text)'

/**
 * The events after a position, at most `limit` and about `maxBytes` of them. The page walks the chain's gap-free
 * positions one at a time and stops at the event whose JSON reaches the budget, so the server reads no row past
 * it; a gap (a deleted row) ends the page early, and the next read goes on after it.
 */
export const readAll = async (
  db: Db,
  t: Tables,
  after: number,
  limit: number,
  maxBytes = READ_BUDGET_BYTES,
): Promise<StoredEvent[]> => (await readAllSized(db, t, after, limit, maxBytes)).events

/** The same, with the stored JSON size of each event (data and metadata). */
export const readAllSized = async (
  db: Db,
  t: Tables,
  after: number,
  limit: number,
  maxBytes = READ_BUDGET_BYTES,
): Promise<{ events: StoredEvent[]; sizes: number[] }> => {
  if (limit < 1) return { events: [], sizes: [] }
  const { rows } = await db.query<EventRow & { read_bytes: number | string }>(
    `WITH RECURSIVE page AS (
       (SELECT e.*, ${SIZE} AS read_bytes, 1 AS read_count FROM ${t.events} e
        WHERE e.position > $1 ORDER BY e.position LIMIT 1)
       UNION ALL
       SELECT e.*, page.read_bytes + ${SIZE}, page.read_count + 1
       FROM page JOIN ${t.events} e ON e.position = page.position + 1
       WHERE page.read_bytes < $3 AND page.read_count < $2
     )
     SELECT * FROM page ORDER BY position`,
    [after, limit, maxBytes],
  )
  // read_bytes runs up the page: each event's own size is its step
  let before = 0
  const sizes = rows.map((row) => {
    const upTo = Number(row.read_bytes)
    const size = upTo - before
    before = upTo
    return size
  })
  return { events: rows.map(fromRow), sizes }
}

/** Inserts a batch's events and keys and notifies the listeners, in one statement (one round trip). */
export const insertBatch = async (
  client: Db,
  t: Tables,
  schema: string,
  plan: Plan,
): Promise<{ sizes: number[] }> => {
  const column = <T>(pick: (event: StoredEvent) => T) => plan.events.map(pick)
  const metadata = column((e) => canonicalize(e.metadata))
  await client.query(
    `WITH appended AS (
       INSERT INTO ${t.events} (position, id, stream, stream_version, type, recorded_at, data, metadata, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[],
                            $7::json[], $8::json[], $9::text[], $10::text[])
     ), keyed AS (
       INSERT INTO ${t.idempotency} (key, first_position, last_position)
       SELECT * FROM unnest($11::text[], $12::bigint[], $13::bigint[])
     )
     SELECT pg_notify($14, $15)`,
    [
      column((e) => e.position),
      column((e) => e.id),
      column((e) => e.stream),
      column((e) => e.streamVersion),
      column((e) => e.type),
      column((e) => e.recordedAt),
      // exactly the text the hash was computed over
      plan.dataTexts,
      metadata,
      column((e) => e.prevHash),
      column((e) => e.hash),
      plan.keys.map((k) => k.key),
      plan.keys.map((k) => k.first),
      plan.keys.map((k) => k.last),
      CHANNEL,
      schema,
    ],
  )
  return { sizes: plan.dataTexts.map((data, i) => data.length + (metadata[i]?.length ?? 0)) }
}
