import pg from 'pg'
import {
  AnswerError,
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
import { initialised } from '../open.js'
import {
  type AnswerBatch,
  type Answerer,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
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
import { Notifier } from './notifier.js'
import {
  findByKeys,
  insertBatch,
  lockChainAtTip,
  readAll,
  readAllSized,
  readStream,
  readTip,
  streamVersions,
} from './queries.js'
import { createTables, type Tables, tablesIn } from './schema.js'

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
  private readonly versions = new StreamVersions()
  private readonly appends = new AppendQueue({ flush: (calls) => this.flush(calls) })
  /** the ledger's tail in memory: what this instance committed, and what its followers read after it */
  private readonly recent = new RecentEvents()
  // feeds read past assertOpen: close() stops them before it ends the pool
  private readonly feeds = new Feeds((after, limit, maxBytes) =>
    this.readAfter(this.pool, after, limit, maxBytes),
  )
  private closing: Promise<void> | null = null
  private notifier: Notifier | null = null
  private readonly counters = { transactions: 0, appends: 0 }
  private answerer: Answerer | null = null

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
    const events = (await findByKeys(this.pool, this.tables, [idempotencyKey])).get(idempotencyKey)
    return events ? { events, duplicate: true } : null
  }

  async readStream(
    stream: string,
    fromVersion = 1,
    limit?: number,
    maxBytes?: number,
  ): Promise<StoredEvent[]> {
    this.assertOpen()
    return readStream(this.pool, this.tables, stream, fromVersion, limit, maxBytes)
  }

  async readAll(after: number, limit = 1000, maxBytes?: number): Promise<StoredEvent[]> {
    this.assertOpen()
    return readAll(this.pool, this.tables, after, limit, maxBytes)
  }

  async head(): Promise<LedgerHead> {
    this.assertOpen()
    const { position, hash } = await readTip(this.pool, this.tables)
    return { position, hash }
  }

  subscribe(after: number, handler: (batch: readonly StoredEvent[]) => Promise<void>): Subscription {
    this.assertOpen()
    this.notifier ??= new Notifier(this.url, this.schema, () => this.feeds.wake())
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

  private async shutdown(): Promise<void> {
    await this.appends.drained()
    await this.feeds.close()
    await this.notifier?.close()
    await this.pool.end()
  }

  private assertOpen(): void {
    if (this.closing) throw new StoreClosedError()
  }

  /** Commits the calls in one transaction, then settles each; none is settled before COMMIT returns. */
  private async flush(calls: readonly PendingAppend[]): Promise<void> {
    const commit = await this.commit(calls)
    if (commit.ok) {
      settle(commit.plan.settled)
      if (commit.plan.events.length > 0) this.feeds.wake()
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
    let answers: AnswerBatch | null = null
    try {
      // the lock serialises writers in every process until COMMIT; the tip is read once it is held
      const known = await this.readKnown(client, await lockChainAtTip(client, this.tables), calls)
      let plan: Plan
      for (;;) {
        answers = await this.answersAt(client, known.tip.position)
        plan = planBatch(calls, known, this.clock(), answers ?? undefined)
        if (plan.unknownStreams.length === 0) break
        // an answer went to a stream whose version was not read: read it, and answer the batch again
        answers?.abandoned()
        answers = null
        this.versions.learn(await streamVersions(client, this.tables, plan.unknownStreams))
      }
      const { sizes } =
        plan.events.length > 0 ? await insertBatch(client, this.tables, this.schema, plan) : { sizes: [] }
      committing = true
      await client.query('COMMIT')
      client.release()
      answers?.committed(plan.tip.position)
      this.committed(plan, calls.length)
      this.recent.add(plan.events, sizes)
      return { ok: true, plan }
    } catch (error) {
      answers?.abandoned()
      const reusable = await client.query('ROLLBACK').then(
        () => true,
        () => false,
      )
      client.release(!reusable)
      // an error the server reported before COMMIT leaves nothing written; a lost connection may not
      const refused = error instanceof pg.DatabaseError || error instanceof AnswerError
      return { ok: false, error, rolledBack: !committing && refused }
    }
  }

  /**
   * The answerer brought up to the tip under the chain lock (another instance may have appended since), with a
   * batch opened: the instance holding the lock answers on a world current to the tip. Null: no answerer.
   */
  private async answersAt(client: pg.ClientBase, tip: number): Promise<AnswerBatch | null> {
    const answerer = this.answerer
    if (!answerer) return null
    for (let at = answerer.position; at < tip; ) {
      const events = await this.readAfter(client, at, 500)
      const last = events.at(-1)
      if (!last) throw new Error(`the ledger ends at ${at}, before its tip ${tip}`)
      answerer.follow(events)
      at = last.position
    }
    return answerer.begin()
  }

  /**
   * What the followers and the decision service read after a position: the tail in memory while it holds the
   * position, else the database (and what is read there extends the tail), so each event is read once per instance.
   */
  private async readAfter(
    db: pg.Pool | pg.ClientBase,
    after: number,
    limit: number,
    maxBytes = READ_BUDGET_BYTES,
  ): Promise<StoredEvent[]> {
    const held = this.recent.after(after, limit, maxBytes)
    if (held) return held
    const { events, sizes } = await readAllSized(db, this.tables, after, limit, maxBytes)
    this.recent.add(events, sizes)
    return events
  }

  private committed(plan: Plan, appends: number): void {
    this.versions.committed(plan)
    this.counters.transactions += 1
    this.counters.appends += appends
  }

  /** Reads, under the chain lock at `tip`, the stream versions and keys the batch depends on. */
  private async readKnown(client: pg.ClientBase, tip: Tip, calls: readonly PendingAppend[]): Promise<Known> {
    this.versions.at(tip.position)
    const missing = this.versions.missing(streamsOf(calls))
    if (missing.length > 0) this.versions.learn(await streamVersions(client, this.tables, missing))
    const keys = keysOf(calls)
    const stored = keys.length > 0 ? await findByKeys(client, this.tables, keys) : new Map()
    return { tip, versions: this.versions.known, keys: stored }
  }
}

/** Opens the ledger in a PostgreSQL database, creating its tables when missing. */
export const openPostgresEventStore = async (
  options: PostgresEventStoreOptions,
): Promise<PostgresEventStore> => initialised(new PostgresEventStore(options))
