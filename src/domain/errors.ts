export type DomainErrorCode = 'invalid' | 'not-found' | 'conflict' | 'forbidden'

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
