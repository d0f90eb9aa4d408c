import type { Producer } from 'kafkajs'
import type { Logger } from 'pino'
import type { DocStore } from '../store/docs.js'
import type { EventStore, StoredEvent, Subscription } from '../store/port.js'
import { backoffMs, sleep } from './backoff.js'
import { type Topics, toKafkaMessage, VERDICT_TYPES } from './cloudevents.js'

export const RELAY_NAMESPACE = 'relay'

export interface RelayStats {
  readonly position: number
  readonly sent: number
  readonly failedAttempts: number
}

/**
 * The outbox: tails the ledger from a durable checkpoint and produces every event to governance.events and
 * every verdict and revocation to governance.verdicts, keyed by stream, with acks from all in-sync replicas.
 * The checkpoint moves only after the broker acknowledged, so delivery is at least once; the event id
 * (ce_id) is the consumers' deduplication key.
 */
export class Relay {
  private subscription: Subscription | null = null
  private stopping = false
  private sent = 0
  private failedAttempts = 0
  /** why the last chunk is not acknowledged yet, while the relay retries it; null once the broker took it */
  private unacknowledged: string | null = null

  constructor(
    private readonly store: EventStore,
    private readonly docs: DocStore,
    private readonly producer: Producer,
    private readonly topics: Topics,
    private readonly log: Logger,
    private readonly namespace = RELAY_NAMESPACE,
  ) {}

  get position(): number {
    return this.docs.checkpoint(this.namespace)
  }

  stats(): RelayStats {
    return { position: this.position, sent: this.sent, failedAttempts: this.failedAttempts }
  }

  /** Why verdicts are not reaching the broker now, or null: what the gate and /ready report. */
  get failure(): string | null {
    return this.unacknowledged
  }

  /** Follows the ledger from the checkpoint; once a subscription has stopped, the next call starts another. */
  start(): Subscription {
    this.stopping = false
    if (this.subscription) return this.subscription
    const subscription = this.store.subscribe(this.position, (batch) => this.relay(batch))
    this.subscription = subscription
    const ended = () => {
      if (this.subscription === subscription) this.subscription = null
    }
    subscription.done.then(ended, ended)
    return subscription
  }

  async stop(): Promise<void> {
    this.stopping = true
    await this.subscription?.close()
    this.subscription = null
  }

  /**
   * Sends a batch, in chunks small enough for the broker's default 1 MiB request limit, each until the broker
   * acknowledges it; the checkpoint moves after each acknowledged chunk.
   */
  async relay(batch: readonly StoredEvent[]): Promise<void> {
    const fresh = batch.filter((e) => e.position > this.position).map(outgoing)
    for (const chunk of chunks(fresh, CHUNK_BYTES)) await this.send(chunk)
  }

  private async send(chunk: readonly Outgoing[]): Promise<void> {
    const last = chunk.at(-1)?.event
    if (!last) return
    const messages = chunk.map((o) => o.message)
    const verdicts = chunk.flatMap((o) => (o.verdict ? [o.message] : []))
    const topicMessages = [
      { topic: this.topics.events, messages },
      ...(verdicts.length > 0 ? [{ topic: this.topics.verdicts, messages: verdicts }] : []),
    ]
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.producer.sendBatch({ acks: -1, topicMessages })
        this.unacknowledged = null
        break
      } catch (error) {
        this.failedAttempts += 1
        this.unacknowledged = `the broker has not acknowledged position ${last.position} after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${error instanceof Error ? error.message : String(error)}`
        if (this.stopping) throw error
        const delay = backoffMs(attempt)
        this.log.warn(
          { err: error, attempt, position: last.position, delayMs: delay },
          'relay: the broker did not acknowledge; retrying',
        )
        await sleep(delay)
      }
    }
    this.docs.commit(this.namespace, new Map(), last.position)
    this.sent += chunk.length
  }
}

/**
 * The broker limits each record batch, one per topic partition, to message.max.bytes (1 MiB by default). A
 * chunk's events go to governance.events and its verdicts, a subset of them, to governance.verdicts: with the
 * chunk under this many bytes, no partition's batch of either topic can pass the limit, whatever the keys.
 */
const CHUNK_BYTES = 768 * 1024

/** An event encoded once, with its size in a record batch (key, value and headers; framing aside). */
interface Outgoing {
  readonly event: StoredEvent
  readonly message: ReturnType<typeof toKafkaMessage>
  readonly verdict: boolean
  readonly bytes: number
}

const outgoing = (event: StoredEvent): Outgoing => {
  const message = toKafkaMessage(event)
  const verdict = VERDICT_TYPES.has(event.type)
  let bytes = message.key.length + message.value.length
  for (const k in message.headers) bytes += k.length + (message.headers[k]?.length ?? 0)
  return { event, message, verdict, bytes }
}

/** Consecutive runs of events of at most `limit` bytes each (an event larger than that goes alone). */
const chunks = (events: readonly Outgoing[], limit: number): Outgoing[][] => {
  const out: Outgoing[][] = []
  let current: Outgoing[] = []
  let bytes = 0
  for (const e of events) {
    const size = e.bytes
    if (current.length > 0 && bytes + size > limit) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(e)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}
