import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { govern } from '../application/govern.js'
import { type CommandMetadata, type CommandOf, handle } from '../application/handle.js'
import { answersRequest, type Idempotency, scopedIdempotency } from '../application/idempotency.js'
import type { Actor } from '../domain/actor.js'
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

/**
 * The request's Idempotency-Key, undefined without one; spread it into a command's metadata. The request it
 * is bound to is the method, the concrete path (no query string) and the body, so the same key sent to another
 * path or with another body is found and told apart: `sameRequest`.
 */
export const idempotencyOf = (request: FastifyRequest): Idempotency | undefined => {
  const key = request.headers['idempotency-key']
  if (typeof key !== 'string' || key === '') return undefined
  const path = request.url.split('?', 1)[0]
  return scopedIdempotency('http', principalOf(request).sub, key, {
    method: request.method,
    path,
    body: request.body ?? null,
  })
}

/**
 * Passes a command's result through once it is known to answer this very request: an answer recalled under
 * the request's Idempotency-Key that was recorded for another request is a 422, and nothing was appended.
 */
export const sameRequest = (request: FastifyRequest, result: AppendResult): AppendResult => {
  if (answersRequest(result, idempotencyOf(request))) return result
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
