// Pure mapping between the port's envelope and KurrentDB: the ledger stream's name, positions as stream revisions,
// the expected revision of a ledger append, and a stored event as a KurrentDB event and back.
import {
  type AppendStreamState,
  type EventData,
  type JSONType,
  NO_STREAM,
  type ReadRevision,
  type RecordedEvent,
  START,
} from '@kurrent/kurrentdb-client'
import type { EventMetadata } from '../../domain/events.js'
import type { StoredEvent } from '../port.js'

/** The stream that holds the ledger unless the configuration names another. */
export const DEFAULT_LEDGER_STREAM = 'governance-ledger'

/** Checks a ledger stream name: `$` names KurrentDB's system streams, which a ledger must not write. */
export const ledgerStreamName = (name: string = DEFAULT_LEDGER_STREAM): string => {
  if (name.length === 0) throw new TypeError('the ledger stream needs a name')
  if (name.startsWith('$'))
    throw new TypeError(`${name} is a KurrentDB system stream name (it starts with $)`)
  return name
}

/** The ledger stream's revision of the event at a position: positions count from 1, revisions from 0. */
export const revisionOf = (position: number): bigint => {
  if (!Number.isSafeInteger(position) || position < 1)
    throw new RangeError(`invalid ledger position ${position}`)
  return BigInt(position - 1)
}

/** The position of the ledger stream's event at a revision. */
export const positionOf = (revision: bigint): number => {
  const position = Number(revision) + 1
  if (revision < 0n || !Number.isSafeInteger(position))
    throw new RangeError(`invalid ledger revision ${revision}`)
  return position
}

/** Where a forward read starts to return the events with a position strictly greater than `after`. */
export const readFrom = (after: number): ReadRevision => (after < 1 ? START : revisionOf(after + 1))

/** What an append after the tip expects of the ledger stream: absent while the ledger is empty, else at the tip. */
export const expectedLedgerState = (tipPosition: number): AppendStreamState =>
  tipPosition === 0 ? NO_STREAM : revisionOf(tipPosition)

/** The envelope fields a KurrentDB event does not carry itself; id, type and position (its revision) it does. */
export interface LedgerMetadata {
  readonly stream: string
  readonly streamVersion: number
  readonly recordedAt: string
  readonly metadata: EventMetadata
  readonly prevHash: string
  readonly hash: string
}

/** A stored event as a KurrentDB event: its id is the envelope's, so a retried append is deduplicated. */
export const toEventData = (event: StoredEvent): EventData => {
  const { stream, streamVersion, recordedAt, metadata, prevHash, hash } = event
  const ledger: LedgerMetadata = { stream, streamVersion, recordedAt, metadata, prevHash, hash }
  return {
    id: event.id,
    contentType: 'application/json',
    type: event.type,
    // any JSON value: the client writes JSON.stringify(data)
    data: event.data as JSONType,
    metadata: { ...ledger },
  }
}

/** Thrown for an event in the ledger stream that no ledger wrote. */
export class LedgerFormatError extends Error {
  override readonly name = 'LedgerFormatError'
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null)

/**
 * A KurrentDB event of the ledger stream as a stored event. The position is the revision's, never a claim in the
 * metadata; a field that was altered fails the hash check in `verify`, which names its position.
 */
export const fromRecorded = (recorded: RecordedEvent): StoredEvent => {
  const position = positionOf(recorded.revision)
  const meta = recorded.metadata
  if (!recorded.isJson || !isRecord(meta) || !isRecord(meta.metadata)) {
    throw new LedgerFormatError(
      `the event at position ${position} of ${recorded.streamId} is not a ledger event`,
    )
  }
  const stream = text(meta.stream)
  const recordedAt = text(meta.recordedAt)
  const prevHash = text(meta.prevHash)
  const hash = text(meta.hash)
  if (stream === null || recordedAt === null || prevHash === null || hash === null) {
    throw new LedgerFormatError(
      `the event at position ${position} of ${recorded.streamId} lacks envelope fields`,
    )
  }
  return {
    id: recorded.id,
    type: recorded.type,
    stream,
    streamVersion: Number(meta.streamVersion),
    position,
    recordedAt,
    data: recorded.data,
    metadata: meta.metadata as EventMetadata,
    prevHash,
    hash,
  }
}
