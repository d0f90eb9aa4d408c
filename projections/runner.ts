import { type DomainEvent, type LedgerEvent, toLedgerEvent } from '../src/domain/events.js'
import { DocCache } from '../src/store/doc-cache.js'
import { CheckpointMovedError, type DocStore } from '../src/store/docs.js'
import type { EventStore, StoredEvent, Subscription } from '../src/store/port.js'
import type { Projection } from './projection.js'

/** The projection version the stored documents were built with; kept beside them in the namespace. */
export const META_KEY = '__meta'
/**
 * Catching up reads and commits this many events at a time; following commits each delivery as it comes.
 * Larger batches commit less often but keep more events alive at once, which costs more in garbage collection.
 */
const DEFAULT_BATCH_SIZE = 500
/** Decoded documents each runner keeps between batches: enough for the documents a stretch of ledger touches. */
const DEFAULT_CACHED_DOCS = 2000

export interface Progress {
  readonly projection: string
  /** the ledger position the stored documents now reflect */
  readonly position: number
  /** events applied by this call so far */
  readonly applied: number
}
export type OnProgress = (progress: Progress) => void

export interface RunnerOptions {
  /** events read and committed together when catching up */
  readonly batchSize?: number
  /** decoded documents kept in memory between batches */
  readonly cachedDocs?: number
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

const typed = (batch: readonly StoredEvent[], projection: string): LedgerEvent<DomainEvent>[] =>
  batch.map((stored) => parse(stored, projection))

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

  constructor(
    private readonly store: EventStore,
    private readonly docs: DocStore,
    readonly projection: P,
    options: RunnerOptions = {},
  ) {
    this.name = projection.name
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    this.cache = new DocCache(options.cachedDocs ?? DEFAULT_CACHED_DOCS)
  }

  /** The ledger position the stored documents reflect. */
  checkpoint(): number {
    return this.docs.checkpoint(this.name)
  }

  /** Applies every event after the checkpoint; resolves with the new checkpoint. */
  async catchUp(onProgress?: OnProgress): Promise<number> {
    this.ensureVersion()
    let applied = 0
    for (;;) {
      // typed as soon as read, so the rows as stored are garbage before the batch is applied
      const events = typed(await this.store.readAll(this.checkpoint(), this.batchSize), this.name)
      if (events.length === 0) return this.checkpoint()
      applied += this.applyOrReread(events)
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
    return this.store.subscribe(this.checkpoint(), async (batch) => {
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

  /** Documents of another version of the projection mean something else: start over from zero. */
  private ensureVersion(): void {
    const meta = this.docs.get(this.name, META_KEY) as { version?: unknown } | undefined
    if (meta?.version === this.projection.version) return
    this.wipe()
    this.docs.commit(this.name, new Map([[META_KEY, { version: this.projection.version }]]), 0)
  }

  private wipe(): void {
    this.docs.wipe(this.name)
    this.cache.clear()
  }

  /** Reads a document as committed, from memory while no other process has committed since this runner. */
  private readCommitted(key: string): unknown {
    return this.cache.get(key, () => this.docs.get(this.name, key))
  }

  /** A batch another process committed first is read again from the new checkpoint by the caller's loop. */
  private applyOrReread(events: readonly LedgerEvent<DomainEvent>[]): number {
    try {
      return this.applyParsed(events)
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
  applyParsed(batch: readonly LedgerEvent<DomainEvent>[]): number {
    this.ensureVersion()
    const start = this.checkpoint()
    // another process (a command-line catch-up on the same folder) committed since: what is held is stale
    if (start !== this.cachedAt) this.cache.clear()
    this.cachedAt = start
    let position = start
    const pending = new Map<string, unknown>()
    // later events of the batch see what earlier ones changed, before it reaches the store
    const read = (key: string): unknown =>
      pending.has(key) ? (pending.get(key) ?? undefined) : this.readCommitted(key)
    for (const stored of batch) {
      if (stored.position <= position) continue // delivered again after a catch-up: already applied
      if (stored.position !== position + 1) {
        throw new ProjectionError(
          this.name,
          stored.position,
          `expected position ${position + 1}: the ledger has a gap`,
        )
      }
      const event = stored
      let changes: ReturnType<Projection['evolve']>
      try {
        changes = this.projection.evolve(read, event)
      } catch (cause) {
        throw new ProjectionError(this.name, stored.position, `evolve failed on ${stored.type}`, { cause })
      }
      for (const [key, doc] of changes) pending.set(key, doc)
      position = stored.position
    }
    if (position === start) return 0
    // a CheckpointMovedError leaves cachedAt behind the moved checkpoint: the next batch drops the cache
    this.docs.commit(this.name, pending, position, start)
    this.cache.committed(pending)
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
    // typed as soon as read, so the rows as stored are garbage before the runners apply the batch
    const events = typed(await store.readAll(after, batchSize), 'catch-up')
    const last = events.at(-1)
    if (!last) return after
    for (const runner of runners) {
      const n = await applyOrCatchUp(runner, events)
      applied.set(runner, (applied.get(runner) ?? 0) + n)
      onProgress?.({
        projection: runner.name,
        position: runner.checkpoint(),
        applied: applied.get(runner) ?? 0,
      })
    }
    after = last.position
  }
}

const applyOrCatchUp = async (
  runner: ProjectionRunner,
  events: readonly LedgerEvent<DomainEvent>[],
): Promise<number> => {
  try {
    // events the runner already applied are skipped by it
    return runner.applyParsed(events)
  } catch (error) {
    // another process moved this runner's checkpoint: let it read from there on its own
    if (!(error instanceof CheckpointMovedError)) throw error
    const before = runner.checkpoint()
    return (await runner.catchUp()) - before
  }
}

/** Follows the ledger for several runners with one subscription: each batch read and typed once for all. */
export const followAll = (store: EventStore, runners: readonly ProjectionRunner[]): Subscription => {
  for (const runner of runners) runner.applyParsed([])
  const from = Math.min(...runners.map((r) => r.checkpoint()))
  return store.subscribe(from, async (batch) => {
    const events = typed(batch, 'follow')
    for (const runner of runners) await applyOrCatchUp(runner, events)
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
