import type { EventMetadata } from '../domain/events.js'

/** What a writer hands the ledger; the ledger adds id, position, version, time and hashes. */
export interface NewEvent {
  readonly type: string
  readonly data: unknown
  readonly metadata: Pick<EventMetadata, 'actor'> &
    Partial<Pick<EventMetadata, 'correlationId' | 'causationId' | 'requestDigest'>>
}

/** A stored event in its envelope (README.md, "Events are the truth"). */
export interface StoredEvent {
  readonly id: string
  readonly type: string
  readonly stream: string
  readonly streamVersion: number
  readonly position: number
  readonly recordedAt: string
  readonly data: unknown
  readonly metadata: EventMetadata
  readonly prevHash: string
  readonly hash: string
}

/** A number is the exact current version of the stream (0: the stream has no event yet). */
export type ExpectedVersion = number | 'any' | 'no-stream'

export interface StreamWrite {
  readonly stream: string
  readonly events: readonly NewEvent[]
  readonly expectedVersion: ExpectedVersion
}

export interface AppendOptions {
  /** A retried append with the same key returns the first result and appends nothing. */
  readonly idempotencyKey?: string
}

export interface AppendResult {
  /** the events as stored, in order */
  readonly events: readonly StoredEvent[]
  /** true when the idempotency key had been seen: nothing new was appended */
  readonly duplicate: boolean
  /**
   * the answers the ledger's answerer appended to these events in the same commit (the verdicts they caused), in
   * ledger order; absent for a duplicate, whose answers were told to the first call
   */
  readonly answers?: readonly StoredEvent[]
}

/**
 * Answers the events of each group commit inside that commit: the decision service on the write path. An event and
 * the answers it causes become durable together, so the ledger never holds an event whose answer it lacks.
 */
export interface Answerer {
  /** the ledger position its world reflects */
  readonly position: number
  /** folds committed events after that position (another writer appended them) before a batch is answered */
  follow(events: readonly StoredEvent[]): void
  /** opens the answers of one group commit, planned on a world current to the chain's tip */
  begin(): AnswerBatch
}

export interface AnswerBatch {
  /** the answers to one event of the batch, sealed right after it; each write goes to any version of its stream */
  answer(event: StoredEvent): readonly StreamWrite[]
  /** the batch is durable, up to this position */
  committed(position: number): void
  /** the batch did not commit: what it folded is forgotten */
  abandoned(): void
}

export class WrongExpectedVersionError extends Error {
  override readonly name = 'WrongExpectedVersionError'
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(`stream ${stream} is at version ${actual}, expected ${String(expected)}`)
  }
}

export class StoreClosedError extends Error {
  override readonly name = 'StoreClosedError'
  constructor() {
    super('the event store is closed')
  }
}

export interface LedgerHead {
  readonly position: number
  readonly hash: string
}

export interface Subscription {
  /** stops delivery; resolves once the handler is no longer running */
  close(): Promise<void>
  /** resolves when the subscription stopped on its own (handler error) */
  readonly done: Promise<void>
}

/** The ledger's port. Every adapter passes the same contract suite. */
export interface EventStore {
  append(
    stream: string,
    events: readonly NewEvent[],
    expectedVersion: ExpectedVersion,
    options?: AppendOptions,
  ): Promise<AppendResult>
  /** Appends to several streams in one transaction: all or nothing. */
  appendMany(writes: readonly StreamWrite[], options?: AppendOptions): Promise<AppendResult>
  /** What an append under this idempotency key stored, or null when the key is new. */
  recall(idempotencyKey: string): Promise<AppendResult | null>
  /**
   * A stream's events from a version on; with `limit`, a page: at most `limit` events, and none past the one whose
   * stored JSON reaches `maxBytes` (default READ_BUDGET_BYTES), never empty while events follow.
   */
  readStream(stream: string, fromVersion?: number, limit?: number, maxBytes?: number): Promise<StoredEvent[]>
  /**
   * Events with position strictly greater than `after`, in global order: at most `limit` of them, and none
   * past the one whose stored JSON brings the read to `maxBytes` (default READ_BUDGET_BYTES). Never empty while
   * events follow `after`, so a reader pages until a read comes back empty.
   */
  readAll(after: number, limit?: number, maxBytes?: number): Promise<StoredEvent[]>
  head(): Promise<LedgerHead>
  /**
   * Delivers every event after `after`, in order, one batch at a time; the handler's promise is awaited
   * before the next batch, so a consumer that saves its checkpoint in the handler never skips an event.
   */
  subscribe(after: number, handler: (batch: readonly StoredEvent[]) => Promise<void>): Subscription
  /** Answers every event appended from now on in its own commit (one answerer per store; null: none). */
  answerWith(answerer: Answerer | null): void
  close(): Promise<void>
}

/**
 * The most stored JSON (data and metadata, in characters) one batch read of the ledger holds: a batch stops at the
 * event that reaches it, and holds at least one event, so a ledger of large events is read a few at a time.
 */
export const READ_BUDGET_BYTES = 4 * 1024 * 1024

/** Counts what a batch read has taken; false once the budget is spent: take nothing more. */
export class ReadBudget {
  private unspent: number

  constructor(maxBytes: number = READ_BUDGET_BYTES) {
    this.unspent = maxBytes
  }

  /** what may still be read */
  get left(): number {
    return this.unspent
  }

  spend(bytes: number): boolean {
    this.unspent -= bytes
    return this.unspent > 0
  }
}

/** The genesis link of the hash chain. */
export const GENESIS_HASH = '0'.repeat(64)
