import type { FastifyReply } from 'fastify'
import { ApiError } from './errors.js'

export interface SlotLimits {
  /** what the slots hold, for the error message: 'verdict streams', 'verdict waits' */
  readonly what: string
  readonly perPrincipal: number
  readonly total: number
  /** told to a refused client as Retry-After */
  readonly retryAfterSeconds: number
}

/**
 * Counts the connections a route holds open, per principal and in all. take() refuses beyond either cap
 * (429 for the principal's own, 503 for the total, both with Retry-After); the release it returns frees
 * the slot once, however often it is called.
 */
export class ConnectionSlots {
  private readonly byPrincipal = new Map<string, number>()
  private count = 0

  constructor(private readonly limits: SlotLimits) {}

  /** open connections, in all or of one principal */
  open(principal?: string): number {
    return principal === undefined ? this.count : (this.byPrincipal.get(principal) ?? 0)
  }

  take(principal: string): () => void {
    const { what, perPrincipal, total, retryAfterSeconds } = this.limits
    const headers = { 'retry-after': String(retryAfterSeconds) }
    const own = this.open(principal)
    if (own >= perPrincipal) {
      throw new ApiError(
        'too-many-requests',
        `${principal} already holds ${own} open ${what}, the most one principal may hold: close one first`,
        { limit: perPrincipal, open: own },
        headers,
      )
    }
    if (this.count >= total) {
      throw new ApiError(
        'unavailable',
        `the service holds ${this.count} open ${what}, the most it holds: try again later`,
        { limit: total },
        headers,
      )
    }
    this.byPrincipal.set(principal, own + 1)
    this.count += 1
    let held = true
    return () => {
      if (!held) return
      held = false
      this.count -= 1
      const left = (this.byPrincipal.get(principal) ?? 1) - 1
      if (left > 0) this.byPrincipal.set(principal, left)
      else this.byPrincipal.delete(principal)
    }
  }
}

/** Aborts once the client went away before its answer was sent. */
export const clientGone = (reply: FastifyReply): AbortSignal => {
  const gone = new AbortController()
  const raw = reply.raw
  const onClose = () => {
    if (!raw.writableFinished) gone.abort()
  }
  raw.once('close', onClose)
  return gone.signal
}
