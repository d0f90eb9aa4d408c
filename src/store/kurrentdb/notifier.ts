import { END, type KurrentDBClient, type StreamSubscription } from '@kurrent/kurrentdb-client'

/** How long to wait before subscribing again after the subscription dropped; feeds poll meanwhile. */
const RESUBSCRIBE_MS = 1000

/**
 * Tells this process when any writer (this process or another) appended to the ledger stream: a live KurrentDB
 * subscription from the stream's end, which only wakes the feeds. The feeds read the events themselves, in order
 * and in batches, and also poll, so a dropped subscription delays delivery but never loses an event.
 */
export class LedgerNotifier {
  private subscription: StreamSubscription | null = null
  private retry: NodeJS.Timeout | null = null
  private stopped = false

  constructor(
    private readonly client: KurrentDBClient,
    private readonly stream: string,
    private readonly onAppend: () => void,
  ) {
    this.subscribe()
  }

  async close(): Promise<void> {
    this.stopped = true
    if (this.retry) clearTimeout(this.retry)
    const subscription = this.subscription
    this.subscription = null
    await subscription?.unsubscribe().catch(() => {})
  }

  private subscribe(): void {
    const subscription = this.client.subscribeToStream(this.stream, { fromRevision: END })
    this.subscription = subscription
    subscription.on('data', () => this.onAppend())
    // appends made while there was no subscription: let the feeds look
    subscription.on('caughtUp', () => this.onAppend())
    subscription.on('error', () => this.resubscribe(subscription))
    subscription.on('end', () => this.resubscribe(subscription))
  }

  private resubscribe(dropped: StreamSubscription): void {
    if (this.stopped || this.subscription !== dropped || this.retry) return
    this.subscription = null
    dropped.unsubscribe().catch(() => {})
    this.retry = setTimeout(() => {
      this.retry = null
      if (!this.stopped) this.subscribe()
    }, RESUBSCRIBE_MS)
    this.retry.unref()
  }
}
