import Database from 'better-sqlite3'
import {
  type Known,
  keysOf,
  type PendingAppend,
  type Plan,
  planBatch,
  settle,
  streamsOf,
  type Tip,
} from '../append-plan.js'
import { AppendQueue } from '../append-queue.js'
import { Feeds } from '../feed.js'
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
  GENESIS_HASH,
  type LedgerHead,
  type NewEvent,
  StoreClosedError,
  type StoredEvent,
  type StreamWrite,
  type Subscription,
} from '../port.js'
import { StreamVersions } from '../stream-versions.js'
import {
  type EventStatements,
  fromRow,
  prepare,
  readAfter,
  readStreamFrom,
  SCHEMA,
  toRow,
} from './event-table.js'

export interface SqliteEventStoreOptions {
  readonly path: string
  readonly clock?: () => Date
  /**
   * How long a lock another process holds on the file may block the thread (better-sqlite3 waits
   * synchronously) before the statement fails with SQLITE_BUSY; 5 s unless the caller cannot afford it
   */
  readonly busyTimeoutMs?: number
}

export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database
  private readonly sql: EventStatements
  private readonly clock: () => Date
  private readonly versions = new StreamVersions()
  private readonly appends = new AppendQueue({ flush: (calls) => this.flush(calls) })
  private readonly feeds = new Feeds((after, limit, maxBytes) => readAfter(this.sql, after, limit, maxBytes))
  private closing: Promise<void> | null = null
  private readonly counters = { transactions: 0, appends: 0 }
  private readonly planAndWrite: Database.Transaction<(calls: readonly PendingAppend[]) => Plan>

  constructor(options: SqliteEventStoreOptions) {
    this.db = new Database(options.path)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    this.db.pragma('foreign_keys = ON')
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5_000}`)
    this.db.exec(SCHEMA)
    this.sql = prepare(this.db)
    this.clock = options.clock ?? (() => new Date())
    this.planAndWrite = this.db.transaction((calls: readonly PendingAppend[]) => {
      const plan = planBatch(calls, this.readKnown(calls), this.clock())
      this.write(plan)
      return plan
    })
  }

  async append(
    stream: string,
    events: readonly NewEvent[],
    expectedVersion: ExpectedVersion,
    options?: AppendOptions,
  ): Promise<AppendResult> {
    return this.appendMany([{ stream, events, expectedVersion }], options)
  }

  async appendMany(writes: readonly StreamWrite[], options?: AppendOptions): Promise<AppendResult> {
    this.assertOpen()
    return this.appends.enqueue(writes, options)
  }

  async recall(idempotencyKey: string): Promise<AppendResult | null> {
    this.assertOpen()
    const events = this.findByKey(idempotencyKey)
    return events ? { events, duplicate: true } : null
  }

  async readStream(
    stream: string,
    fromVersion = 1,
    limit?: number,
    maxBytes?: number,
  ): Promise<StoredEvent[]> {
    this.assertOpen()
    return readStreamFrom(this.sql, stream, fromVersion, limit, maxBytes)
  }

  async readAll(after: number, limit = 1000, maxBytes?: number): Promise<StoredEvent[]> {
    this.assertOpen()
    return readAfter(this.sql, after, limit, maxBytes)
  }

  async head(): Promise<LedgerHead> {
    this.assertOpen()
    const { position, hash } = this.readTip()
    return { position, hash }
  }

  subscribe(after: number, handler: (batch: readonly StoredEvent[]) => Promise<void>): Subscription {
    this.assertOpen()
    return this.feeds.subscribe(after, handler)
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  /** Counters that show group commit at work: appends per transaction. */
  stats(): { readonly transactions: number; readonly appends: number } {
    return { ...this.counters }
  }

  /** The durability settings of the connection, read back from SQLite. */
  pragmas(): { readonly journalMode: unknown; readonly synchronous: unknown } {
    const read = (name: string) => this.db.pragma(name, { simple: true })
    return { journalMode: read('journal_mode'), synchronous: read('synchronous') }
  }

  private async shutdown(): Promise<void> {
    await this.appends.drained()
    await this.feeds.close()
    this.db.close()
  }

  private assertOpen(): void {
    if (this.closing) throw new StoreClosedError()
  }

  /** Commits the calls in one transaction, then settles each call. */
  private flush(calls: readonly PendingAppend[]): void {
    let plan: Plan
    try {
      plan = this.commit(calls)
    } catch (error) {
      for (const call of calls) call.reject(error)
      return
    }
    settle(plan.settled)
    this.feeds.wake()
  }

  private commit(calls: readonly PendingAppend[]): Plan {
    // IMMEDIATE: the write lock is taken before the tip is read, so writers in every process take turns
    const plan = this.planAndWrite.immediate(calls)
    this.versions.committed(plan)
    this.counters.transactions += 1
    this.counters.appends += calls.length
    return plan
  }

  /** Reads, in the transaction, the tip and the stream versions and keys the batch depends on. */
  private readKnown(calls: readonly PendingAppend[]): Known {
    const tip = this.readTip()
    this.versions.at(tip.position)
    const missing = this.versions.missing(streamsOf(calls))
    this.versions.learn(missing.map((stream) => [stream, this.sql.streamVersion.get(stream) ?? 0] as const))
    const keys = new Map<string, StoredEvent[]>()
    for (const key of keysOf(calls)) {
      const events = this.findByKey(key)
      if (events) keys.set(key, events)
    }
    return { tip, versions: this.versions.known, keys }
  }

  private write(plan: Plan): void {
    plan.events.forEach((event, i) => {
      this.sql.insertEvent.run(...toRow(event, plan.dataTexts[i]))
    })
    for (const { key, first, last } of plan.keys) this.sql.insertKey.run(key, first, last)
  }

  private findByKey(key: string): StoredEvent[] | undefined {
    const range = this.sql.findKey.get(key)
    return range && this.sql.range.all(range.first, range.last).map(fromRow)
  }

  private readTip(): Tip {
    return this.sql.tip.get() ?? { position: 0, hash: GENESIS_HASH, recordedAt: '' }
  }
}

export const openSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore =>
  new SqliteEventStore(options)
