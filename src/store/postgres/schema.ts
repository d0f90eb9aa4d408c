import { createHash } from 'node:crypto'
import pg from 'pg'
import type { StoredEvent } from '../port.js'

/** The channel every ledger in the database notifies on; the payload names the schema that committed. */
export const CHANNEL = 'governance_ledger_events'

/** The quoted names of one ledger's tables in its schema, and the key of the lock on its chain. */
export interface Tables {
  readonly schema: string
  readonly events: string
  readonly idempotency: string
  /** the advisory lock that serialises the writers of this schema's chain, as a BIGINT literal */
  readonly chainLock: string
}

/** A key derived from the schema name, so that ledgers in different schemas do not wait for each other. */
const lockKey = (schema: string): string =>
  createHash('sha256').update(`governance-ledger chain ${schema}`).digest().readBigInt64BE(0).toString()

export const tablesIn = (schema: string): Tables => {
  const quoted = pg.escapeIdentifier(schema)
  return {
    schema: quoted,
    events: `${quoted}.events`,
    idempotency: `${quoted}.idempotency`,
    chainLock: lockKey(schema),
  }
}

/**
 * One row per event, and the positions each idempotency key appended. data and metadata are `json`, not
 * `jsonb`: json keeps the canonical text byte for byte (the hash is over it) and accepts \u0000.
 */
const ddl = (t: Tables, createSchema: boolean): string => `
${createSchema ? `CREATE SCHEMA IF NOT EXISTS ${t.schema};` : ''}
CREATE TABLE IF NOT EXISTS ${t.events} (
  position BIGINT PRIMARY KEY,
  id UUID NOT NULL UNIQUE,
  stream TEXT NOT NULL,
  stream_version BIGINT NOT NULL,
  type TEXT NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL,
  data JSON NOT NULL,
  metadata JSON NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  UNIQUE (stream, stream_version)
);
CREATE TABLE IF NOT EXISTS ${t.idempotency} (
  key TEXT PRIMARY KEY,
  first_position BIGINT NOT NULL,
  last_position BIGINT NOT NULL
);
`

/** Creates the tables when missing; an advisory lock keeps two instances starting together from racing. */
export const createTables = async (client: pg.ClientBase, schema: string, t: Tables): Promise<void> => {
  // idempotency is created last: when it exists, so does everything else, and a role without DDL rights works
  const ready = await client.query('SELECT to_regclass($1) IS NOT NULL AS ready', [t.idempotency])
  if (ready.rows[0]?.ready === true) return
  const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
  await client.query('BEGIN')
  try {
    await client.query("SELECT pg_advisory_xact_lock(hashtext('governance-ledger: create tables'))")
    await client.query(ddl(t, exists.rowCount === 0))
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK')
    throw error
  }
}

/** An events row as node-postgres returns it: BIGINT as text, TIMESTAMPTZ as a Date, JSON parsed. */
export interface EventRow {
  readonly position: string
  readonly id: string
  readonly stream: string
  readonly stream_version: string
  readonly type: string
  readonly recorded_at: Date
  readonly data: unknown
  readonly metadata: StoredEvent['metadata']
  readonly prev_hash: string
  readonly hash: string
}

export const fromRow = (row: EventRow): StoredEvent => ({
  id: row.id,
  type: row.type,
  stream: row.stream,
  streamVersion: Number(row.stream_version),
  position: Number(row.position),
  recordedAt: row.recorded_at.toISOString(),
  data: row.data,
  metadata: row.metadata,
  prevHash: row.prev_hash,
  hash: row.hash,
})
