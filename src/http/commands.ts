import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { govern } from '../application/govern.js'
import { type CommandMetadata, type CommandOf, handle } from '../application/handle.js'
import type { Actor } from '../domain/actor.js'
import type { Decider } from '../domain/deciders/index.js'
import type { DomainEvent, GovernanceChange, PolicyDraft } from '../domain/events.js'
import type { EventStore } from '../store/port.js'
import { principalOf } from './auth.js'
import { CommandResult, summarize } from './schemas.js'

export interface Commands {
  /**
   * Runs a command for the authenticated principal: the event's actor is always the token's subject,
   * never a name from the body, and the Idempotency-Key header (scoped to the principal and the route)
   * makes a retry return the first answer.
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

/** A command's metadata beside its actor: the request id to correlate, and the scoped idempotency key. */
export const optionsOf = (request: FastifyRequest): Omit<CommandMetadata, 'actor'> => {
  const idempotencyKey = idempotencyKeyOf(request)
  return { correlationId: request.id, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) }
}

declare module 'fastify' {
  interface FastifyInstance {
    commands: Commands
  }
}

export const idempotencyKeyOf = (request: FastifyRequest): string | undefined => {
  const key = request.headers['idempotency-key']
  if (typeof key !== 'string' || key === '') return undefined
  return `http:${principalOf(request).sub}:${request.method} ${request.routeOptions.url}:${key}`
}

export const commandsPlugin = fp(async (app: FastifyInstance, { store }: { store: EventStore }) => {
  app.decorate('commands', {
    async run(request, decider, stream, command) {
      const result = await handle(store, decider, stream, command, {
        actor: actorOf(request).sub,
        ...optionsOf(request),
      })
      return { duplicate: result.duplicate, events: summarize(result.events) }
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
  const base = { duplicate: outcome.result.duplicate, events: summarize(outcome.result.events) }
  return outcome.status === 'applied'
    ? { ...base, status: 'applied', requestId: null, widens: null }
    : { ...base, status: 'pending', requestId: outcome.requestId, widens: outcome.widens }
}
