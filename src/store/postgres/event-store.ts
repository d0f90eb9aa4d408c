import pg from 'pg'
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
  type LedgerHead,
  type NewEvent,
  StoreClosedError,
  type StoredEvent,
  type StreamWrite,
  type Subscription,
} from '../port.js'
import { draftWrites, type Known, type PendingAppend, type Plan, planBatch } from './batch.js'
import { Feed } from './feed.js'
import { Notifier } from './notifier.js'
import {
  findByKeys,
  insertBatch,
  lockChain,
  readAll,
  readStream,
  readTip,
  streamVersions,
} from './queries.js'
import { createTables, type Tables, tablesIn } from './schema.js'

const FEED_BATCH = 500
const POOL_SIZE = 5

export interface PostgresEventStoreOptions {
  /** a libpq connection URL, e.g. postgres://user@host:5432/database */
  readonly url: string
  readonly clock?: () => Date
  /** the schema the ledger's tables live in; created when missing */
  readonly schema?: string
}

/** How a group commit ended: committed, or failed with or without the certainty that nothing was written. */
type Commit =
  | { readonly ok: true; readonly plan: Plan }
  | { readonly ok: false; readonly error: unknown; readonly rolledBack: boolean }

export class PostgresEventStore implements EventStore {
  private readonly pool: pg.Pool
  private readonly url: string
  private readonly clock: () => Date
  private readonly schema: string
  private readonly tables: Tables
  /** the last tip position this process committed or saw under the chain lock: another writer moves it */
  private knownPosition = -1
  /** committed version of each stream, valid while nobody else has appended since knownPosition */
  private readonly versions = new Map<string, number>()
  private queue: PendingAppend[] = []
  private flushing: Promise<void> | null = null
  private closing: Promise<void> | null = null
  private notifier: Notifier | null = null
  private readonly feeds = new Set<Feed>()
  private readonly counters = { transactions: 0, appends: 0 }

  constructor(options: PostgresEventStoreOptions) {
    this.url = options.url
    this.clock = options.clock ?? (() => new Date())
    this.schema = options.schema ?? 'public'
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: POOL_SIZE,
      connectionTimeoutMillis: 10_000,
      // a writer that stalls mid-transaction (a paused process) must not hold the chain lock for ever
      idle_in_transaction_session_timeout: 60_000,
    })
    // a connection that breaks while idle is dropped by the pool; the next query opens a new one
    this.pool.on('error', () => {})
    this.tables = tablesIn(this.schema)
  }

  /** Creates the tables when missing; called once by openPostgresEventStore. */
  async init(): Promise<void> {
    const client = await this.pool.connect()
    try {
      await createTables(client, this.schema, this.tables)
    } finally {
      client.release()
    }
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
    const events = (await findByKeys(this.pool, this.tables, [idempotencyKey])).get(idempotencyKey)
    return events ? { events, duplicate: true } : null
  }

  async readStream(stream: string, fromVersion = 1): Promise<StoredEvent[]> {
    this.assertOpen()
    return readStream(this.pool, this.tables, stream, fromVersion)
  }

  async readAll(after: number, limit = 1000): Promise<StoredEvent[]> {
    this.assertOpen()
    return readAll(this.pool, this.tables, after, limit)
  }

  async head(): Promise<LedgerHead> {
    this.assertOpen()
    const { position, hash } = await readTip(this.pool, this.tables)
    return { position, hash }
  }

  subscribe(after: number, handler: (batch: readonly StoredEvent[]) => Promise<void>): Subscription {
    this.assertOpen()
    this.notifier ??= new Notifier(this.url, this.schema, () => this.wakeFeeds())
    // feeds read past assertOpen: close() stops them before it ends the pool
    const read = (position: number) => readAll(this.pool, this.tables, position, FEED_BATCH)
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

  private async shutdown(): Promise<void> {
    await this.flushing
    await Promise.all([...this.feeds].map((feed) => feed.close()))
    await this.notifier?.close()
    await this.pool.end()
  }

  private assertOpen(): void {
    if (this.closing) throw new StoreClosedError()
  }

  private wakeFeeds(): void {
    for (const feed of this.feeds) feed.wake()
  }

  private enqueue(writes: readonly StreamWrite[], options: AppendOptions = {}): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.assertOpen()
      const key = options.idempotencyKey ?? null
      this.queue.push({ writes: draftWrites(writes, key), key, resolve, reject })
      this.flushing ??= this.drain().finally(() => {
        this.flushing = null
      })
    })
  }

  /** One transaction at a time; the calls that arrive while one commits go together into the next. */
  private async drain(): Promise<void> {
    for (;;) {
      // let the calls made in the same turn of the event loop join this batch
      await new Promise((resolve) => setImmediate(resolve))
      const calls = this.queue
      this.queue = []
      if (calls.length === 0) return
      await this.flush(calls)
    }
  }

  /** Commits the calls in one transaction, then settles each; none is settled before COMMIT returns. */
  private async flush(calls: readonly PendingAppend[]): Promise<void> {
    const commit = await this.commit(calls)
    if (commit.ok) {
      for (const { call, outcome } of commit.plan.settled) {
        if (outcome instanceof Error) call.reject(outcome)
        else call.resolve(outcome)
      }
      if (commit.plan.events.length > 0) this.wakeFeeds()
    } else if (commit.rolledBack && calls.length > 1) {
      // the database refused the batch and wrote nothing: commit each call alone, so only the bad one fails
      for (const call of calls) await this.flush([call])
    } else {
      for (const call of calls) call.reject(commit.error)
    }
  }

  private async commit(calls: readonly PendingAppend[]): Promise<Commit> {
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (error) {
      return { ok: false, error, rolledBack: false }
    }
    let committing = false
    try {
      // the lock serialises writers in every process until COMMIT; the tip is read once it is held
      await lockChain(client, this.tables)
      const plan = planBatch(calls, await this.readKnown(client, calls), this.clock())
      if (plan.events.length > 0) await insertBatch(client, this.tables, this.schema, plan)
      committing = true
      await client.query('COMMIT')
      client.release()
      this.committed(plan, calls.length)
      return { ok: true, plan }
    } catch (error) {
      const reusable = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      )
      client.release(!reusable)
      // an error the server reported before COMMIT leaves nothing written; a lost connection may not
      return { ok: false, error, rolledBack: !committing && error instanceof pg.DatabaseError }
    }
  }

  private committed(plan: Plan, appends: number): void {
    this.knownPosition = plan.tip.position
    for (const [stream, version] of plan.versions) this.versions.set(stream, version)
    this.counters.transactions += 1
    this.counters.appends += appends
  }

  /** Reads, under the chain lock, the tip and the stream versions and keys the batch depends on. */
  private async readKnown(client: pg.ClientBase, calls: readonly PendingAppend[]): Promise<Known> {
    const tip = await readTip(client, this.tables)
    if (tip.position !== this.knownPosition) {
      // another process appended since our last commit: the cached stream versions may be stale
      this.versions.clear()
      this.knownPosition = tip.position
    }
    const streams = new Set(calls.flatMap((call) => call.writes.map((write) => write.stream)))
    const missing = [...streams].filter((stream) => !this.versions.has(stream))
    if (missing.length > 0) {
      for (const [stream, version] of await streamVersions(client, this.tables, missing)) {
        this.versions.set(stream, version)
      }
    }
    const keys = calls.flatMap((call) => (call.key === null ? [] : [call.key]))
    const stored = keys.length > 0 ? await findByKeys(client, this.tables, keys) : new Map()
    return { tip, versions: this.versions, keys: stored }
  }
}

/** Opens the ledger in a PostgreSQL database, creating its tables when missing. */
export const openPostgresEventStore = async (
  options: PostgresEventStoreOptions,
): Promise<PostgresEventStore> => {
  const store = new PostgresEventStore(options)
  try {
    await store.init()
  } catch (error) {
    await store.close()
    throw error
  }
  return store
}
