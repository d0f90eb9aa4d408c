import type { StoredEvent } from './port.js'

/** How many of the last committed events a store keeps in memory for the readers that follow the ledger. */
const DEFAULT_CAPACITY = 4096

/**
 * The tail of the ledger as this process committed it: the sealed events, held in memory, so that the readers that
 * follow the ledger (projections, the Merkle tree, the ledger tail) read what was just committed without reading
 * and parsing it again, sharing one decoded copy. It holds only positions this process committed one after another:
 * a commit that does not follow on (another writer appended in between) starts it again.
 */
export class RecentEvents {
  private events: StoredEvent[] = []
  /** the stored JSON size of each event (data and metadata), for the readers' byte budget */
  private sizes: number[] = []

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** A commit's events, in position order, with the stored JSON size of each. */
  committed(events: readonly StoredEvent[], sizes: readonly number[]): void {
    const first = events[0]
    if (!first) return
    const last = this.events.at(-1)
    if (last && last.position + 1 !== first.position) this.clear()
    this.events.push(...events)
    this.sizes.push(...sizes)
    const over = this.events.length - this.capacity
    if (over > 0) {
      this.events = this.events.slice(over)
      this.sizes = this.sizes.slice(over)
    }
  }

  clear(): void {
    this.events = []
    this.sizes = []
  }

  /**
   * The events after `after`, at most `limit` and up to the one whose stored JSON reaches `maxBytes`, as a read of
   * the ledger gives them; null when the tail does not hold the position after `after` (read the ledger instead).
   */
  after(after: number, limit: number, maxBytes: number): StoredEvent[] | null {
    const first = this.events[0]
    const last = this.events.at(-1)
    if (!first || !last || after < first.position - 1 || after >= last.position) return null
    const start = after + 1 - first.position
    const found: StoredEvent[] = []
    let budget = maxBytes
    for (let i = start; i < this.events.length && found.length < limit; i += 1) {
      found.push(this.events[i] as StoredEvent)
      budget -= this.sizes[i] ?? 0
      if (budget <= 0) break
    }
    return found
  }
}
