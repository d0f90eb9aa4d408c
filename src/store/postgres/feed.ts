import type { StoredEvent, Subscription } from '../port.js'

/** How long a caught-up feed waits before looking for appends it was not told about. */
const POLL_MS = 200

export interface FeedOptions {
  /** the next batch of events after a position, empty when caught up */
  readonly read: (after: number) => Promise<StoredEvent[]>
  readonly after: number
  readonly handler: (batch: readonly StoredEvent[]) => Promise<void>
  /** called once the feed has stopped, whatever the reason */
  readonly onEnd: () => void
}

/** An ordered subscription: reads a batch, awaits the handler, and when caught up waits for a wake-up. */
export class Feed implements Subscription {
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
