import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { govern } from '../application/govern.js'
import { type CommandMetadata, type CommandOf, handle } from '../application/handle.js'
import type { Actor } from '../domain/actor.js'
import { canonicalize, sha256Hex } from '../domain/canonical.js'
import type { Decider } from '../domain/deciders/index.js'
import type { DomainEvent, GovernanceChange, PolicyDraft } from '../domain/events.js'
import type { AppendResult, EventStore } from '../store/port.js'
import { principalOf } from './auth.js'
import { ApiError } from './errors.js'
import { CommandResult, summarize } from './schemas.js'

export interface Commands {
  /**
   * Runs a command for the authenticated principal: the event's actor is always the token's subject,
   * never a name from the body, and the Idempotency-Key header (scoped to the principal, bound to the
   * request) makes a retry return the first answer and a reuse for another request a 422.
   */
  run<C, S, E extends DomainEvent>(
    request: FastifyRequest,
    decider: Decider<C, S, E>,
    stream: string,
    command: CommandOf<C, S>,
  ): Promise<CommandResult>
}

/** The authenticated principal a command carries: everything the rules know of who asks. */
export const actorOf = (request: FastifyRequest): Actor => principalOf(request)

/** A command's metadata beside its actor: the request id to correlate, the scoped key and the request's digest. */
export const optionsOf = (request: FastifyRequest): Omit<CommandMetadata, 'actor'> => ({
  correlationId: request.id,
  ...idempotencyOf(request),
})

/** What a command answers, once it is known to answer this very request (see `sameRequest`). */
export const answerOf = (request: FastifyRequest, result: AppendResult): CommandResult => {
  sameRequest(request, result)
  return { duplicate: result.duplicate, events: summarize(result.events) }
}

declare module 'fastify' {
  interface FastifyInstance {
    commands: Commands
  }
}

/** An Idempotency-Key header as the ledger records it, and the request it was sent with. */
export interface Idempotency {
  /** the client's key scoped to the principal: the same key from another principal is another key */
  readonly idempotencyKey: string
  /** SHA-256 of the method, the concrete path (no query string) and the canonical JSON of the body */
  readonly requestDigest: string
}

/**
 * The request's Idempotency-Key, undefined without one; spread it into a command's metadata. The key is
 * looked up per principal only, so the same key sent to another path or with another body is found, and the
 * digest recorded with it tells a retry (the same request) from a reuse (another request): `sameRequest`.
 */
export const idempotencyOf = (request: FastifyRequest): Idempotency | undefined => {
  const key = request.headers['idempotency-key']
  if (typeof key !== 'string' || key === '') return undefined
  const path = request.url.split('?', 1)[0]
  const sent = canonicalize({ method: request.method, path, body: request.body ?? null })
  return {
    // the subject's length first, so that no subject and key together read as another subject's key
    idempotencyKey: `http:${principalOf(request).sub.length}:${principalOf(request).sub}:${key}`,
    requestDigest: `sha256:${sha256Hex(sent)}`,
  }
}

/**
 * Passes a command's result through once it is known to answer this very request: an answer recalled under
 * the request's Idempotency-Key (`duplicate`) that was recorded for another request is a 422, and nothing was
 * appended for this one.
 */
export const sameRequest = (request: FastifyRequest, result: AppendResult): AppendResult => {
  if (!result.duplicate) return result
  const idempotency = idempotencyOf(request)
  if (idempotency === undefined) return result
  if (result.events[0]?.metadata.requestDigest === idempotency.requestDigest) return result
  throw new ApiError(
    'idempotency-key-reused',
    'this Idempotency-Key was already used for a different request (another path or another body); nothing was done: send a new key with a new request',
    { idempotencyKey: request.headers['idempotency-key'] },
  )
}

export const commandsPlugin = fp(async (app: FastifyInstance, { store }: { store: EventStore }) => {
  app.decorate('commands', {
    async run(request, decider, stream, command) {
      const result = await handle(store, decider, stream, command, {
        actor: actorOf(request).sub,
        ...optionsOf(request),
      })
      return answerOf(request, result)
    },
  } satisfies Commands)
})

/** What a governance command answers: applied (201, or 200 for a PUT), or pending a second admin (202). */
export const GovernedResult = CommandResult.extend({
  status: z.enum(['applied', 'pending']),
  requestId: z
    .string()
    .nullable()
    .describe('the change request a second policy admin approves, when pending'),
  widens: z.string().nullable().describe('why it needs a second policy admin'),
})

/** Runs a governance change for the request's principal and says how to answer it. */
export const governed = async (
  request: FastifyRequest,
  change: GovernanceChange,
  draft: PolicyDraft | null = null,
): Promise<z.infer<typeof GovernedResult>> => {
  const outcome = await govern(
    request.server.runtime.store,
    actorOf(request),
    change,
    draft,
    optionsOf(request),
  )
  const base = answerOf(request, outcome.result)
  return outcome.status === 'applied'
    ? { ...base, status: 'applied', requestId: null, widens: null }
    : { ...base, status: 'pending', requestId: outcome.requestId, widens: outcome.widens }
}
