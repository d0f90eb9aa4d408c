/** An answer of the API that was not a success, in its one error shape `{ error, message, details }`. */
export class GovernanceApiError extends Error {
  override readonly name = 'GovernanceApiError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    /** the answer's Retry-After in seconds (a 429 always has one), null without one */
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message)
  }

  /** Whether asking again later may succeed: the service was unavailable or overloaded. */
  get retryable(): boolean {
    return this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504
  }

  /**
   * A write that lost an optimistic-concurrency race (another writer, such as the decision service, appended
   * to the same stream first): nothing was appended, and the same command may simply be sent again.
   */
  get concurrencyConflict(): boolean {
    const d = this.details as { stream?: unknown; expected?: unknown; actual?: unknown } | null
    return (
      this.status === 409 &&
      typeof d?.stream === 'string' &&
      d.actual !== undefined &&
      d.expected !== undefined
    )
  }

  /** Reads an error response; a body that is not the error shape still gives a usable error. */
  static async from(response: Response): Promise<GovernanceApiError> {
    const text = await response.text().catch(() => '')
    const retryAfter = /^\d{1,9}$/.test(response.headers.get('retry-after') ?? '')
      ? Number(response.headers.get('retry-after'))
      : null
    try {
      const body = JSON.parse(text) as { error?: unknown; message?: unknown; details?: unknown }
      if (typeof body.error === 'string' && typeof body.message === 'string') {
        return new GovernanceApiError(
          response.status,
          body.error,
          body.message,
          body.details ?? null,
          retryAfter,
        )
      }
    } catch {
      // not JSON: fall through to a generic error that keeps the status
    }
    return new GovernanceApiError(
      response.status,
      `http-${response.status}`,
      `${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`,
      null,
      retryAfter,
    )
  }
}
