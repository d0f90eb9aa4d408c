import type { Plan } from './append-plan.js'

/** Streams whose version is kept between batches: the busiest ones; any other is read again when written. */
const DEFAULT_CAPACITY = 10_000

/**
 * The committed version of recently written streams, so a batch reads only the streams it has not. It holds
 * while no other writer has appended: a batch reports the tip it found, and a moved tip empties it. The least
 * recently used streams are dropped past `capacity`, so a ledger of many streams does not grow the process.
 */
export class StreamVersions {
  /** the tip the versions are valid at; none yet */
  private tip = -1
  private readonly versions = new Map<string, number>()

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  get known(): ReadonlyMap<string, number> {
    return this.versions
  }

  /** The tip a batch found under the chain lock; another writer moved it when it differs. */
  at(tip: number): void {
    if (tip === this.tip) return
    // another process appended since our last commit: the cached stream versions may be stale
    this.versions.clear()
    this.tip = tip
  }

  /** The streams whose version is not known yet; the known ones become the most recently used. */
  missing(streams: readonly string[]): string[] {
    return streams.filter((stream) => {
      const version = this.versions.get(stream)
      if (version === undefined) return true
      this.versions.delete(stream)
      this.versions.set(stream, version)
      return false
    })
  }

  learn(versions: Iterable<readonly [string, number]>): void {
    for (const [stream, version] of versions) {
      this.versions.delete(stream)
      this.versions.set(stream, version)
    }
  }

  /**
   * A batch committed: the chain now ends at its tip, and its streams are at the versions it wrote. Only now
   * are the least recently used dropped, never while a batch still needs the versions it read.
   */
  committed(plan: Pick<Plan, 'tip' | 'versions'>): void {
    this.tip = plan.tip.position
    this.learn(plan.versions)
    for (const stream of this.versions.keys()) {
      if (this.versions.size <= this.capacity) break
      this.versions.delete(stream)
    }
  }
}
