import Database from 'better-sqlite3'
import {
  AnswerError,
  appendedUnder,
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
  type AnswerBatch,
  type Answerer,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
  GENESIS_HASH,
  type LedgerHead,
  type NewEvent,
  READ_BUDGET_BYTES,
  StoreClosedError,
  type StoredEvent,
  type StreamWrite,
  type Subscription,
} from '../port.js'
import { RecentEvents } from '../recent-events.js'
import { StreamVersions } from '../stream-versions.js'
import {
  type EventStatements,
  fromRow,
  prepare,
  readAfter,
  readAfterSized,
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
  private readonly recent = new RecentEvents()
  /** the stored JSON size of each event the transaction being committed writes */
  private written: number[] = []
  private readonly feeds = new Feeds((after, limit, maxBytes) => this.readAfter(after, limit, maxBytes))
  private closing: Promise<void> | null = null
  private readonly counters = { transactions: 0, appends: 0 }
  private readonly planAndWrite: Database.Transaction<(calls: readonly PendingAppend[]) => Plan>
  private answerer: Answerer | null = null
  /** the answers of the batch being committed, until it has committed or failed */
  private answering: AnswerBatch | null = null

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
      const known = this.readKnown(calls)
      this.answering = this.answersAt(known.tip.position)
      const plan = planBatch(calls, known, this.clock(), this.answering ?? undefined)
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
    // from the file, always: what verify and every catch-up read is what the ledger holds now
    return readAfter(this.sql, after, limit, maxBytes)
  }

  /**
   * What the live followers read: the tail held in memory, while it holds the position, else the file (and what
   * is read there extends the tail). A follower is handed the events as they were committed, typed once for all.
   */
  private readAfter(after: number, limit: number, maxBytes = READ_BUDGET_BYTES): StoredEvent[] {
    const held = this.recent.after(after, limit, maxBytes)
    if (held) return held
    const { events, sizes } = readAfterSized(this.sql, after, limit, maxBytes)
    this.recent.add(events, sizes)
    return events
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

  answerWith(answerer: Answerer | null): void {
    this.answerer = answerer
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
      if (error instanceof AnswerError && calls.length > 1) {
        // nothing was written: commit each call alone, so that only the one the rules cannot answer fails
        for (const call of calls) this.flush([call])
        return
      }
      for (const call of calls) call.reject(error)
      return
    }
    settle(plan.settled)
    this.feeds.wake()
  }

  private commit(calls: readonly PendingAppend[]): Plan {
    let plan: Plan
    try {
      // IMMEDIATE: the write lock is taken before the tip is read, so writers in every process take turns
      plan = this.planAndWrite.immediate(calls)
    } catch (error) {
      this.answering?.abandoned()
      this.answering = null
      throw error
    }
    this.answering?.committed(plan.tip.position)
    this.answering = null
    this.recent.add(plan.events, this.written)
    this.versions.committed(plan)
    this.counters.transactions += 1
    this.counters.appends += calls.length
    return plan
  }

  /** The answerer brought up to the tip (another process may have appended), with a batch opened; null: none. */
  private answersAt(tip: number): AnswerBatch | null {
    const answerer = this.answerer
    if (!answerer) return null
    for (let at = answerer.position; at < tip; ) {
      const events = this.readAfter(at, 500)
      const last = events.at(-1)
      if (!last) throw new Error(`the ledger ends at ${at}, before its tip ${tip}`)
      answerer.follow(events)
      at = last.position
    }
    return answerer.begin()
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
    const versionOf = (stream: string): number => {
      const version = this.sql.streamVersion.get(stream) ?? 0
      this.versions.learn([[stream, version]])
      return version
    }
    return { tip, versions: this.versions.known, keys, versionOf }
  }

  private write(plan: Plan): void {
    this.written = plan.events.map((event, i) => {
      const row = toRow(event, plan.dataTexts[i])
      this.sql.insertEvent.run(...row)
      return String(row[6]).length + String(row[7]).length
    })
    for (const { key, first, last } of plan.keys) this.sql.insertKey.run(key, first, last)
  }

  private findByKey(key: string): StoredEvent[] | undefined {
    const range = this.sql.findKey.get(key)
    return range && appendedUnder(key, this.sql.range.all(range.first, range.last).map(fromRow))
  }

  private readTip(): Tip {
    return this.sql.tip.get() ?? { position: 0, hash: GENESIS_HASH, recordedAt: '' }
  }
}

export const openSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore =>
  new SqliteEventStore(options)
