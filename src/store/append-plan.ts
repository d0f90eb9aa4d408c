// How a batch of append calls becomes sealed events: checked calls, expected versions, idempotency keys, the hash
// chain. Pure and adapter-free: each adapter reads what the plan depends on, then writes what it planned.
import { canonicalize } from '../domain/canonical.js'
import { uuidv7 } from '../domain/ids.js'
import { chainHash } from './chain.js'
import {
  type AnswerBatch,
  type AppendResult,
  type ExpectedVersion,
  type NewEvent,
  type StoredEvent,
  type StreamWrite,
  WrongExpectedVersionError,
} from './port.js'

/** The end of the chain, and the time the next batch is recorded at. */
export interface Tip {
  readonly position: number
  readonly hash: string
  readonly recordedAt: string
}

type Draft = Pick<StoredEvent, 'type' | 'data' | 'metadata'> & { readonly dataText: string }

export interface DraftWrite {
  readonly stream: string
  readonly expectedVersion: ExpectedVersion
  readonly events: readonly Draft[]
}

/** One append call waiting for the next group commit. */
export interface PendingAppend {
  readonly writes: readonly DraftWrite[]
  readonly key: string | null
  readonly resolve: (result: AppendResult) => void
  readonly reject: (error: unknown) => void
}

const isExpectedVersion = (v: ExpectedVersion): boolean =>
  v === 'any' || v === 'no-stream' || (Number.isSafeInteger(v) && v >= 0)

const matches = (expected: ExpectedVersion, actual: number): boolean =>
  expected === 'any' || (expected === 'no-stream' ? actual === 0 : expected === actual)

const draft = (event: NewEvent, key: string | null): Draft => {
  // the canonical form is what gets hashed, so a copy of exactly that is what gets stored
  const dataText = canonicalize(event.data)
  return { type: event.type, data: JSON.parse(dataText), dataText, metadata: metadataOf(event, key) }
}

const metadataOf = (event: NewEvent, key: string | null): Draft['metadata'] => {
  const metadata = {
    actor: event.metadata.actor,
    correlationId: event.metadata.correlationId ?? null,
    causationId: event.metadata.causationId ?? null,
    idempotencyKey: key,
  }
  // only under a key, and only when given: every other event's metadata stays as it always was
  const digest = event.metadata.requestDigest
  return key === null || digest === undefined ? metadata : { ...metadata, requestDigest: digest }
}

/** Validates a call up front, so that a bad call fails alone instead of failing its whole batch. */
export const draftWrites = (writes: readonly StreamWrite[], key: string | null): DraftWrite[] => {
  if (writes.length === 0) throw new TypeError('an append needs at least one stream write')
  return writes.map(({ stream, events, expectedVersion }) => {
    if (events.length === 0) throw new TypeError(`an append to ${stream} needs at least one event`)
    if (!isExpectedVersion(expectedVersion)) {
      throw new TypeError(`invalid expected version ${String(expectedVersion)}`)
    }
    return { stream, expectedVersion, events: events.map((event) => draft(event, key)) }
  })
}

/** The event after the tip; `recordedAtMs` is the tip's recordedAt, parsed once for the whole batch. */
const sealAfter = (
  tip: Tip,
  recordedAtMs: number,
  stream: string,
  streamVersion: number,
  event: Draft,
): StoredEvent => {
  const sealed = {
    type: event.type,
    data: event.data,
    metadata: event.metadata,
    id: uuidv7(recordedAtMs),
    stream,
    streamVersion,
    position: tip.position + 1,
    recordedAt: tip.recordedAt,
    prevHash: tip.hash,
    hash: '',
  }
  // the hash covers every field but the two links, which the chain hash leaves out
  sealed.hash = chainHash(tip.hash, sealed, event.dataText)
  return sealed
}

/** What the ledger held when the batch took the chain (a lock, or a snapshot checked by the append). */
export interface Known {
  readonly tip: Tip
  /** the committed version of every stream the batch writes to (absent: no event yet) */
  readonly versions: ReadonlyMap<string, number>
  /** what each idempotency key of the batch already appended, for the keys already stored */
  readonly keys: ReadonlyMap<string, readonly StoredEvent[]>
  /**
   * the committed version of a stream outside `versions` (the stream of an answer), where the adapter can read it
   * at once; undefined: not known now, and the plan lists the stream in `unknownStreams`
   */
  readonly versionOf?: (stream: string) => number | undefined
}

export interface KeyRange {
  readonly key: string
  readonly first: number
  readonly last: number
}

export interface Settlement {
  readonly call: PendingAppend
  readonly outcome: AppendResult | WrongExpectedVersionError
}

/** The rows one group commit writes, and what each of its calls is told once it has committed. */
export interface Plan {
  readonly settled: readonly Settlement[]
  readonly events: readonly StoredEvent[]
  /** the canonical JSON of each event's data, in the order of `events`: what was hashed, ready to store */
  readonly dataTexts: readonly string[]
  readonly keys: readonly KeyRange[]
  readonly tip: Tip
  /** the version of each stream the batch wrote to, once committed */
  readonly versions: ReadonlyMap<string, number>
  /** streams answered whose version was not known: the adapter reads them and plans again (answers abandoned) */
  readonly unknownStreams: readonly string[]
}

/**
 * The answerer could not answer an event (a fault of the rules, never of the caller's input as such): the batch
 * commits nothing, and each of its calls is tried alone so that only the one with that event fails.
 */
export class AnswerError extends Error {
  override readonly name = 'AnswerError'
  constructor(event: Pick<StoredEvent, 'type' | 'stream'>, cause: unknown) {
    super(`the decision service could not answer a ${event.type} on ${event.stream}`, { cause })
  }
}

/**
 * The events an append under `key` wrote, out of the positions its key range spans: the answers sealed among them
 * (to an event of a call that wrote several) carry a key of their own.
 */
export const appendedUnder = (key: string, events: readonly StoredEvent[]): StoredEvent[] =>
  events.filter((e) => e.metadata.idempotencyKey === key)

/** The idempotency key of the answers to an event: the same event is never answered twice. */
export const answerKey = (cause: Pick<StoredEvent, 'id'>): string => `decision:${cause.id}`

/**
 * Decides the whole batch in memory: each call appends, repeats a key, or conflicts alone. With `answers`, each event
 * a call appends is answered at once, and its answers are sealed right after it, in the same commit.
 */
export const planBatch = (
  calls: readonly PendingAppend[],
  known: Known,
  now: Date,
  answers?: AnswerBatch,
): Plan => {
  // recordedAt never goes backwards, even when the clock does
  const recordedAtMs = Math.max(now.getTime(), Date.parse(known.tip.recordedAt) || 0)
  const recordedAt = new Date(recordedAtMs).toISOString()
  let tip: Tip = { ...known.tip, recordedAt }
  const versions = new Map<string, number>()
  const keys = new Map<string, readonly StoredEvent[]>(known.keys)
  const events: StoredEvent[] = []
  const dataTexts: string[] = []
  const ranges: KeyRange[] = []
  const unknownStreams = new Set<string>()

  const committedVersion = (stream: string): number => {
    const version = versions.get(stream) ?? known.versions.get(stream) ?? known.versionOf?.(stream)
    if (version !== undefined) return version
    unknownStreams.add(stream)
    return 0
  }
  const seal = (stream: string, draft: Draft): StoredEvent => {
    const version = committedVersion(stream) + 1
    const event = sealAfter(tip, recordedAtMs, stream, version, draft)
    versions.set(stream, version)
    events.push(event)
    dataTexts.push(draft.dataText)
    tip = { ...tip, position: event.position, hash: event.hash }
    return event
  }
  const keep = (key: string, appended: readonly StoredEvent[]) => {
    const first = appended[0]
    const last = appended.at(-1)
    if (!first || !last) return
    keys.set(key, appended)
    ranges.push({ key, first: first.position, last: last.position })
  }
  /** the answers to an event, sealed after it under the key of its answers */
  const answer = (event: StoredEvent): StoredEvent[] => {
    if (!answers) return []
    const key = answerKey(event)
    let drafts: DraftWrite[]
    try {
      const writes = answers.answer(event)
      if (writes.length === 0) return []
      drafts = draftWrites(writes, key)
    } catch (cause) {
      throw new AnswerError(event, cause)
    }
    const answered = drafts.flatMap((write) => write.events.map((draft) => seal(write.stream, draft)))
    keep(key, answered)
    return answered
  }

  const apply = (call: PendingAppend): AppendResult | WrongExpectedVersionError => {
    const seen = call.key === null ? undefined : keys.get(call.key)
    if (seen) return { events: seen, duplicate: true }
    // every write's expected version is checked before anything is sealed: a call appends whole or not at all
    const ends = new Map<string, number>()
    for (const write of call.writes) {
      const version = ends.get(write.stream) ?? committedVersion(write.stream)
      if (!matches(write.expectedVersion, version)) {
        return new WrongExpectedVersionError(write.stream, write.expectedVersion, version)
      }
      ends.set(write.stream, version + write.events.length)
    }
    const appended: StoredEvent[] = []
    const answered: StoredEvent[] = []
    for (const write of call.writes) {
      for (const draft of write.events) {
        const event = seal(write.stream, draft)
        appended.push(event)
        answered.push(...answer(event))
      }
    }
    if (call.key !== null) keep(call.key, appended)
    return { events: appended, duplicate: false, answers: answered }
  }

  const settled = calls.map((call) => ({ call, outcome: apply(call) }))
  return { settled, events, dataTexts, keys: ranges, tip, versions, unknownStreams: [...unknownStreams] }
}

/** Tells each call of a committed batch what it appended, or why it conflicted. */
export const settle = (settled: readonly Settlement[]): void => {
  for (const { call, outcome } of settled) {
    if (outcome instanceof Error) call.reject(outcome)
    else call.resolve(outcome)
  }
}

/** The streams a batch writes to, each once. */
export const streamsOf = (calls: readonly PendingAppend[]): string[] => [
  ...new Set(calls.flatMap((call) => call.writes.map((write) => write.stream))),
]

/** The idempotency keys a batch carries. */
export const keysOf = (calls: readonly PendingAppend[]): string[] =>
  calls.flatMap((call) => (call.key === null ? [] : [call.key]))
