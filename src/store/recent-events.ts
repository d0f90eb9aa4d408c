import type { StoredEvent } from './port.js'

/** How many of the last events a store keeps in memory for the readers that follow the ledger... */
const DEFAULT_CAPACITY = 4096
/**
 * ...and how much of their stored JSON at most: events of a megabyte each must not fill the heap (the service runs
 * with an old generation of 128 MB), while ordinary events of a few kilobytes still number in the thousands.
 */
const DEFAULT_CAPACITY_BYTES = 8 * 1024 * 1024

/**
 * The tail of the ledger held in memory: the events this process committed, and those its followers read after
 * them (appended by another writer), so that every reader that follows the ledger (projections, the Merkle tree,
 * the ledger tail, the decision service folding in another instance's commits) reads an event from the ledger at
 * most once per process and shares one decoded copy of it. It holds one stretch of positions without a gap: a
 * commit that does not follow on (another writer appended in between) is not kept, and the first reader to read
 * the positions between from the ledger brings the stretch up to them again.
 */
export class RecentEvents {
  private events: StoredEvent[] = []
  /** the stored JSON size of each event (data and metadata), for the readers' byte budget */
  private sizes: number[] = []
  /** the sum of `sizes` */
  private bytes = 0

  constructor(
    private readonly capacity = DEFAULT_CAPACITY,
    private readonly capacityBytes = DEFAULT_CAPACITY_BYTES,
  ) {}

  /**
   * Events committed by this process or read from the ledger, in position order, with the stored JSON size of
   * each: kept where they follow on from what it holds.
   */
  add(events: readonly StoredEvent[], sizes: readonly number[]): void {
    const last = this.events.at(-1)
    // what the stretch already holds is skipped; what would leave a gap is not kept
    const from = last ? events.findIndex((e) => e.position > last.position) : 0
    const first = events[from]
    if (from < 0 || !first || (last && first.position !== last.position + 1)) return
    const added = sizes.slice(from)
    this.events.push(...events.slice(from))
    this.sizes.push(...added)
    for (const size of added) this.bytes += size
    // the oldest go first, past the count or the bytes
    let over = Math.max(0, this.events.length - this.capacity)
    let bytes = this.bytes
    for (let i = 0; i < over; i += 1) bytes -= this.sizes[i] ?? 0
    while (bytes > this.capacityBytes && over < this.events.length) {
      bytes -= this.sizes[over] ?? 0
      over += 1
    }
    if (over > 0) {
      this.events = this.events.slice(over)
      this.sizes = this.sizes.slice(over)
      this.bytes = bytes
    }
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
