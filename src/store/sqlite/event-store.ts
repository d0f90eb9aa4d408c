import Database from 'better-sqlite3'
import { canonicalize } from '../../domain/canonical.js'
import { uuidv7 } from '../../domain/ids.js'
import { chainHash } from '../chain.js'
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
  WrongExpectedVersionError,
} from '../port.js'
import { type EventStatements, fromRow, prepare, SCHEMA, toRow } from './event-table.js'
import { Feed } from './feed.js'

const FEED_BATCH = 500

/** The end of the chain, and the time the next batch is recorded at. */
interface Tip {
  readonly position: number
  readonly hash: string
  readonly recordedAt: string
}

type Draft = Pick<StoredEvent, 'type' | 'data' | 'metadata'>

interface DraftWrite {
  readonly stream: string
  readonly expectedVersion: ExpectedVersion
  readonly events: readonly Draft[]
}

interface PendingAppend {
  readonly writes: readonly DraftWrite[]
  readonly key: string | null
  readonly resolve: (result: AppendResult) => void
  readonly reject: (error: unknown) => void
}

/** What one group-commit transaction has written so far. */
interface Batch {
  tip: Tip
  readonly versions: Map<string, number>
  readonly keys: Map<string, readonly StoredEvent[]>
}

interface Settlement {
  readonly call: PendingAppend
  readonly outcome: AppendResult | WrongExpectedVersionError
}

const isExpectedVersion = (v: ExpectedVersion): boolean =>
  v === 'any' || v === 'no-stream' || (Number.isSafeInteger(v) && v >= 0)

const matches = (expected: ExpectedVersion, actual: number): boolean =>
  expected === 'any' || (expected === 'no-stream' ? actual === 0 : expected === actual)

const draft = (event: NewEvent, key: string | null): Draft => ({
  type: event.type,
  // the canonical form is what gets hashed, so a copy of exactly that is what gets stored
  data: JSON.parse(canonicalize(event.data)),
  metadata: {
    actor: event.metadata.actor,
    correlationId: event.metadata.correlationId ?? null,
    causationId: event.metadata.causationId ?? null,
    idempotencyKey: key,
  },
})

/** Validates a call up front, so that a bad call fails alone instead of failing its whole batch. */
const draftWrites = (writes: readonly StreamWrite[], key: string | null): DraftWrite[] => {
  if (writes.length === 0) throw new TypeError('an append needs at least one stream write')
  return writes.map(({ stream, events, expectedVersion }) => {
    if (events.length === 0) throw new TypeError(`an append to ${stream} needs at least one event`)
    if (!isExpectedVersion(expectedVersion)) {
      throw new TypeError(`invalid expected version ${String(expectedVersion)}`)
    }
    return { stream, expectedVersion, events: events.map((event) => draft(event, key)) }
  })
}

const seal = (tip: Tip, stream: string, streamVersion: number, event: Draft): StoredEvent => {
  const { recordedAt } = tip
  const body = {
    ...event,
    id: uuidv7(Date.parse(recordedAt)),
    stream,
    streamVersion,
    position: tip.position + 1,
    recordedAt,
  }
  return { ...body, prevHash: tip.hash, hash: chainHash(tip.hash, body) }
}

export interface SqliteEventStoreOptions {
  readonly path: string
  readonly clock?: () => Date
}

export class SqliteEventStore implements EventStore {
  private readonly db: Database.Database
  private readonly sql: EventStatements
  private readonly clock: () => Date
  /** the last position this process committed or saw: another writer moves it */
  private knownPosition: number
  /** committed version of each stream seen so far */
  private readonly versions = new Map<string, number>()
  private queue: PendingAppend[] = []
  private flushScheduled = false
  private closing: Promise<void> | null = null
  private readonly feeds = new Set<Feed>()
  private readonly counters = { transactions: 0, appends: 0 }

  constructor(options: SqliteEventStoreOptions) {
    this.db = new Database(options.path)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    this.db.pragma('foreign_keys = ON')
    this.db.pragma('busy_timeout = 5000')
    this.db.exec(SCHEMA)
    this.sql = prepare(this.db)
    this.clock = options.clock ?? (() => new Date())
    this.knownPosition = this.readTip().position
  }

  append(
    stream: string,
    events: readonly NewEvent[],
    expectedVersion: ExpectedVersion,
    options?: AppendOptions,
  ) {
    return this.enqueue([{ stream, events, expectedVersion }], options)
  }

  appendMany(writes: readonly StreamWrite[], options?: AppendOptions) {
    return this.enqueue(writes, options)
  }

  async recall(idempotencyKey: string): Promise<AppendResult | null> {
    this.assertOpen()
    const events = this.findByKey(idempotencyKey)
    return events ? { events, duplicate: true } : null
  }

  async readStream(stream: string, fromVersion = 1): Promise<StoredEvent[]> {
    this.assertOpen()
    return this.sql.readStream.all(stream, fromVersion).map(fromRow)
  }

  async readAll(after: number, limit = 1000): Promise<StoredEvent[]> {
    this.assertOpen()
    return this.sql.readAll.all(after, limit).map(fromRow)
  }

  async head(): Promise<LedgerHead> {
    this.assertOpen()
    const { position, hash } = this.readTip()
    return { position, hash }
  }

  subscribe(after: number, handler: (batch: readonly StoredEvent[]) => Promise<void>): Subscription {
    this.assertOpen()
    const read = (position: number) => this.sql.readAll.all(position, FEED_BATCH).map(fromRow)
    const feed: Feed = new Feed({ read, after, handler, onEnd: () => this.feeds.delete(feed) })
    this.feeds.add(feed)
    return feed
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
    this.flush()
    await Promise.all([...this.feeds].map((feed) => feed.close()))
    this.db.close()
  }

  private assertOpen(): void {
    if (this.closing) throw new StoreClosedError()
  }

  private enqueue(writes: readonly StreamWrite[], options: AppendOptions = {}): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.assertOpen()
      const key = options.idempotencyKey ?? null
      this.queue.push({ writes: draftWrites(writes, key), key, resolve, reject })
      if (this.flushScheduled) return
      this.flushScheduled = true
      setImmediate(() => this.flush())
    })
  }

  /** Commits every queued append in one transaction, then settles each call. */
  private flush(): void {
    this.flushScheduled = false
    const calls = this.queue
    this.queue = []
    if (calls.length === 0) return
    let settled: Settlement[]
    try {
      settled = this.commit(calls)
    } catch (error) {
      for (const call of calls) call.reject(error)
      return
    }
    for (const { call, outcome } of settled) {
      if (outcome instanceof Error) call.reject(outcome)
      else call.resolve(outcome)
    }
    for (const feed of this.feeds) feed.wake()
  }

  private commit(calls: readonly PendingAppend[]): Settlement[] {
    const run = this.db.transaction(() => {
      const batch = this.openBatch()
      return { batch, settled: calls.map((call) => ({ call, outcome: this.apply(batch, call) })) }
    })
    const { batch, settled } = run.immediate()
    this.knownPosition = batch.tip.position
    for (const [stream, version] of batch.versions) this.versions.set(stream, version)
    this.counters.transactions += 1
    this.counters.appends += calls.length
    return settled
  }

  private openBatch(): Batch {
    const tip = this.readTip()
    // another process appended since our last commit: the cached stream versions may be stale
    if (tip.position !== this.knownPosition) this.versions.clear()
    // recordedAt never goes backwards, even when the clock does
    const recordedAt = new Date(
      Math.max(this.clock().getTime(), Date.parse(tip.recordedAt) || 0),
    ).toISOString()
    return { tip: { ...tip, recordedAt }, versions: new Map(), keys: new Map() }
  }

  private apply(batch: Batch, call: PendingAppend): AppendResult | WrongExpectedVersionError {
    const seen = call.key === null ? undefined : (batch.keys.get(call.key) ?? this.findByKey(call.key))
    if (seen) return { events: seen, duplicate: true }
    const versions = new Map<string, number>()
    const events: StoredEvent[] = []
    let tip = batch.tip
    for (const write of call.writes) {
      let version = versions.get(write.stream) ?? this.versionOf(batch, write.stream)
      if (!matches(write.expectedVersion, version)) {
        return new WrongExpectedVersionError(write.stream, write.expectedVersion, version)
      }
      for (const draft of write.events) {
        version += 1
        const event = seal(tip, write.stream, version, draft)
        events.push(event)
        tip = { ...tip, position: event.position, hash: event.hash }
      }
      versions.set(write.stream, version)
    }
    this.write(batch, call.key, events)
    batch.tip = tip
    for (const [stream, version] of versions) batch.versions.set(stream, version)
    return { events, duplicate: false }
  }

  private write(batch: Batch, key: string | null, events: readonly StoredEvent[]): void {
    for (const event of events) this.sql.insertEvent.run(...toRow(event))
    const first = events[0]
    const last = events.at(-1)
    if (key === null || first === undefined || last === undefined) return
    this.sql.insertKey.run(key, first.position, last.position)
    batch.keys.set(key, events)
  }

  private findByKey(key: string): StoredEvent[] | undefined {
    const range = this.sql.findKey.get(key)
    return range && this.sql.range.all(range.first, range.last).map(fromRow)
  }

  private versionOf(batch: Batch, stream: string): number {
    const pending = batch.versions.get(stream) ?? this.versions.get(stream)
    if (pending !== undefined) return pending
    const version = this.sql.streamVersion.get(stream) ?? 0
    this.versions.set(stream, version)
    return version
  }

  private readTip(): Tip {
    return this.sql.tip.get() ?? { position: 0, hash: GENESIS_HASH, recordedAt: '' }
  }
}

export const openSqliteEventStore = (options: SqliteEventStoreOptions): SqliteEventStore =>
  new SqliteEventStore(options)
