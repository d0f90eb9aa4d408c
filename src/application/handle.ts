import type { Decider } from '../domain/deciders/index.js'
import { DomainError } from '../domain/errors.js'
import { DomainEvent, toLedgerEvent } from '../domain/events.js'
import { eventLimitViolation } from '../domain/limits.js'
import {
  type AppendResult,
  type EventStore,
  type NewEvent,
  type StoredEvent,
  WrongExpectedVersionError,
} from '../store/port.js'
import { streamPages } from '../store/stream-pages.js'

export interface CommandMetadata {
  /** the authenticated principal */
  readonly actor: string
  readonly correlationId?: string | null
  readonly causationId?: string | null
  readonly idempotencyKey?: string
  /** recorded with the events under the idempotency key, so a retry can be told from a reuse */
  readonly requestDigest?: string
}

/** Streams whose folded state each store keeps in memory: the busiest ones; any other is folded again when read. */
const CACHED_STATES = 1_000
/**
 * Only a stream of at least this many events is kept: the long ones (an agent's, an identity's) are what folding
 * again costs; a proposal's is short, and its state holds its plan and evidence, which are not held in memory.
 */
const CACHED_FROM_VERSION = 16

interface Folded {
  readonly decider: unknown
  readonly state: unknown
  readonly version: number
}

/**
 * The state of recently loaded streams by store, at the version they were folded to. A stream only grows and its
 * events never change, so a load folds only the events after that version onto the state kept.
 */
const folded = new WeakMap<EventStore, Map<string, Folded>>()

/** Loads a stream's state by folding its events through the decider's evolve, a page at a time. */
export const loadState = async <C, S, E extends DomainEvent>(
  store: EventStore,
  decider: Decider<C, S, E>,
  stream: string,
): Promise<{ state: S; version: number }> => {
  let kept = folded.get(store)
  if (!kept) {
    kept = new Map()
    folded.set(store, kept)
  }
  const known = kept.get(stream)
  const from = known?.decider === decider ? known : null
  let state = from ? (from.state as S) : decider.initialState()
  let version = from?.version ?? 0
  for await (const page of streamPages(store, stream, version + 1)) {
    state = foldState(decider, page, state)
    version = page.at(-1)?.streamVersion ?? version
  }
  // most recently used last; the least recently used dropped past the bound
  kept.delete(stream)
  if (version >= CACHED_FROM_VERSION) kept.set(stream, { decider, state, version })
  if (kept.size > CACHED_STATES) kept.delete(kept.keys().next().value as string)
  return { state, version }
}

/** A stream's state from its events, folded through the decider's evolve (from `initial`, else from the start). */
export const foldState = <C, S, E extends DomainEvent>(
  decider: Decider<C, S, E>,
  stored: readonly StoredEvent[],
  initial: S = decider.initialState(),
): S => stored.reduce((s, e) => decider.evolve(s, toLedgerEvent(e) as unknown as E), initial)

/**
 * The events as the model reads them back: an event its own schema refuses never reaches the ledger, where
 * every consumer would stop on it. A decider that produces one has a bug; the command fails instead. An event
 * beyond its type's limits (limits.ts) is refused as the caller's: 413 for its size, 400 for the rest.
 */
export const modelled = <E extends DomainEvent>(events: readonly E[]): E[] =>
  events.map((event) => {
    const parsed = DomainEvent.safeParse(event)
    if (!parsed.success) {
      throw new Error(`refusing to append a ${event.type} the model cannot read: ${parsed.error.message}`)
    }
    const violation = eventLimitViolation(event)
    if (violation) {
      throw new DomainError(violation.tooLarge ? 'too-large' : 'invalid', violation.message, {
        type: event.type,
        limit: violation.limit,
      })
    }
    return event
  })

/** How often a command is decided again when another writer appended to its stream in the meantime. */
const CONFLICT_RETRIES = 5

/** A command, or how to build it from the stream's state (reading what its rules need beside it). */
export type CommandOf<C, S> = C | ((state: S) => C | Promise<C>)

/**
 * Runs one command against one stream: load, decide, append at the version it was decided on, so a
 * concurrent writer (often the decision service adding a verdict) makes the append fail with
 * WrongExpectedVersionError instead of deciding on stale state; the command is then decided again on the new
 * state, a few times, before the conflict reaches the caller.
 */
export const handle = async <C, S, E extends DomainEvent>(
  store: EventStore,
  decider: Decider<C, S, E>,
  stream: string,
  command: CommandOf<C, S>,
  metadata: CommandMetadata,
): Promise<AppendResult> => {
  const { idempotencyKey, ...meta } = metadata
  for (let attempt = 0; ; attempt += 1) {
    // a retried command returns what it did the first time, even where deciding again would now refuse it
    const recalled = idempotencyKey === undefined ? null : await store.recall(idempotencyKey)
    if (recalled) return recalled
    const { state, version } = await loadState(store, decider, stream)
    const decided =
      typeof command === 'function' ? await (command as (s: S) => C | Promise<C>)(state) : command
    const events = decider.decide(decided, state)
    if (events.length === 0) return { events: [], duplicate: false }
    const toAppend: NewEvent[] = modelled(events).map((e) => ({ type: e.type, data: e.data, metadata: meta }))
    try {
      return await store.append(
        stream,
        toAppend,
        version,
        idempotencyKey === undefined ? {} : { idempotencyKey },
      )
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError) || attempt >= CONFLICT_RETRIES) throw error
    }
  }
}
