/*
 * The ledger on KurrentDB (EventStoreDB).
 *
 * The port needs one gap-free global order 1, 2, 3... fixed when an event is written, because each event's hash
 * covers its position and the previous event's hash. KurrentDB's own global order, $all, does not give that: its
 * positions are commit/prepare offsets in the transaction file, with gaps, interleaved with system events and every
 * other stream of the database, and known only after the write (too late to hash). A filtered $all subscription with
 * checkpoints orders events, but cannot number them 1, 2, 3 nor chain them.
 *
 * So the whole ledger is one KurrentDB stream (`governance-ledger` by default), and positions are its revisions:
 * position p is revision p - 1, gap-free because a stream's revisions are. Each group commit is ONE appendToStream of
 * all its events, sealed (position, prevHash, hash) after the tip this process knows, with the expected revision
 * of that tip. KurrentDB appends them atomically, or refuses with WrongExpectedVersion when another writer (another
 * process) got there first: this process then reads the events it missed and plans the batch again. One stream
 * serialises every writer, in any number of processes, the way PostgreSQL's chain lock does.
 *
 * The port's streams are not KurrentDB streams: an event's stream and version travel in its KurrentDB metadata, and
 * each process keeps an index (LedgerIndex) of the ledger it has read: every stream's positions and every
 * idempotency key's range. It is built by reading the ledger once at open and brought up to the ledger's end before
 * each group commit and each read that uses it, so a stream's expected version is checked against what every
 * writer has appended, and the ledger append's expected revision makes that check and the append one atomic step.
 * readStream reads the stream's positions from the ledger, one request per run of consecutive positions.
 * (KurrentDB 25.1's multiStreamAppend or 26.1's appendRecords could keep per-stream copies atomically with the
 * ledger and spare the index; the 25.0 server this project runs has neither.)
 *
 * Idempotency keys: a key's range comes from the index, so a repeated key returns the first result, in this process
 * or another (the second writer's append conflicts, it reads the first one's events, and sees the key). KurrentDB's
 * own deduplication by event id (the envelope's id) makes an append whose answer was lost safe to send again
 * unchanged; when that still ends in a conflict, reading the planned positions back tells whether it landed.
 *
 * Subscriptions read the ledger stream in batches (the Feeds all adapters share) and await the handler per batch; one
 * live subscribeToStream from the stream's end wakes them when any writer appends, and they poll as a fallback.
 *
 * Costs: all writers share one stream (group commit amortises it); each process holds one number per event and one
 * entry per key in memory, and reads the whole ledger when it opens.
 */
import { KurrentDBClient } from '@kurrent/kurrentdb-client'
import { appendedUnder } from '../append-plan.js'
import { AppendQueue } from '../append-queue.js'
import { Feeds } from '../feed.js'
import { initialised } from '../open.js'
import {
  type Answerer,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type ExpectedVersion,
  GENESIS_HASH,
  type LedgerHead,
  type NewEvent,
  READ_BUDGET_BYTES,
  ReadBudget,
  StoreClosedError,
  type StoredEvent,
  type StreamWrite,
  type Subscription,
} from '../port.js'
import { takeBatch } from './commit.js'
import { GroupCommit } from './group-commit.js'
import { LedgerIndex, type PositionRun, runsOf } from './ledger-index.js'
import { jsonLength, LedgerStream } from './ledger-stream.js'
import { ledgerStreamName } from './mapping.js'
import { LedgerNotifier } from './notifier.js'

const PAGE = 1000
/** Reads of one readStream under way at once, one per run of consecutive positions. */
const PARALLEL_READS = 16

export interface KurrentDbEventStoreOptions {
  /** a KurrentDB connection string, e.g. kurrentdb://host:2113?tls=false */
  readonly url: string
  readonly clock?: () => Date
  /** the stream that holds the ledger (default governance-ledger): one database can hold several ledgers */
  readonly stream?: string
}

export class KurrentDbEventStore implements EventStore {
  private readonly client: KurrentDBClient
  private readonly ledger: LedgerStream
  private readonly index = new LedgerIndex()
  private readonly commits: GroupCommit
  private readonly appends: AppendQueue
  // feeds read past assertOpen: close() stops them before it disposes of the client
  private readonly feeds = new Feeds((after, limit, maxBytes) => this.ledger.after(after, limit, maxBytes))
  /** the latest read of the ledger's end, and the next one that calls made meanwhile share */
  private reading: Promise<void> = Promise.resolve()
  private waiting: Promise<void> | null = null
  private closing: Promise<void> | null = null
  private notifier: LedgerNotifier | null = null
  private answerer: Answerer | null = null

  constructor(options: KurrentDbEventStoreOptions) {
    const name = ledgerStreamName(options.stream)
    this.client = KurrentDBClient.connectionString(options.url)
    this.ledger = new LedgerStream(this.client, name)
    this.commits = new GroupCommit({
      ledger: this.ledger,
      index: this.index,
      catchUp: () => this.catchUp(),
      clock: options.clock ?? (() => new Date()),
      onCommit: () => this.feeds.wake(),
      answerer: () => this.answerer,
      readAfter: (after, limit) => this.readAll(after, limit),
    })
    // one ledger append carries what fits KurrentDB's size limit; the rest waits for the next
    this.appends = new AppendQueue({ take: takeBatch, flush: (calls) => this.commits.flush(calls) })
  }

  /** Reads the ledger once to build this process's index; called by openKurrentDbEventStore. */
  init(): Promise<void> {
    return this.catchUp()
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
    await this.catchUp()
    const range = this.index.keyRange(idempotencyKey)
    return range
      ? { events: appendedUnder(idempotencyKey, await this.ledger.range(range)), duplicate: true }
      : null
  }

  async readStream(
    stream: string,
    fromVersion = 1,
    limit?: number,
    maxBytes?: number,
  ): Promise<StoredEvent[]> {
    this.assertOpen()
    await this.catchUp()
    const positions = this.index.positions(stream, fromVersion)
    if (limit !== undefined) return this.streamPage(runsOf(positions.slice(0, limit)), maxBytes)
    const runs = runsOf(positions)
    const events: StoredEvent[] = []
    for (let i = 0; i < runs.length; i += PARALLEL_READS) {
      const reads = runs
        .slice(i, i + PARALLEL_READS)
        .map((run) => this.ledger.range({ first: run.first, last: run.first + run.count - 1 }))
      for (const page of await Promise.all(reads)) events.push(...page)
    }
    return events
  }

  /** A page of a stream: its runs read one after the other, until one stops at what is left of the budget. */
  private async streamPage(
    runs: readonly PositionRun[],
    maxBytes = READ_BUDGET_BYTES,
  ): Promise<StoredEvent[]> {
    const budget = new ReadBudget(maxBytes)
    const events: StoredEvent[] = []
    for (const run of runs) {
      const page = await this.ledger.after(run.first - 1, run.count, budget.left)
      events.push(...page)
      if (!budget.spend(page.reduce((sum, e) => sum + jsonLength(e), 0))) break
    }
    return events
  }

  async readAll(after: number, limit = 1000, maxBytes?: number): Promise<StoredEvent[]> {
    this.assertOpen()
    return this.ledger.after(after, limit, maxBytes)
  }

  async head(): Promise<LedgerHead> {
    this.assertOpen()
    const last = await this.ledger.last()
    return last ? { position: last.position, hash: last.hash } : { position: 0, hash: GENESIS_HASH }
  }

  subscribe(after: number, handler: (batch: readonly StoredEvent[]) => Promise<void>): Subscription {
    this.assertOpen()
    this.notifier ??= new LedgerNotifier(this.client, this.ledger.name, () => this.feeds.wake())
    return this.feeds.subscribe(after, handler)
  }

  answerWith(answerer: Answerer | null): void {
    this.answerer = answerer
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  /** Counters that show group commit at work: port appends per ledger append, and races lost to other writers. */
  stats(): { readonly transactions: number; readonly appends: number; readonly conflicts: number } {
    return this.commits.stats()
  }

  private async shutdown(): Promise<void> {
    await this.appends.drained()
    await this.feeds.close()
    await this.notifier?.close()
    await this.reading.catch(() => {})
    await this.client.dispose()
  }

  private assertOpen(): void {
    if (this.closing) throw new StoreClosedError()
  }

  /** Brings the index up to the ledger's end. A call made while a read is under way waits for the next read. */
  private catchUp(): Promise<void> {
    if (this.waiting) return this.waiting
    const next = this.reading
      .catch(() => {})
      .then(() => {
        this.waiting = null
        return this.readNew()
      })
    this.waiting = next
    this.reading = next
    return next
  }

  private async readNew(): Promise<void> {
    for (;;) {
      const page = await this.ledger.page(this.index.tip.position, PAGE)
      this.index.add(page.events)
      if (!page.more) return
    }
  }
}

/** Opens the ledger held in one stream of a KurrentDB database, reading it once to index it. */
export const openKurrentDbEventStore = async (
  options: KurrentDbEventStoreOptions,
): Promise<KurrentDbEventStore> => initialised(new KurrentDbEventStore(options))
