import { type DomainEvent, type LedgerEvent, toLedgerEvent } from '../src/domain/events.js'
import { DocCache } from '../src/store/doc-cache.js'
import { CheckpointMovedError, type DocStore } from '../src/store/docs.js'
import type { EventStore, StoredEvent, Subscription } from '../src/store/port.js'
import type { Projection } from './projection.js'

/** The projection version the stored documents were built with; kept beside them in the namespace. */
export const META_KEY = '__meta'
/** Catching up commits this many events together; following commits each delivery as it comes. */
const DEFAULT_BATCH_SIZE = 5000
/**
 * Catching up reads and types this many events at a time: a batch is evolved a read at a time, so only the
 * events of one read, not of the whole batch, are alive at once (fewer survivors for the garbage collector).
 * A read also stops at the store's byte budget, and a batch ends with the first short read.
 */
const READ_SIZE = 500
/**
 * How long following waits after each batch before it reads the next: under load the events of several group commits
 * then make one batch of the read models, each document written once for all of them.
 */
const FOLLOW_PAUSE_MS = 10
/** Decoded documents each runner keeps between batches: enough for the documents a stretch of ledger touches. */
const DEFAULT_CACHED_DOCS = 2000
/**
 * The ledger positions between two snapshot boundaries: an as-of read evolves at most this many events over the
 * documents as they were at the boundary before it (bench/as-of.ts measures the trade).
 */
export const SNAPSHOT_EVERY = 2_000

export interface Progress {
  readonly projection: string
  /** the ledger position the stored documents now reflect */
  readonly position: number
  /** events applied by this call so far */
  readonly applied: number
}
export type OnProgress = (progress: Progress) => void

export interface RunnerOptions {
  /** events committed together when catching up */
  readonly batchSize?: number
  /** decoded documents kept in memory between batches */
  readonly cachedDocs?: number
  /** ledger positions between snapshot boundaries (default SNAPSHOT_EVERY) */
  readonly snapshotEvery?: number
}

/** A projection could not apply a ledger event; the documents stay at the last committed batch. */
export class ProjectionError extends Error {
  override readonly name = 'ProjectionError'
  constructor(
    readonly projection: string,
    readonly position: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`projection ${projection}, ledger position ${position}: ${message}`, options)
  }
}

/** Types a stored event for a projection; an event that does not parse is an error, never skipped. */
const parse = (stored: StoredEvent, projection: string): LedgerEvent<DomainEvent> => {
  try {
    return toLedgerEvent(stored)
  } catch (cause) {
    throw new ProjectionError(
      projection,
      stored.position,
      `event ${stored.type} ${stored.id} does not parse`,
      { cause },
    )
  }
}

export const typed = (batch: readonly StoredEvent[], projection: string): LedgerEvent<DomainEvent>[] =>
  batch.map((stored) => parse(stored, projection))

/** Changes evolved from the events after `start` up to `position`, not yet committed. */
export interface PendingBatch {
  readonly start: number
  position: number
  /** document changes by key; null deletes */
  readonly changes: Map<string, unknown>
  /** by snapshot boundary, each key's document before its first change after the boundary (DocHistory) */
  readonly history: Map<number, Map<string, unknown>>
}

/** The last snapshot boundary before a position: the one the document an event there changes is kept at. */
export const boundaryBefore = (position: number, every: number): number =>
  Math.floor(Math.max(position - 1, 0) / every) * every

/**
 * Evolves a projection over events after `position` into `changes` (later events see what earlier ones
 * changed), with `before(key, doc)` told each key's document before each change; returns the new position.
 */
export const evolveEvents = (
  projection: Projection<unknown>,
  readStored: (key: string) => unknown,
  changes: Map<string, unknown>,
  position: number,
  events: readonly LedgerEvent<DomainEvent>[],
  before?: (event: LedgerEvent<DomainEvent>, key: string, doc: unknown) => void,
): number => {
  const read = (key: string): unknown =>
    changes.has(key) ? (changes.get(key) ?? undefined) : readStored(key)
  let at = position
  for (const event of events) {
    if (event.position <= at) continue // delivered again after a catch-up: already applied
    if (event.position !== at + 1) {
      throw new ProjectionError(
        projection.name,
        event.position,
        `expected position ${at + 1}: the ledger has a gap`,
      )
    }
    let changed: ReturnType<Projection['evolve']>
    try {
      changed = projection.evolve(read, event)
    } catch (cause) {
      throw new ProjectionError(projection.name, event.position, `evolve failed on ${event.type}`, { cause })
    }
    for (const [key, doc] of changed) {
      before?.(event, key, read(key))
      changes.set(key, doc)
    }
    at = event.position
  }
  return at
}

/** The document type of a projection. */
export type DocOf<P> = P extends Projection<infer D> ? D : never

/**
 * Keeps one projection's documents up to date with the ledger: each batch of events and the checkpoint
 * after it are committed together, so the documents always reflect exactly the checkpoint.
 */
export class ProjectionRunner<P extends Projection<unknown> = Projection> {
  readonly name: string
  private readonly batchSize: number
  /** documents as this runner last committed them, valid while the checkpoint is still `cachedAt` */
  private readonly cache: DocCache
  private cachedAt = -1
  /** ledger positions between snapshot boundaries */
  readonly snapshotEvery: number

  constructor(
    private readonly ledger: EventStore,
    private readonly docs: DocStore,
    readonly projection: P,
    options: RunnerOptions = {},
  ) {
    this.name = projection.name
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    this.cache = new DocCache(options.cachedDocs ?? DEFAULT_CACHED_DOCS)
    this.snapshotEvery = options.snapshotEvery ?? SNAPSHOT_EVERY
    if (!Number.isInteger(this.snapshotEvery) || this.snapshotEvery < 1)
      throw new RangeError(`snapshotEvery must be a positive integer, not ${this.snapshotEvery}`)
  }

  /** The documents this runner commits to, with their snapshots: what an as-of read starts from. */
  get store(): DocStore {
    return this.docs
  }

  /** The ledger position the stored documents reflect. */
  checkpoint(): number {
    return this.docs.checkpoint(this.name)
  }

  /** Applies every event after the checkpoint; resolves with the new checkpoint. */
  async catchUp(onProgress?: OnProgress): Promise<number> {
    let applied = 0
    for (;;) {
      const batch = this.begin()
      while (batch.position - batch.start < this.batchSize) {
        const limit = Math.min(READ_SIZE, this.batchSize - (batch.position - batch.start))
        const events = typed(await this.ledger.readAll(batch.position, limit), this.name)
        if (events.length === 0) break
        this.evolve(batch, events)
        // a short read met the ledger's end or its byte budget: commit before the batch holds more
        if (events.length < limit) break
      }
      if (batch.position === batch.start) return this.checkpoint()
      applied += this.commitOrReread(batch)
      onProgress?.({ projection: this.name, position: this.checkpoint(), applied })
    }
  }

  /** Drops the documents and applies the whole ledger again. Stop follow() first. */
  async rebuild(onProgress?: OnProgress): Promise<number> {
    this.wipe()
    return this.catchUp(onProgress)
  }

  /** Applies batches as the ledger delivers them, from the checkpoint on. */
  follow(): Subscription {
    this.ensureVersion()
    return this.ledger.subscribe(this.checkpoint(), async (batch) => {
      try {
        this.apply(batch)
      } catch (error) {
        // another process (a command-line catch-up on the same folder) moved the checkpoint: start from it
        if (!(error instanceof CheckpointMovedError)) throw error
        await this.catchUp()
      }
    })
  }

  get(key: string): DocOf<P> | undefined {
    // documents are written only by this projection's evolve, so they have its type
    return this.docs.get(this.name, key) as DocOf<P> | undefined
  }

  list(prefix: string, options?: { after?: string; limit?: number }): Array<[string, DocOf<P>]> {
    const found = this.docs.list(this.name, prefix, options) as Array<[string, DocOf<P>]>
    return found.filter(([key]) => key !== META_KEY)
  }

  /**
   * Documents of another version of the projection mean something else, and snapshots kept at other boundaries
   * (or none, from before they were kept) cannot answer as of every position: start over from zero.
   */
  private ensureVersion(): void {
    const meta = this.docs.get(this.name, META_KEY) as
      | { version?: unknown; snapshotEvery?: unknown }
      | undefined
    if (meta?.version === this.projection.version && meta.snapshotEvery === this.snapshotEvery) return
    this.wipe()
    const current = { version: this.projection.version, snapshotEvery: this.snapshotEvery }
    this.docs.commit(this.name, new Map([[META_KEY, current]]), 0)
  }

  private wipe(): void {
    this.docs.wipe(this.name)
    this.cache.clear()
  }

  /** Reads a document as committed, from memory while no other process has committed since this runner. */
  read(key: string): unknown {
    return this.readCommitted(key)
  }

  /** Drops what the runner holds in memory when the checkpoint is not where it left it (another process wrote). */
  refresh(checkpoint: number): void {
    if (checkpoint === this.cachedAt) return
    this.cache.clear()
    this.cachedAt = checkpoint
  }

  private readCommitted(key: string): unknown {
    return this.cache.get(key, () => this.docs.get(this.name, key))
  }

  /** A batch another process committed first is read again from the new checkpoint by the caller's loop. */
  private commitOrReread(batch: PendingBatch): number {
    try {
      return this.commit(batch)
    } catch (error) {
      if (error instanceof CheckpointMovedError) return 0
      throw error
    }
  }

  /** Evolves a batch over the stored documents and commits it with its checkpoint; returns events applied. */
  private apply(batch: readonly StoredEvent[]): number {
    return this.applyParsed(typed(batch, this.name))
  }

  /** The same, for events already typed: several runners fed from one read parse each event once. */
  applyParsed(events: readonly LedgerEvent<DomainEvent>[]): number {
    const batch = this.begin()
    this.evolve(batch, events)
    return this.commit(batch)
  }

  /** Starts a batch at the checkpoint; events evolved into it are committed together by commit(). */
  begin(): PendingBatch {
    this.ensureVersion()
    const start = this.checkpoint()
    // another process (a command-line catch-up on the same folder) committed since: what is held is stale
    if (start !== this.cachedAt) this.cache.clear()
    this.cachedAt = start
    return { start, position: start, changes: new Map(), history: new Map() }
  }

  /**
   * Evolves the events after the batch's position; later events see what earlier ones changed. Each key's
   * document before its first change after a snapshot boundary is kept for that boundary.
   */
  evolve(batch: PendingBatch, events: readonly LedgerEvent<DomainEvent>[]): void {
    const { history } = batch
    batch.position = evolveEvents(
      this.projection,
      (key) => this.readCommitted(key),
      batch.changes,
      batch.position,
      events,
      (event, key, doc) => {
        const boundary = boundaryBefore(event.position, this.snapshotEvery)
        let kept = history.get(boundary)
        if (!kept) {
          kept = new Map()
          history.set(boundary, kept)
        }
        if (!kept.has(key)) kept.set(key, doc ?? null)
      },
    )
  }

  /**
   * Commits the batch with its checkpoint, only if the checkpoint is still where the batch started
   * (else CheckpointMovedError, nothing written); returns the events applied.
   */
  commit(batch: PendingBatch): number {
    const { start, position, changes, history } = batch
    if (position === start) return 0
    // a CheckpointMovedError leaves cachedAt behind the moved checkpoint: the next batch drops the cache
    this.docs.commit(this.name, changes, position, start, history)
    this.cache.committed(changes)
    this.cachedAt = position
    return position - start
  }
}

/**
 * Catches several runners up with the ledger in one pass: each batch is read and typed once and handed to
 * every runner still behind it, instead of each runner reading and parsing the whole ledger on its own.
 */
export const catchUpAll = async (
  store: EventStore,
  runners: readonly ProjectionRunner[],
  onProgress?: OnProgress,
  batchSize = DEFAULT_BATCH_SIZE,
): Promise<number> => {
  if (runners.length === 0) return 0
  let after = Math.min(...runners.map((r) => r.checkpoint()))
  const applied = new Map<ProjectionRunner, number>()
  for (;;) {
    const batches = runners.map((runner) => [runner, runner.begin()] as const)
    let read = 0
    while (read < batchSize) {
      const limit = Math.min(READ_SIZE, batchSize - read)
      const events = typed(await store.readAll(after, limit), 'catch-up')
      const last = events.at(-1)
      if (!last) break
      for (const [runner, batch] of batches) runner.evolve(batch, events)
      read += events.length
      after = last.position
      // a short read met the ledger's end or its byte budget: commit before the batch holds more
      if (events.length < limit) break
    }
    if (read === 0) return after
    for (const [runner, batch] of batches) {
      const n = await commitOrCatchUp(runner, batch)
      applied.set(runner, (applied.get(runner) ?? 0) + n)
      onProgress?.({
        projection: runner.name,
        position: runner.checkpoint(),
        applied: applied.get(runner) ?? 0,
      })
    }
  }
}

const commitOrCatchUp = async (runner: ProjectionRunner, batch: PendingBatch): Promise<number> => {
  try {
    return runner.commit(batch)
  } catch (error) {
    // another process moved this runner's checkpoint: let it read from there on its own
    if (!(error instanceof CheckpointMovedError)) throw error
    const before = runner.checkpoint()
    return (await runner.catchUp()) - before
  }
}

/**
 * Commits several runners' batches in one transaction of their document store; returns the runners whose
 * checkpoint another process had moved (their batch was not written).
 */
const commitTogether = (
  pending: ReadonlyArray<readonly [ProjectionRunner, PendingBatch]>,
): ProjectionRunner[] => {
  const moved: ProjectionRunner[] = []
  const [first] = pending
  if (!first) return moved
  first[0].store.together(() => {
    for (const [runner, batch] of pending) {
      try {
        runner.commit(batch)
      } catch (error) {
        if (!(error instanceof CheckpointMovedError)) throw error
        moved.push(runner)
      }
    }
  })
  return moved
}

/** Follows the ledger for several runners with one subscription: each batch read and typed once for all. */
export const followAll = (store: EventStore, runners: readonly ProjectionRunner[]): Subscription => {
  for (const runner of runners) runner.applyParsed([])
  const from = Math.min(...runners.map((r) => r.checkpoint()))
  return store.subscribe(from, async (batch) => {
    const events = typed(batch, 'follow')
    const pending = runners.map((runner) => {
      const batch = runner.begin()
      runner.evolve(batch, events)
      return [runner, batch] as const
    })
    // every runner's batch in one transaction of derived.db: one write for the ledger's batch, not one per view
    const moved = commitTogether(pending)
    // another process moved these runners' checkpoints: each reads from there on its own
    for (const runner of moved) await runner.catchUp()
    // off the request path: what the ledger commits meanwhile makes one larger batch, with one write per document
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_PAUSE_MS))
  })
}

/** One runner per projection, caught up with the ledger together. */
export const runAll = async (
  store: EventStore,
  docs: DocStore,
  projections: readonly Projection[],
  onProgress?: OnProgress,
): Promise<ProjectionRunner[]> => {
  const runners = projections.map((projection) => new ProjectionRunner(store, docs, projection))
  await catchUpAll(store, runners, onProgress)
  return runners
}
