import type { DocChange, Projection } from '../../projections/projection.js'
import { ProjectionRunner } from '../../projections/runner.js'
import { toLedgerEvent } from '../domain/events.js'
import type { DocStore } from '../store/docs.js'
import type { AnswerBatch, Answerer, EventStore, NewEvent, StoredEvent, StreamWrite } from '../store/port.js'
import { evolveWorld } from './apply.js'
import { decideAndEvolve, type Output } from './decide.js'
import type { VerdictSigner } from './signer.js'
import { type Scan, scanWith, World } from './world.js'

export const DECISION_ACTOR = 'governance-ledger/decision'
export const DECISION_NAMESPACE = 'decision'

/** The layout of the world's documents, kept beside them: a world of another layout is rebuilt from zero. */
export const WORLD_VERSION = 7
const META_KEY = '__meta'

/** Empties the namespace and marks it as a world of this layout at position 0 (for a world kept by hand). */
export const resetWorld = (docs: DocStore, namespace: string): void => {
  docs.wipe(namespace)
  docs.commit(namespace, new Map([[META_KEY, { version: WORLD_VERSION }]]), 0)
}

const noScan: Scan = () => {
  throw new Error('the decision world evolves by reading documents by key, never by scanning')
}

/**
 * The decision service's world as a projection: its one evolve over the ledger, facts and answers alike. The
 * projection runner keeps it in derived.db off the request path, with the checkpoint and snapshots of every view.
 */
export const decisionWorld: Projection = {
  name: DECISION_NAMESPACE,
  version: WORLD_VERSION,
  evolve: (read, event): ReadonlyArray<DocChange<unknown>> => {
    const world = new World(read, noScan)
    evolveWorld(world, event)
    return [...world.changed()]
  },
}

/** Signs the outputs and groups consecutive outputs to one stream into one write, keeping their order. */
export const toWrites = (
  outputs: readonly Output[],
  signer: VerdictSigner,
  cause: StoredEvent,
): StreamWrite[] => {
  const writes: { stream: string; events: NewEvent[]; expectedVersion: 'any' }[] = []
  for (const output of outputs) {
    const data =
      output.type === 'VerdictIssued' ? { ...output.data, signature: signer.sign(output.data) } : output.data
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
 * The decision service, on the write path: the ledger hands it each group commit before committing it, and it
 * answers every event of the batch with the pure `decide`, so that the event and the verdicts it causes become
 * durable together. It decides on its world current to the chain's tip: the documents the projection runner has
 * committed, with the changes of the commits since laid over them (the overlay), which the runner's next
 * checkpoints make redundant. Events another instance appended are folded in under the chain lock, before a batch.
 */
export class DecisionService implements Answerer {
  /**
   * Opens the decision service over a ledger: its world caught up with the head, then answering every append
   * from now on (what the service does at start, for the tools and tests that drive a ledger directly).
   */
  static async answering(
    store: EventStore,
    docs: DocStore,
    signer: VerdictSigner,
    namespace = DECISION_NAMESPACE,
  ): Promise<DecisionService> {
    const service = new DecisionService(store, docs, signer, namespace)
    await service.catchUp()
    store.answerWith(service)
    return service
  }

  /** keeps the world in derived.db, following the ledger with the other views */
  readonly runner: ProjectionRunner
  /** documents changed by commits past the runner's checkpoint (null: deleted), and the position of each change */
  private readonly overlay = new Map<string, unknown>()
  private readonly changedAt = new Map<string, number>()
  /** the last position folded into the overlay */
  private overlayAt = 0
  /** the runner's checkpoint at the last pruning */
  private prunedAt = -1

  constructor(
    store: EventStore,
    docs: DocStore,
    private readonly signer: VerdictSigner,
    namespace = DECISION_NAMESPACE,
  ) {
    this.runner = new ProjectionRunner(store, docs, { ...decisionWorld, name: namespace })
  }

  /** Brings the world in derived.db up to the ledger's head; resolves with the position reached. */
  catchUp(): Promise<number> {
    return this.runner.catchUp()
  }

  /** the ledger position the world reflects */
  get position(): number {
    return Math.max(this.overlayAt, this.runner.checkpoint())
  }

  /** The world as of the last commit this service answered or followed (for the scheduler and the API). */
  world(): World {
    this.prune()
    return new World(
      (key) => (this.overlay.has(key) ? (this.overlay.get(key) ?? undefined) : this.runner.read(key)),
      scanWith((prefix, options) => this.runner.list(prefix, options), this.overlay),
    )
  }

  follow(events: readonly StoredEvent[]): void {
    const world = this.world()
    let at = this.position
    for (const stored of events) {
      if (stored.position <= at) continue
      evolveWorld(world, toLedgerEvent(stored))
      at = stored.position
    }
    if (at > this.position) this.lay(world.changed(), at)
  }

  begin(): AnswerBatch {
    const world = this.world()
    return {
      // the event is typed here, once, as it is appended: an event its schema refuses never enters the ledger
      answer: (event) => toWrites(decideAndEvolve(world, toLedgerEvent(event)), this.signer, event),
      committed: (position) => this.lay(world.changed(), position),
      abandoned: () => {},
    }
  }

  private lay(changes: ReadonlyMap<string, unknown>, position: number): void {
    for (const [key, doc] of changes) {
      this.overlay.set(key, doc)
      this.changedAt.set(key, position)
    }
    this.overlayAt = Math.max(this.overlayAt, position)
  }

  /** Drops the changes the runner has committed since: its documents now hold them, or later ones. */
  private prune(): void {
    const checkpoint = this.runner.checkpoint()
    if (checkpoint === this.prunedAt) return
    // the overlay covers the commits after the checkpoint it was pruned at: a world moved back (wiped or rebuilt
    // by another process) is not one to decide on; every append then fails until the service starts again
    if (checkpoint < this.prunedAt)
      throw new Error(
        `the decision world in derived.db went back from position ${this.prunedAt} to ${checkpoint}: another process rewrote it`,
      )
    this.runner.refresh(checkpoint)
    this.prunedAt = checkpoint
    for (const [key, at] of this.changedAt) {
      if (at > checkpoint) continue
      this.overlay.delete(key)
      this.changedAt.delete(key)
    }
  }
}
