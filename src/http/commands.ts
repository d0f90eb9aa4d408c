import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { handle } from '../application/handle.js'
import type { Decider } from '../domain/deciders/index.js'
import type { DomainEvent } from '../domain/events.js'
import type { EventStore } from '../store/port.js'
import { principalOf } from './auth.js'
import { type CommandResult, summarize } from './schemas.js'

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
    command: C,
  ): Promise<CommandResult>
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
      const idempotencyKey = idempotencyKeyOf(request)
      const result = await handle(store, decider, stream, command, {
        actor: principalOf(request).sub,
        correlationId: request.id,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      })
      return { duplicate: result.duplicate, events: summarize(result.events) }
    },
  } satisfies Commands)
})
