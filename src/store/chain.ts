import { createHash } from 'node:crypto'
import { canonicalize } from '../domain/canonical.js'
import { GENESIS_HASH, type StoredEvent } from './port.js'

/** hash = SHA-256(prevHash || canonical(event)), the event being its envelope without prevHash and hash. */
export const chainHash = (prevHash: string, event: Omit<StoredEvent, 'prevHash' | 'hash'>): string => {
  const { id, type, stream, streamVersion, position, recordedAt, data, metadata } = event
  const body = canonicalize({ id, type, stream, streamVersion, position, recordedAt, data, metadata })
  return createHash('sha256').update(prevHash, 'utf8').update(body, 'utf8').digest('hex')
}

export type ChainFault =
  | { readonly kind: 'gap'; readonly position: number; readonly expectedPosition: number }
  | { readonly kind: 'broken-link'; readonly position: number }
  | { readonly kind: 'bad-hash'; readonly position: number }

export interface ChainReport {
  readonly ok: boolean
  readonly checked: number
  readonly head: { readonly position: number; readonly hash: string }
  /** the first event where the chain stops holding: a modified, deleted, inserted or reordered event */
  readonly firstFault: ChainFault | null
}

/** Walks events in position order and names the first that breaks the chain. */
export const verifyChain = (events: Iterable<StoredEvent>): ChainReport => {
  let prevHash = GENESIS_HASH
  let expectedPosition = 1
  let checked = 0
  for (const event of events) {
    const fault: ChainFault | null =
      event.position !== expectedPosition
        ? { kind: 'gap', position: event.position, expectedPosition }
        : event.prevHash !== prevHash
          ? { kind: 'broken-link', position: event.position }
          : chainHash(prevHash, event) !== event.hash
            ? { kind: 'bad-hash', position: event.position }
            : null
    if (fault) return { ok: false, checked, head: { position: expectedPosition - 1, hash: prevHash }, firstFault: fault }
    prevHash = event.hash
    expectedPosition += 1
    checked += 1
  }
  return { ok: true, checked, head: { position: expectedPosition - 1, hash: prevHash }, firstFault: null }
}
