import { existsSync } from 'node:fs'
import Database from 'better-sqlite3'
import { appendedUnder } from '../store/append-plan.js'
import {
  type AppendResult,
  type EventStore,
  GENESIS_HASH,
  type LedgerHead,
  type StoredEvent,
  type Subscription,
} from '../store/port.js'
import {
  type EventStatements,
  fromRow,
  prepare,
  readAfter,
  readStreamFrom,
} from '../store/sqlite/event-table.js'
import { CliError } from './errors.js'

const refuse = (): Promise<never> => Promise.reject(new Error('the ledger is open read-only'))

/**
 * The SQLite ledger opened read-only: verify, head and replay can never change it, and they read
 * alongside a running service (WAL lets readers and the one writer work at once).
 */
export class ReadOnlyLedger implements EventStore {
  private readonly db: Database.Database
  private readonly sql: EventStatements

  constructor(path: string) {
    if (!existsSync(path)) throw new CliError(`no ledger at ${path}: set DATA_DIR or --data-dir`)
    this.db = new Database(path, { readonly: true, fileMustExist: true })
    this.db.pragma('busy_timeout = 5000')
    const tables = this.db
      .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'")
      .pluck()
      .all()
    if (tables.length === 0) {
      this.db.close()
      throw new CliError(`${path} holds no ledger`)
    }
    this.sql = prepare(this.db)
  }

  append = refuse
  appendMany = refuse

  async recall(idempotencyKey: string): Promise<AppendResult | null> {
    const range = this.sql.findKey.get(idempotencyKey)
    return range
      ? {
          events: appendedUnder(idempotencyKey, this.sql.range.all(range.first, range.last).map(fromRow)),
          duplicate: true,
        }
      : null
  }

  async readStream(
    stream: string,
    fromVersion = 1,
    limit?: number,
    maxBytes?: number,
  ): Promise<StoredEvent[]> {
    return readStreamFrom(this.sql, stream, fromVersion, limit, maxBytes)
  }

  async readAll(after: number, limit = 1000, maxBytes?: number): Promise<StoredEvent[]> {
    return readAfter(this.sql, after, limit, maxBytes)
  }

  async head(): Promise<LedgerHead> {
    const tip = this.sql.tip.get()
    return tip ? { position: tip.position, hash: tip.hash } : { position: 0, hash: GENESIS_HASH }
  }

  /** When the last event was recorded; null for an empty ledger. */
  lastRecordedAt(): string | null {
    return this.sql.tip.get()?.recordedAt ?? null
  }

  subscribe(): Subscription {
    throw new Error('a read-only ledger has no live subscription')
  }

  answerWith(): void {
    throw new Error('a read-only ledger appends nothing to answer')
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}

/** The ledger as it stood at a position: later events are invisible. */
export const upTo = (store: EventStore, last: number): EventStore => ({
  append: refuse,
  appendMany: refuse,
  answerWith: () => {
    throw new Error('a ledger read as of a position appends nothing to answer')
  },
  recall: (key) => store.recall(key),
  readStream: async (stream, fromVersion, limit, maxBytes) =>
    (await store.readStream(stream, fromVersion, limit, maxBytes)).filter((e) => e.position <= last),
  readAll: async (after, limit, maxBytes) =>
    after >= last ? [] : (await store.readAll(after, limit, maxBytes)).filter((e) => e.position <= last),
  head: async () => {
    const [event] = last <= 0 ? [] : await store.readAll(last - 1, 1)
    return event ? { position: event.position, hash: event.hash } : { position: 0, hash: GENESIS_HASH }
  },
  subscribe: () => {
    throw new Error('a bounded ledger has no live subscription')
  },
  close: async () => undefined,
})
