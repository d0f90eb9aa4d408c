import { createHash } from 'node:crypto'
import { envelopeText, type Unlinked } from '../tree/leaf.js'
import { GENESIS_HASH, type StoredEvent } from './port.js'

/**
 * hash = SHA-256(prevHash || canonical(event)), the event being its envelope without prevHash and hash (the
 * Merkle tree's leaf). A writer that already holds the canonical text of the data passes it.
 */
export const chainHash = (prevHash: string, event: Unlinked, dataText?: string): string =>
  createHash('sha256').update(prevHash, 'utf8').update(envelopeText(event, dataText), 'utf8').digest('hex')

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

const faultOf = (event: StoredEvent, expectedPosition: number, prevHash: string): ChainFault | null =>
  event.position !== expectedPosition
    ? { kind: 'gap', position: event.position, expectedPosition }
    : event.prevHash !== prevHash
      ? { kind: 'broken-link', position: event.position }
      : chainHash(prevHash, event) !== event.hash
        ? { kind: 'bad-hash', position: event.position }
        : null

/** Checks events one at a time in position order, so a ledger of any size can be verified page by page. */
export class ChainVerifier {
  private prevHash = GENESIS_HASH
  private expectedPosition = 1
  private checked = 0
  private fault: ChainFault | null = null

  /** Checks the next event; false once the chain has broken (later events are not checked). */
  add(event: StoredEvent): boolean {
    if (this.fault) return false
    this.fault = faultOf(event, this.expectedPosition, this.prevHash)
    if (this.fault) return false
    this.prevHash = event.hash
    this.expectedPosition += 1
    this.checked += 1
    return true
  }

  report(): ChainReport {
    const head = { position: this.expectedPosition - 1, hash: this.prevHash }
    return { ok: this.fault === null, checked: this.checked, head, firstFault: this.fault }
  }
}

/** Walks events in position order and names the first that breaks the chain. */
export const verifyChain = (events: Iterable<StoredEvent>): ChainReport => {
  const verifier = new ChainVerifier()
  for (const event of events) if (!verifier.add(event)) break
  return verifier.report()
}
