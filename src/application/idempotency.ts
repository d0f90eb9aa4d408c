import { canonicalize, sha256Hex } from '../domain/canonical.js'
import type { AppendResult } from '../store/port.js'

/** A client's idempotency key as the ledger records it, and the request it was sent with. */
export interface Idempotency {
  /** the client's key scoped to the channel and the principal: the same key from another principal is another key */
  readonly idempotencyKey: string
  /** SHA-256 of the canonical JSON of the request the key was sent with */
  readonly requestDigest: string
}

/** The channels a command comes by; a key sent on one is never found on another. */
export type Channel = 'http' | 'kafka'

/**
 * A key as one principal sent it, scoped to that principal, with the digest of the request: the key is looked
 * up per principal only, and the digest recorded with it tells a retry (the same request) from a reuse
 * (another request): `answersRequest`.
 */
export const scopedIdempotency = (
  channel: Channel,
  sub: string,
  key: string,
  request: unknown,
): Idempotency => ({
  // the subject's length first, so that no subject and key together read as another subject's key
  idempotencyKey: `${channel}:${sub.length}:${sub}:${key}`,
  requestDigest: `sha256:${sha256Hex(canonicalize(request))}`,
})

/**
 * Whether a command's result answers this very request: an answer recalled under the request's key
 * (`duplicate`) that was recorded for another request does not, and nothing was appended for this one.
 */
export const answersRequest = (result: AppendResult, idempotency: Idempotency | undefined): boolean =>
  !result.duplicate ||
  idempotency === undefined ||
  result.events[0]?.metadata.requestDigest === idempotency.requestDigest
