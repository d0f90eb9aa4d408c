import type { Plan } from './append-plan.js'

/**
 * The committed version of each stream this process has seen, so a batch reads only the streams it has not.
 * It holds while no other writer has appended: a batch reports the tip it found, and a moved tip empties it.
 */
export class StreamVersions {
  /** the tip the versions are valid at; none yet */
  private tip = -1
  private readonly versions = new Map<string, number>()

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

  /** The streams whose version is not known yet. */
  missing(streams: readonly string[]): string[] {
    return streams.filter((stream) => !this.versions.has(stream))
  }

  learn(versions: Iterable<readonly [string, number]>): void {
    for (const [stream, version] of versions) this.versions.set(stream, version)
  }

  /** A batch committed: the chain now ends at its tip, and its streams are at the versions it wrote. */
  committed(plan: Pick<Plan, 'tip' | 'versions'>): void {
    this.tip = plan.tip.position
    this.learn(plan.versions)
  }
}
