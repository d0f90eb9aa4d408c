// Pure decisions of a group commit on KurrentDB: how many queued calls go into one ledger append, what a failed
// append means, and whether an append whose answer was lost is in the ledger after all.
import {
  AccessDeniedError,
  AppendRecordSizeExceededError,
  InvalidArgumentError,
  MaxAppendSizeExceededError,
  StreamDeletedError,
  StreamTombstonedError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client'
import type { PendingAppend } from '../append-plan.js'
import type { StoredEvent } from '../port.js'

/**
 * What one ledger append may carry, estimated. KurrentDB refuses an append over its MaxAppendSize (1 MiB by
 * default); half of it leaves room for the envelope and for the estimate's error.
 */
export const APPEND_BUDGET_BYTES = 512 * 1024

/** Bytes an event adds beyond its data: the envelope in the metadata, the id and the type. */
const ENVELOPE_BYTES = 512

/** A call's size in a ledger append, estimated from its data. */
export const estimatedBytes = (call: PendingAppend): number => {
  let bytes = 0
  for (const write of call.writes) {
    for (const event of write.events) {
      bytes += ENVELOPE_BYTES + Buffer.byteLength(event.dataText, 'utf8')
    }
  }
  return bytes
}

/** Splits the queue into the calls of the next ledger append (at least one, in order) and the rest. */
export const takeBatch = (
  queue: readonly PendingAppend[],
  budget = APPEND_BUDGET_BYTES,
): { readonly batch: PendingAppend[]; readonly rest: PendingAppend[] } => {
  let used = 0
  let count = 0
  for (const call of queue) {
    const bytes = estimatedBytes(call)
    if (count > 0 && used + bytes > budget) break
    used += bytes
    count += 1
  }
  return { batch: queue.slice(0, count), rest: queue.slice(count) }
}

/**
 * What a failed ledger append means:
 * - `conflict`: another writer moved the ledger stream first; nothing of ours was written, plan again;
 * - `refused`: the server refused the append and wrote nothing (too large, not allowed, stream deleted);
 * - `unknown`: the answer was lost (connection, deadline, leader change): the append may have been written.
 */
export type AppendFailure = 'conflict' | 'refused' | 'unknown'

export const failureOf = (error: unknown): AppendFailure => {
  if (error instanceof WrongExpectedVersionError) return 'conflict'
  const refusals = [
    MaxAppendSizeExceededError,
    AppendRecordSizeExceededError,
    AccessDeniedError,
    InvalidArgumentError,
    StreamDeletedError,
    StreamTombstonedError,
  ]
  return refusals.some((kind) => error instanceof kind) ? 'refused' : 'unknown'
}

/** Whether the ledger holds the planned events: what was read at their positions has their ids. */
export const landed = (planned: readonly StoredEvent[], found: readonly StoredEvent[]): boolean =>
  planned.length > 0 &&
  planned.length === found.length &&
  planned.every((event, i) => found[i]?.position === event.position && found[i]?.id === event.id)
