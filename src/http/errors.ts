import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod'
import { AuthenticationError } from '../auth/tokens.js'
import { CanonicalJsonError } from '../domain/canonical.js'
import { DomainError } from '../domain/errors.js'
import { StrictJsonError } from '../domain/strict-json.js'
import { AnswerError } from '../store/append-plan.js'
import { StoreClosedError, WrongExpectedVersionError } from '../store/port.js'

export type ErrorCode =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'idempotency-key-reused'
  | 'too-many-requests'
  | 'uri-too-long'
  | 'unavailable'
  | 'internal'

const STATUS: Record<ErrorCode, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'idempotency-key-reused': 422,
  'too-many-requests': 429,
  'uri-too-long': 414,
  unavailable: 503,
  internal: 500,
}

/** An error the API answers with as it is: `{ error, message, details }`. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: unknown = null,
    /** headers the answer carries, e.g. Retry-After */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message)
  }
  get status(): number {
    return STATUS[this.code]
  }
}

/**
 * Storage that is busy or out of reach for a moment: a lock on a SQLite file held by another process, a
 * ledger server that does not answer. The request changed nothing and may be sent again.
 */
const TRANSIENT_STORAGE_CODES = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  '57P01',
  '53300',
])

/** How long a client is told to wait before it retries a 503. */
export const RETRY_AFTER_SECONDS = 1

/** The realm of the service's bearer challenges. */
const REALM = 'governance-ledger'

/** A character an RFC 6750 attribute value may not hold: outside %x20-21 / %x23-5B / %x5D-7E. */
const OUTSIDE_ATTRIBUTE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g

/**
 * The WWW-Authenticate value of a 401 or a 403 (RFC 6750 section 3): the realm alone for a request that sent
 * no bearer token (3.1), with the error and a description for one whose token was refused or is not enough.
 * The description is the service's own message, never the token; it keeps to the characters RFC 6750
 * allows (a quote becomes ', a backslash /, anything else ?), so nothing a client sends can shape the header.
 */
export const bearerChallenge = (
  refusal: { error: 'invalid_token' | 'insufficient_scope'; description: string } | null = null,
): string => {
  const realm = `Bearer realm="${REALM}"`
  if (!refusal) return realm
  const description = refusal.description
    .slice(0, 300)
    .replaceAll('"', "'")
    .replaceAll('\\', '/')
    .replace(OUTSIDE_ATTRIBUTE, '?')
  return `${realm}, error="${refusal.error}", error_description="${description}"`
}

/**
 * What the router refuses before any route runs, in the one error shape: a path parameter beyond its length
 * (414), or a percent-encoding that decodes to nothing (400). The path is not repeated: it may be huge.
 */
export const frameworkError = (error: { code: string }, maxParameterLength: number): ApiError =>
  error.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? new ApiError('uri-too-long', `a path segment is longer than ${maxParameterLength} characters`)
    : new ApiError('invalid', 'the path holds a malformed percent-encoding')

export const notFound = (what: string): ApiError => new ApiError('not-found', `${what} not found`)
export const forbidden = (message: string): ApiError => new ApiError('forbidden', message)

/** Maps every error to the one JSON shape; bad input is never a 5xx. */
export const toApiError = (error: unknown): ApiError => {
  if (error instanceof ApiError) return error
  if (error instanceof DomainError) {
    const code = error.code === 'too-large' ? 'payload-too-large' : error.code
    return new ApiError(code, error.message, error.details ?? null)
  }
  if (error instanceof StrictJsonError) {
    const { reason, path, limit } = error
    return new ApiError('invalid', `invalid JSON body: ${error.message}`, { reason, path, limit })
  }
  if (error instanceof CanonicalJsonError) {
    const { reason, path } = error
    return new ApiError('invalid', `invalid body: ${error.message}`, { reason, path })
  }
  if (error instanceof AuthenticationError)
    return new ApiError('unauthenticated', error.message, null, {
      'www-authenticate': bearerChallenge({ error: 'invalid_token', description: error.message }),
    })
  if (error instanceof WrongExpectedVersionError) {
    return new ApiError('conflict', error.message, {
      stream: error.stream,
      expected: error.expected,
      actual: error.actual,
    })
  }
  if (error instanceof StoreClosedError) return new ApiError('unavailable', 'the ledger is closed')
  if (error instanceof AnswerError)
    return new ApiError(
      'unavailable',
      'the decision service could not answer this command: nothing was recorded (fail closed)',
    )
  if (TRANSIENT_STORAGE_CODES.has(String((error as { code?: unknown } | null)?.code)))
    return new ApiError('unavailable', 'the storage is busy or does not answer: retry in a moment')
  const fe = error as FastifyError
  if (hasZodFastifySchemaValidationErrors(fe)) {
    const where = fe.validationContext ?? 'request'
    const fields = fe.validation.map((v) => ({
      field: [
        where,
        ...String(v.instancePath ?? '')
          .split('/')
          .filter(Boolean),
      ].join('.'),
      message: v.message ?? 'invalid',
    }))
    // a free-form field over its byte size (see boundedJsonObject) is too large rather than malformed
    const tooLarge = fe.validation.some(
      (v) => (v.params as { params?: { tooLarge?: boolean } }).params?.tooLarge,
    )
    return new ApiError(
      tooLarge ? 'payload-too-large' : 'invalid',
      `invalid ${where}: ${fields.map((f) => `${f.field} ${f.message}`).join('; ')}`,
      { fields },
    )
  }
  if (isResponseSerializationError(fe))
    return new ApiError('internal', 'the response did not match its schema')
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload-too-large', fe.message)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('unsupported-media-type', fe.message)
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('invalid', fe.message)
  }
  if (
    fe instanceof SyntaxError ||
    (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500)
  ) {
    return new ApiError(
      fe.statusCode === 415
        ? 'unsupported-media-type'
        : fe.statusCode === 413
          ? 'payload-too-large'
          : 'invalid',
      fe.message,
    )
  }
  return new ApiError('internal', 'internal error')
}

export const errorHandler = (error: unknown, request: FastifyRequest, reply: FastifyReply): void => {
  const api = toApiError(error)
  if (api.status === 503) {
    // an expected answer while the service cannot vouch for itself: its reason, not a stack, per request
    request.log.warn({ reason: api.message }, 'request answered 503')
    void reply.header('retry-after', String(RETRY_AFTER_SECONDS))
  } else if (api.status >= 500) request.log.error({ err: error }, 'request failed')
  // every 401 challenges: a refused token's answer names its error in api.headers, which wins
  if (api.status === 401) void reply.header('www-authenticate', bearerChallenge())
  void reply
    .headers(api.headers)
    .code(api.status)
    .send({ error: api.code, message: api.message, details: api.details })
}
