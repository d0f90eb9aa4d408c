import { z } from 'zod'
import { MAX_RESOURCE_NAME_LENGTH, ResourceName } from '../domain/events.js'
import type { StoredEvent } from '../store/port.js'

/**
 * A resource named in a path: always one segment, percent-encoded as by encodeURIComponent, so a name with
 * `/`, spaces or `%` reads back as it was written (`deployment%2Fweb` for `deployment/web`).
 */
export const ResourceSegment = ResourceName.describe(
  'the resource name as one path segment, percent-encoded: deployment%2Fweb for deployment/web',
)

/** The longest path parameter any route takes: a resource name (the router refuses longer ones). */
export const MAX_PATH_PARAMETER_LENGTH = MAX_RESOURCE_NAME_LENGTH

export const ErrorBody = z
  .object({
    error: z
      .string()
      .describe('a stable code: invalid, unauthenticated, forbidden, not-found, conflict, ...'),
    message: z.string(),
    details: z.unknown(),
  })
  .describe('every error answers with this shape')

/**
 * The standard error responses of a command: the body it carries may be refused as well as the command, and
 * the service refuses commands with 503 while it is overloaded (src/http/overload.ts), holds all the commands
 * in flight it holds, or its storage is busy.
 */
export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  413: ErrorBody,
  415: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
} as const

type ErrorStatus = 400 | 401 | 403 | 404 | 429 | 503

/**
 * The error answers a read declares, only those it can give: 400 for a path or query it refuses, 401 without
 * a valid token, 403 for a role or an ownership rule it holds to, 404 for what it looks up, 429 over the
 * principal's request budget, 503 while the execution gate is closed.
 */
export const readErrors = <const S extends ErrorStatus>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((status) => [status, ErrorBody])) as Record<S, typeof ErrorBody>

/** The answers of a route that holds a connection open: too many of the caller's own (429), or in all (503). */
export const busyResponses = { 429: ErrorBody, 503: ErrorBody } as const

export const EventSummary = z.object({
  id: z.string(),
  type: z.string(),
  stream: z.string(),
  streamVersion: z.number().int(),
  position: z.number().int(),
  recordedAt: z.string(),
  hash: z.string(),
})

export const CommandResult = z.object({
  /** true when this answers a retried request (same Idempotency-Key): nothing new was appended */
  duplicate: z.boolean(),
  events: z.array(EventSummary),
})
export type CommandResult = z.infer<typeof CommandResult>

export const summarize = (events: readonly StoredEvent[]) =>
  events.map(({ id, type, stream, streamVersion, position, recordedAt, hash }) => ({
    id,
    type,
    stream,
    streamVersion,
    position,
    recordedAt,
    hash,
  }))

export const IdempotencyHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
    .optional()
    .describe(
      "the principal's key for this request: the same request again returns the first answer and appends nothing; another request with it is refused with 422",
    ),
})
