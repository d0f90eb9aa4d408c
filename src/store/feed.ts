import { READ_BUDGET_BYTES, type StoredEvent, type Subscription } from './port.js'

/** How long a caught-up feed waits before looking for appends it was not told about. */
const POLL_MS = 200
/** The most events a feed reads, and hands its handler, at once; READ_BUDGET_BYTES bounds their size. */
const FEED_BATCH = 500

/** The events with a position greater than `after` in order, at most `limit` of them and about `maxBytes`. */
export type ReadAfter = (
  after: number,
  limit: number,
  maxBytes: number,
) => StoredEvent[] | Promise<StoredEvent[]>

type Handler = (batch: readonly StoredEvent[]) => Promise<void>

interface FeedOptions {
  /** the next batch of events after a position, empty when caught up */
  readonly read: (after: number) => StoredEvent[] | Promise<StoredEvent[]>
  readonly after: number
  readonly handler: Handler
  /** called once the feed has stopped, whatever the reason */
  readonly onEnd: () => void
}

/** An ordered subscription: reads a batch, awaits the handler, and when caught up waits for a wake-up. */
class Feed implements Subscription {
  readonly done: Promise<void>
  private stopped = false
  /** a wake-up that came while the feed was reading: the next wait returns at once */
  private woken = false
  private wakeUp = () => {}

  constructor(options: FeedOptions) {
    this.done = this.run(options).finally(options.onEnd)
  }

  /** New events were committed: stop waiting for the poll interval. */
  wake(): void {
    this.woken = true
    this.wakeUp()
  }

  async close(): Promise<void> {
    this.stopped = true
    this.wakeUp()
    await this.done.catch(() => {})
  }

  private async run({ read, after, handler }: FeedOptions): Promise<void> {
    // never call the handler before subscribe() has returned the subscription
    await Promise.resolve()
    let position = after
    while (!this.stopped) {
      this.woken = false
      const batch = await read(position)
      const last = batch.at(-1)
      if (last === undefined) {
        await this.idle()
        continue
      }
      if (this.stopped) return
      await handler(batch)
      position = last.position
    }
  }

  private idle(): Promise<void> {
    if (this.woken || this.stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, POLL_MS)
      this.wakeUp = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}

/** A store's subscriptions: each reads the ledger itself; commits wake them all, and close stops them all. */
export class Feeds {
  private readonly open = new Set<Feed>()

  constructor(private readonly read: ReadAfter) {}

  subscribe(after: number, handler: Handler): Subscription {
    const read = (position: number) => this.read(position, FEED_BATCH, READ_BUDGET_BYTES)
    const feed: Feed = new Feed({ read, after, handler, onEnd: () => this.open.delete(feed) })
    this.open.add(feed)
    return feed
  }

  /** New events were committed, by this process or another. */
  wake(): void {
    for (const feed of this.open) feed.wake()
  }

  /** Resolves once no handler is running any more. */
  async close(): Promise<void> {
    await Promise.all([...this.open].map((feed) => feed.close()))
  }
}
