/**
 * `unavailable`: the service cannot judge the command now (retry later); nothing was done. `too-large`: what
 * the command would record is larger than its event type's limit.
 */
export type DomainErrorCode = 'invalid' | 'not-found' | 'conflict' | 'forbidden' | 'unavailable' | 'too-large'

/** A refused command; the HTTP layer maps the code to a status. */
export class DomainError extends Error {
  override readonly name = 'DomainError'
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message)
  }
}
