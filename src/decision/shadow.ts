import type { DataOf, LedgerEvent } from '../domain/events.js'
import { streams, toLedgerEvent } from '../domain/events.js'
import { CheckpointMovedError, type DocStore } from '../store/docs.js'
import type { EventStore, StoredEvent, Subscription } from '../store/port.js'
import { streamPages } from '../store/stream-pages.js'
import {
  emptyTally,
  type Flip,
  type FlipTally,
  flipOf,
  putInForce,
  type RecordedVerdict,
  tally,
} from './counterfactual.js'
import { decideAndEvolve, type Output, type UnsignedVerdict } from './decide.js'
import { DECISION_ACTOR, WORLD_VERSION } from './service.js'
import { World } from './world.js'

/**
 * Shadow policies: a second decision world beside the live one, with the same `decide` and `World` as the
 * decision service, kept in a namespace of its own in derived.db. It decides every ledger event as the
 * decision service does, except that from a ShadowPolicyPublished to the end of that shadow the shadow policy
 * is in force instead of the live one (the ledger's PolicyPublished events are kept out of its world meanwhile,
 * as counterfactual replay keeps them out of its range). For every proposal it decides in that time, its
 * decision is compared with the last verdict the decision service recorded: the would-flip counts.
 *
 * Nothing it decides is signed or appended: the only thing it writes is its own namespace, so it can never
 * change a verdict. Everything in it derives from the ledger alone (a restart or a rebuild gives the same
 * counts). It sleeps, only moving its checkpoint, while no shadow policy is in force; when the ledger holds one
 * still in force, it decides the ledger from its start with that one alone put in force (an earlier shadow
 * policy, withdrawn or promoted, is not), so its world up to the publication is the decision service's, as in
 * counterfactual replay. When the shadow ends, its world goes with it and it sleeps again.
 */

export const SHADOW_NAMESPACE = 'shadow'
/** the name the shadow world's own policy changes go by: never an event of the ledger */
const SHADOW_POLICY_NAME = 'shadow'
const META_KEY = '__meta'
/** Events decided and committed together. */
const BATCH_SIZE = 500

/** The shadow policy in force, and from when. */
export interface ShadowInForce {
  readonly policy: DataOf<'ShadowPolicyPublished'>
  /** the position of its ShadowPolicyPublished: the first event it was decided on */
  readonly since: number
  readonly publishedAt: string
}

interface ShadowState {
  readonly inForce: ShadowInForce | null
  /** proposals decided under the shadow policy that the decision service recorded a verdict for */
  readonly compared: number
  readonly tally: FlipTally
}

/** What the shadow decided for one proposal, and how it differs from the live verdict. */
interface Decided {
  readonly verdict: UnsignedVerdict
  readonly compared: boolean
  readonly flip: Flip | null
}

/** The shadow policy in force and its would-flip counts, as of `position`. */
export interface ShadowReport extends FlipTally {
  readonly version: number
  readonly owner: string
  readonly publishedBy: string
  readonly approvedBy: string | null
  readonly since: number
  readonly publishedAt: string
  readonly compared: number
  /** the ledger position the counts reflect */
  readonly position: number
}

const keys = {
  state: () => 'shadow.state',
  live: (proposalId: string) => `shadow.live:${proposalId}`,
  decided: (proposalId: string) => `shadow.decided:${proposalId}`,
} as const
const DECIDED_PREFIX = 'shadow.decided:'

const initialState = (): ShadowState => ({ inForce: null, compared: 0, tally: emptyTally() })

interface Meta {
  readonly version: number
  /** false: no shadow policy in force, so no world kept */
  readonly awake: boolean
  /** awake: the position of the ShadowPolicyPublished the world is decided for; no other is put in force */
  readonly since: number
}

const metaOf = (docs: DocStore, namespace: string): Meta | null => {
  const meta = docs.get(namespace, META_KEY) as Partial<Meta> | undefined
  return meta?.version === WORLD_VERSION && typeof meta.awake === 'boolean' && typeof meta.since === 'number'
    ? (meta as Meta)
    : null
}

const ASLEEP = { awake: false, since: 0 } as const

/** Drops the namespace, and starts it again at `checkpoint`, asleep or awake for the shadow policy at `since`. */
const reset = (docs: DocStore, namespace: string, meta: Omit<Meta, 'version'>, checkpoint: number): void => {
  docs.wipe(namespace)
  docs.commit(
    namespace,
    new Map([[META_KEY, { version: WORLD_VERSION, ...meta } satisfies Meta]]),
    checkpoint,
  )
}

/** The position of the ShadowPolicyPublished still in force on the ledger; null when none is. */
const shadowInForceAt = async (store: EventStore): Promise<number | null> => {
  let at: number | null = null
  for await (const page of streamPages(store, streams.policy())) {
    for (const e of page) {
      if (e.type === 'ShadowPolicyPublished') at = e.position
      else if (e.type === 'ShadowPolicyWithdrawn' || e.type === 'ShadowPolicyPromoted') at = null
    }
  }
  return at
}

/** The shadow's own documents, read through the changes of the batch not yet committed. */
class ShadowDocs {
  readonly changes = new Map<string, unknown>()

  constructor(
    private readonly docs: DocStore,
    private readonly namespace: string,
  ) {}

  get<T>(key: string): T | undefined {
    if (this.changes.has(key)) return (this.changes.get(key) ?? undefined) as T | undefined
    return this.docs.get(this.namespace, key) as T | undefined
  }

  put(key: string, doc: unknown): void {
    this.changes.set(key, doc)
  }
}

/**
 * Decides one ledger event in the shadow world and updates the comparison with the live verdicts; 'ended' when
 * the event ends the shadow policy the world is decided for (published at `since`).
 */
const shadowStep = (
  world: World,
  own: ShadowDocs,
  event: LedgerEvent,
  actor: string,
  since: number,
): 'ended' | null => {
  let state = own.get<ShadowState>(keys.state()) ?? initialState()
  const compare = (proposalId: string) => {
    const decided = own.get<Decided>(keys.decided(proposalId))
    if (decided === undefined) return
    const live = own.get<RecordedVerdict>(keys.live(proposalId))
    const flip = live === undefined ? null : flipOf(proposalId, live, decided.verdict)
    const counts = structuredClone(state.tally)
    if (decided.flip) tally(counts, decided.flip, -1)
    if (flip) tally(counts, flip)
    const compared = state.compared + (live !== undefined && !decided.compared ? 1 : 0)
    state = { ...state, compared, tally: counts }
    own.put(keys.decided(proposalId), { ...decided, compared: live !== undefined, flip } satisfies Decided)
  }
  const shadowDecided = (outputs: Output[]) => {
    if (state.inForce === null) return
    for (const o of outputs) {
      if (o.type !== 'VerdictIssued') continue
      const was = own.get<Decided>(keys.decided(o.data.proposalId))
      own.put(keys.decided(o.data.proposalId), {
        verdict: o.data,
        compared: was?.compared ?? false,
        flip: was?.flip ?? null,
      } satisfies Decided)
      compare(o.data.proposalId)
    }
  }
  switch (event.type) {
    case 'VerdictIssued':
      if (actor === DECISION_ACTOR) {
        const { decision, checks, policyVersion, proposalId } = event.data
        own.put(keys.live(proposalId), { decision, checks, policyVersion } satisfies RecordedVerdict)
        if (state.inForce !== null) compare(proposalId)
      }
      decideAndEvolve(world, event, 'what-if')
      break
    case 'ShadowPolicyPublished':
      // an earlier shadow policy, ended since, was never in force in this world
      if (event.position !== since) break
      state = {
        ...state,
        inForce: { policy: event.data, since: event.position, publishedAt: event.recordedAt },
      }
      shadowDecided(putInForce(world, event, event.data, SHADOW_POLICY_NAME))
      break
    case 'ShadowPolicyWithdrawn':
    case 'ShadowPolicyPromoted':
      // the end of an earlier one, or of this one: the counts and the world go with it
      if (state.inForce !== null) return 'ended'
      break
    case 'PolicyPublished':
      // kept out of the shadow world while a shadow policy is in force
      if (state.inForce === null) decideAndEvolve(world, event, 'what-if')
      break
    default:
      shadowDecided(decideAndEvolve(world, event, 'what-if'))
  }
  own.put(keys.state(), state)
  return null
}

/**
 * Keeps the shadow world up to date with the ledger, a batch at a time; each batch's documents and the
 * checkpoint after it are committed together, so the counts always reflect exactly the checkpoint.
 */
export class ShadowDecisions {
  private running: Promise<unknown> = Promise.resolve()
  private subscription: Subscription | null = null
  /** stop() was called: following reads no further batch, however far from the head it is */
  private stopping = false

  constructor(
    private readonly store: EventStore,
    private readonly docs: DocStore,
    private readonly namespace = SHADOW_NAMESPACE,
  ) {
    if (metaOf(docs, namespace) === null) reset(docs, namespace, ASLEEP, 0)
  }

  /** the ledger position the shadow world and its counts reflect */
  get position(): number {
    return this.docs.checkpoint(this.namespace)
  }

  /** Decides every event after the checkpoint up to the ledger's head; resolves with the position reached. */
  catchUp(): Promise<number> {
    return this.serially(() => this.decideToHead())
  }

  /** Follows the ledger from the checkpoint. */
  start(): Subscription {
    if (this.subscription) return this.subscription
    this.stopping = false
    const subscription = this.store.subscribe(this.position, (batch) =>
      this.serially(() => this.follow(batch)),
    )
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

  /** The shadow policy in force with its would-flip counts; null when there is none. */
  report(): ShadowReport | null {
    const state = this.docs.get(this.namespace, keys.state()) as ShadowState | undefined
    const inForce = state?.inForce ?? null
    if (state === undefined || inForce === null) return null
    const { version, owner, publishedBy, approvedBy } = inForce.policy
    return {
      version,
      owner,
      publishedBy,
      approvedBy,
      since: inForce.since,
      publishedAt: inForce.publishedAt,
      compared: state.compared,
      ...state.tally,
      position: this.position,
    }
  }

  /** The proposals the shadow policy would flip now, in proposal id order, at most `limit`. */
  flips(limit: number): Flip[] {
    const found: Flip[] = []
    let after: string | undefined
    while (found.length < limit) {
      const page = this.docs.list(this.namespace, DECIDED_PREFIX, { after, limit: 256 })
      for (const [, doc] of page) {
        const flip = (doc as Decided).flip
        if (flip !== null && found.length < limit) found.push(flip)
      }
      if (page.length < 256) break
      after = page.at(-1)?.[0]
    }
    return found
  }

  /** one batch at a time, whoever hands it in (the subscription or catchUp) */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.running.then(work)
    this.running = run.catch(() => undefined)
    return run
  }

  /** Decides a delivered batch; reads the ledger itself when the batch does not take it where it has to go. */
  private async follow(batch: readonly StoredEvent[]): Promise<void> {
    const from = this.position
    const fresh = batch.filter((e) => e.position > from)
    if (fresh.length === 0) return
    try {
      this.decideBatch(from, fresh, await this.wakingFor(fresh))
    } catch (error) {
      if (!(error instanceof CheckpointMovedError)) throw error
    }
    // woken up (decided from the start again), or moved by another process: read the ledger from there
    if (this.position < (fresh.at(-1)?.position ?? 0)) await this.decideToHead(() => this.stopping)
  }

  /** `stopped`: asked before each batch; a batch decided is committed, so the next start goes on from there */
  private async decideToHead(stopped: () => boolean = () => false): Promise<number> {
    for (;;) {
      const from = this.position
      if (stopped()) return from
      const batch = await this.store.readAll(from, BATCH_SIZE)
      if (batch.length === 0) return from
      try {
        this.decideBatch(from, batch, await this.wakingFor(batch))
      } catch (error) {
        // another process (a command line read) moved the checkpoint: go on from where it left it
        if (!(error instanceof CheckpointMovedError)) throw error
      }
    }
  }

  /** Asleep, a batch that holds a shadow policy: the position of the one still in force on the ledger, if any. */
  private async wakingFor(batch: readonly StoredEvent[]): Promise<number | null> {
    if (metaOf(this.docs, this.namespace)?.awake) return null
    if (!batch.some((e) => e.type === 'ShadowPolicyPublished')) return null
    return shadowInForceAt(this.store)
  }

  /** `inForceAt`: asleep, the shadow policy still in force, which wakes it when the batch holds it. */
  private decideBatch(from: number, batch: readonly StoredEvent[], inForceAt: number | null): void {
    const { docs, namespace } = this
    const last = batch.at(-1)?.position ?? from
    const meta = metaOf(docs, namespace)
    if (!meta?.awake) {
      // asleep: nothing to decide until a shadow policy still in force; then the ledger from its start for it
      if (batch.some((e) => e.position === inForceAt)) {
        reset(docs, namespace, { awake: true, since: inForceAt ?? 0 }, 0)
      } else docs.commit(namespace, new Map(), last, from)
      return
    }
    const world = World.over(docs, namespace)
    const own = new ShadowDocs(docs, namespace)
    for (const stored of batch) {
      if (shadowStep(world, own, toLedgerEvent(stored), stored.metadata.actor, meta.since) === 'ended') {
        // its counts and its world go with it: asleep from its end, until another is in force
        const at = docs.checkpoint(namespace)
        if (at !== from) throw new CheckpointMovedError(namespace, from, at)
        reset(docs, namespace, ASLEEP, stored.position)
        return
      }
    }
    docs.commit(namespace, new Map([...world.changed(), ...own.changes]), last, from)
  }
}
