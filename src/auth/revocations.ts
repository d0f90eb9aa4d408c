import { streams, TokenRevoked } from '../domain/events.js'
import type { EventStore, StoredEvent } from '../store/port.js'

/** Slack for the clocks of the ledger and of the verifier to differ. */
const CLOCK_MARGIN_MS = 5 * 60_000

/**
 * The token ids a policy admin revoked. A revocation is kept for the longest a token may live after it was
 * recorded: the token it names was issued before it (iat is in the past), and the verifier refuses every token
 * older than AUTH_MAX_TOKEN_LIFETIME, so later the revocation can change nothing and is forgotten.
 */
export class RevokedTokens {
  /** jti -> until when (ms) its revocation matters */
  private readonly until = new Map<string, number>()
  /** why revocations may be missing now (their feed has stopped), or null: no token can be trusted then */
  unsureBecause: () => string | null = () => null

  constructor(
    /** AUTH_MAX_TOKEN_LIFETIME, in seconds */
    private readonly maxLifetimeSeconds: number,
  ) {}

  /** Records a revocation the ledger holds, as of when it was recorded. */
  revoke(jti: string, recordedAt: string): void {
    const at = Date.parse(recordedAt)
    // a time that does not parse keeps the revocation for good
    const until = Number.isFinite(at)
      ? at + this.maxLifetimeSeconds * 1000 + CLOCK_MARGIN_MS
      : Number.POSITIVE_INFINITY
    if (until > (this.until.get(jti) ?? Number.NEGATIVE_INFINITY)) this.until.set(jti, until)
  }

  has(jti: string, now: number): boolean {
    const until = this.until.get(jti)
    if (until === undefined) return false
    if (until > now) return true
    this.until.delete(jti)
    return false
  }

  /** Records the revocations among ledger events, and forgets those that can no longer change anything. */
  record(events: readonly StoredEvent[], now: number = Date.now()): void {
    let found = false
    for (const event of events) {
      if (event.type !== TokenRevoked.shape.type.value) continue
      this.revoke(TokenRevoked.shape.data.parse(event.data).jti, event.recordedAt)
      found = true
    }
    if (found) for (const [jti, until] of this.until) if (until <= now) this.until.delete(jti)
  }

  get size(): number {
    return this.until.size
  }
}

/**
 * Keeps `revoked` up to date: reads every revocation the ledger holds now, and records those in each batch
 * that `follow` delivers from then on. Read after the position the batches start from, so none is missed.
 */
export const followRevocations = async (
  store: EventStore,
  revoked: RevokedTokens,
  follow: (listener: (batch: readonly StoredEvent[]) => void) => void,
): Promise<void> => {
  follow((batch) => revoked.record(batch))
  revoked.record(await store.readStream(streams.tokenRevocations()))
}
