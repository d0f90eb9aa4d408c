import { canonicalizeRecorded } from '../domain/canonical.js'
import type { StoredEvent } from '../store/port.js'

/** An event as the chain and the tree see it: its envelope without the two links (a StoredEvent is one). */
export type Unlinked = Omit<StoredEvent, 'prevHash' | 'hash' | 'metadata'> & { readonly metadata: unknown }

/**
 * The RFC 8785 form of an event's envelope without prevHash and hash: what the chain hash covers after the
 * previous hash, and the Merkle tree's leaf. A writer that already holds the canonical text of the data passes
 * it, so the data is not serialised twice; the keys are written in the order RFC 8785 sorts them.
 */
export const envelopeText = (
  event: Unlinked,
  dataText: string = canonicalizeRecorded(event.data),
): string => {
  const { id, type, stream, streamVersion, position, recordedAt, metadata } = event
  const s = JSON.stringify
  return (
    `{"data":${dataText},"id":${s(id)},"metadata":${canonicalizeRecorded(metadata)},"position":${s(position)},` +
    `"recordedAt":${s(recordedAt)},"stream":${s(stream)},"streamVersion":${s(streamVersion)},"type":${s(type)}}`
  )
}

/** The Merkle tree's leaf of an event: the UTF-8 bytes of its envelope text. Its index is position - 1. */
export const leafOf = (event: Unlinked): Uint8Array => Buffer.from(envelopeText(event), 'utf8')
