import { toLedgerEvent } from '../domain/events.js'
import { DocCache } from '../store/doc-cache.js'
import type { DocStore } from '../store/docs.js'
import type { EventStore, NewEvent, StoredEvent, StreamWrite, Subscription } from '../store/port.js'
import { decide, type Output } from './decide.js'
import type { VerdictSigner } from './signer.js'
import { World } from './world.js'

export const DECISION_ACTOR = 'governance-ledger/decision'
export const DECISION_NAMESPACE = 'decision'

/** The layout of the world's documents, kept beside them: a world of another layout is rebuilt from zero. */
export const WORLD_VERSION = 6
const META_KEY = '__meta'
/** World documents the live service keeps decoded in memory. */
const CACHED_DOCS = 2_000

/** Empties the namespace and marks it as a world of this layout at position 0. */
export const resetWorld = (docs: DocStore, namespace: string): void => {
  docs.wipe(namespace)
  docs.commit(namespace, new Map([[META_KEY, { version: WORLD_VERSION }]]), 0)
}

const isCurrentWorld = (docs: DocStore, namespace: string): boolean =>
  (docs.get(namespace, META_KEY) as { version?: unknown } | undefined)?.version === WORLD_VERSION

/** The idempotency key of the answer to an event: the same event is never answered twice. */
const answerKey = (cause: StoredEvent): string => `decision:${cause.id}`

/** Signs the outputs and groups consecutive outputs to one stream into one write, keeping their order. */
export const toWrites = async (
  outputs: readonly Output[],
  signer: VerdictSigner,
  cause: StoredEvent,
): Promise<StreamWrite[]> => {
  const writes: { stream: string; events: NewEvent[]; expectedVersion: 'any' }[] = []
  for (const output of outputs) {
    const data =
      output.type === 'VerdictIssued'
        ? { ...output.data, signature: await signer.sign(output.data) }
        : output.data
    const event: NewEvent = {
      type: output.type,
      data,
      metadata: {
        actor: DECISION_ACTOR,
        correlationId: cause.metadata.correlationId ?? cause.id,
        causationId: cause.id,
      },
    }
    const last = writes.at(-1)
    if (last?.stream === output.stream) last.events.push(event)
    else writes.push({ stream: output.stream, events: [event], expectedVersion: 'any' })
  }
  return writes
}

/**
 * Consumes the ledger in order from its checkpoint and appends what the rules decide. The world's documents
 * and the checkpoint are saved together only after the batch's outputs are durable, so a crash replays the
 * batch and the idempotency key of each answer (the id of the event it answers) keeps it from doubling.
 */
export class DecisionService {
  private subscription: Subscription | null = null
  private running: Promise<void> = Promise.resolve()
  private lastPosition: number
  /** the ledger's head when catching up began: the answers to events up to it may be in the ledger already */
  private answeredUpTo = 0
  private readonly cache = new DocCache(CACHED_DOCS)
  /** callers waiting until the service has decided up to a position */
  private waiters: Array<{ readonly position: number; readonly done: (reached: boolean) => void }> = []

  constructor(
    private readonly store: EventStore,
    private readonly docs: DocStore,
    private readonly signer: VerdictSigner,
    private readonly namespace = DECISION_NAMESPACE,
  ) {
    if (!isCurrentWorld(docs, namespace)) resetWorld(docs, namespace)
    this.lastPosition = docs.checkpoint(namespace)
  }

  /** the last ledger position whose answer is durable */
  get position(): number {
    return this.lastPosition
  }

  /**
   * Resolves true once every event up to `position` is decided and its answers are durable, or false after
   * `timeoutMs`: what the execution gate waits for before it trusts the verdict in the ledger.
   */
  decided(position: number, timeoutMs: number): Promise<boolean> {
    if (this.lastPosition >= position) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        resolve(false)
      }, timeoutMs)
      const waiter = {
        position,
        done: (reached: boolean) => {
          clearTimeout(timer)
          resolve(reached)
        },
      }
      this.waiters.push(waiter)
    })
  }

  /** reads the world as of the checkpoint (for the scheduler and the API) */
  world(): World {
    return World.over(this.docs, this.namespace)
  }

  /** Decides a batch; batches run one at a time, whoever hands them in (the subscription or catchUp). */
  process(batch: readonly StoredEvent[]): Promise<void> {
    const run = this.running.then(() => this.decideBatch(batch))
    this.running = run.catch(() => undefined)
    return run
  }

  private async decideBatch(batch: readonly StoredEvent[]): Promise<void> {
    // the cache holds what this service committed: if anything else moved the world, it is stale
    if (this.docs.checkpoint(this.namespace) !== this.lastPosition) this.cache.clear()
    const { docs, namespace, cache } = this
    const world = new World(
      (key) => cache.get(key, () => docs.get(namespace, key)),
      (prefix, options) => docs.list(namespace, prefix, options),
    )
    const decided: Array<readonly [StoredEvent, Output[]]> = []
    for (const stored of batch) {
      if (stored.position <= this.lastPosition) continue
      const outputs = decide(world, toLedgerEvent(stored))
      if (outputs.length > 0) decided.push([stored, outputs])
    }
    // an answer already in the ledger (the world was lost and is being rebuilt) is not signed and sent again
    const recorded = await Promise.all(
      decided.map(([stored]) =>
        stored.position <= this.answeredUpTo ? this.store.recall(answerKey(stored)) : null,
      ),
    )
    const appends: Promise<unknown>[] = []
    for (const [i, [stored, outputs]] of decided.entries()) {
      if (recorded[i]) continue
      const writes = await toWrites(outputs, this.signer, stored)
      // not awaited here: group commit lets the answers to a whole batch share one transaction
      appends.push(this.store.appendMany(writes, { idempotencyKey: answerKey(stored) }))
    }
    await Promise.all(appends)
    const last = batch.at(-1)
    if (last && last.position > this.lastPosition) {
      // fails (and stops the service: fail closed) if another process moved the world meanwhile
      try {
        this.docs.commit(this.namespace, world.changed(), last.position, this.lastPosition)
      } catch (error) {
        this.cache.clear()
        throw error
      }
      this.cache.committed(world.changed())
      this.lastPosition = last.position
      const reached = this.waiters.filter((w) => w.position <= this.lastPosition)
      if (reached.length > 0) {
        this.waiters = this.waiters.filter((w) => w.position > this.lastPosition)
        for (const w of reached) w.done(true)
      }
    }
  }

  /** Processes everything up to the ledger's head as it is now; returns the position reached. */
  async catchUp(batchSize = 500): Promise<number> {
    this.answeredUpTo = Math.max(this.answeredUpTo, (await this.store.head()).position)
    for (;;) {
      const batch = await this.store.readAll(this.lastPosition, batchSize)
      if (batch.length === 0) return this.lastPosition
      await this.process(batch)
    }
  }

  /** Follows the ledger from the checkpoint; once a subscription has stopped, the next call starts another. */
  start(): Subscription {
    if (this.subscription) return this.subscription
    const subscription = this.store.subscribe(this.lastPosition, (batch) => this.process(batch))
    this.subscription = subscription
    const ended = () => {
      if (this.subscription === subscription) this.subscription = null
    }
    subscription.done.then(ended, ended)
    return subscription
  }

  async stop(): Promise<void> {
    await this.subscription?.close()
    this.subscription = null
  }
}
