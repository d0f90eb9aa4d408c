import type { DomainEvent, LedgerEvent } from '../src/domain/events.js'
import type { DocStore } from '../src/store/docs.js'
import { compareKeys } from '../src/store/memory/doc-store.js'
import type { EventStore } from '../src/store/port.js'
import type { Projection } from './projection.js'
import { type DocOf, evolveEvents, META_KEY, type ProjectionRunner, typed } from './runner.js'

/** What a read of a projection uses: a runner answers now, an as-of view as of a past ledger position. */
export interface ProjectionView<D> {
  readonly name: string
  /** the ledger position the answers reflect */
  checkpoint(): number
  get(key: string): D | undefined
  list(prefix: string, options?: { after?: string; limit?: number }): Array<[string, D]>
}

/** Runners by name (the runtime's views). */
export type RunnerSet<V> = { readonly [K in keyof V]: ProjectionRunner<Projection<unknown>> }

/** The view of each runner of a set, by the same names. */
export type ViewsOf<V extends RunnerSet<V>> = {
  readonly [K in keyof V]: ProjectionView<DocOf<V[K]['projection']>>
}

/** Events read per page when loading the stretch of ledger an as-of view evolves. */
const READ_SIZE = 500

/**
 * A projection as it was at a ledger position: its documents at the snapshot boundary at or before the
 * position (DocStore.getAt, listAt), with the events after the boundary up to the position evolved over them in
 * memory on the first read. Nothing is written.
 */
class AsOfView<D> implements ProjectionView<D> {
  readonly name: string
  private changes: Map<string, unknown> | null = null

  constructor(
    private readonly docs: DocStore,
    private readonly projection: Projection<unknown>,
    private readonly boundary: number,
    private readonly position: number,
    private readonly events: readonly LedgerEvent<DomainEvent>[],
  ) {
    this.name = projection.name
  }

  checkpoint(): number {
    return this.position
  }

  get(key: string): D | undefined {
    const changes = this.evolved()
    // documents are written only by this projection's evolve, so they have its type
    const doc = changes.has(key)
      ? (changes.get(key) ?? undefined)
      : this.docs.getAt(this.name, key, this.boundary)
    return doc as D | undefined
  }

  list(prefix: string, options: { after?: string; limit?: number } = {}): Array<[string, D]> {
    const changes = this.evolved()
    const { after, limit } = options
    const changed = [...changes.keys()].filter(
      (key) => key.startsWith(prefix) && (after === undefined || compareKeys(key, after) > 0),
    )
    // each changed key, and the projection's version, hides at most one stored key: as many more fill the page
    const stored = this.docs.listAt(this.name, prefix, this.boundary, {
      ...(after === undefined ? {} : { after }),
      ...(limit === undefined ? {} : { limit: limit + changed.length + 1 }),
    })
    const merged = new Map(stored)
    for (const key of changed) {
      const doc = changes.get(key)
      if (doc == null) merged.delete(key)
      else merged.set(key, doc)
    }
    merged.delete(META_KEY)
    return ([...merged] as Array<[string, D]>).sort(([a], [b]) => compareKeys(a, b)).slice(0, limit)
  }

  /** The changes of the events after the boundary, evolved once; a document read is read once. */
  private evolved(): Map<string, unknown> {
    if (this.changes) return this.changes
    const read = new Map<string, unknown>()
    const readStored = (key: string): unknown => {
      if (!read.has(key)) read.set(key, this.docs.getAt(this.name, key, this.boundary))
      return read.get(key)
    }
    const changes = new Map<string, unknown>()
    const reached = evolveEvents(this.projection, readStored, changes, this.boundary, this.events)
    if (reached !== this.position)
      throw new Error(`${this.name} as of ${this.position}: the ledger ends at ${reached}`)
    this.changes = changes
    return changes
  }
}

/** The snapshot boundary an as-of read of a runner starts from: at or before the position, and kept already. */
export const startOf = (runner: ProjectionRunner<Projection<unknown>>, position: number): number => {
  const within = Math.min(position, runner.checkpoint())
  return within - (within % runner.snapshotEvery)
}

/**
 * Every view of a set of runners as of a ledger position at or before the head: the same reads the runners
 * answer now, answered as they would have been when the ledger ended at `position`. The events from the
 * earliest boundary on are read once, for all; each view evolves them only when it is first read.
 */
export const viewsAsOf = async <V extends RunnerSet<V>>(
  ledger: EventStore,
  runners: V,
  position: number,
): Promise<ViewsOf<V>> => {
  const all = Object.entries(runners) as Array<[string, ProjectionRunner<Projection<unknown>>]>
  const starts = all.map(([, runner]) => startOf(runner, position))
  const events: LedgerEvent<DomainEvent>[] = []
  let after = Math.min(position, ...starts)
  while (after < position) {
    const page = await ledger.readAll(after, Math.min(READ_SIZE, position - after))
    const last = page.at(-1)
    if (!last) break
    for (const event of typed(page, 'as-of')) if (event.position <= position) events.push(event)
    after = last.position
  }
  const views = all.map(([key, runner]) => [
    key,
    new AsOfView(runner.store, runner.projection, startOf(runner, position), position, events),
  ])
  return Object.fromEntries(views) as ViewsOf<V>
}
