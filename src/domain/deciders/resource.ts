import { type Actor, holds } from '../actor.js'
import { DomainError } from '../errors.js'
import type { DataOf, EventOf } from '../events.js'
import { demand, specification } from '../specification.js'

export type ResourceEvent = EventOf<'StateObserved'>

export type ResourceCommand = {
  type: 'ObserveState'
  actor: Actor
  /** ledger time at the edge, and how far ahead of it an observer's clock may run */
  context: { now: string; maxSkewSeconds: number }
} & DataOf<'StateObserved'>

export const observerAttestsState = specification<Actor>(
  'observerAttestsState',
  'state is attested only by an observer, never by an agent',
  (actor) => {
    if (!holds(actor, 'observer'))
      return `${actor.sub} holds no observer role: only an observer reports live state`
    if (holds(actor, 'agent')) return `${actor.sub} holds the agent role, and an agent's word is not evidence`
    return null
  },
)

export const observationNotFromTheFuture = specification<{
  observedAt: string
  now: string
  maxSkewSeconds: number
}>(
  'observationNotFromTheFuture',
  'an observation is dated no later than ledger time plus the configured clock skew',
  ({ observedAt, now, maxSkewSeconds }) =>
    Date.parse(observedAt) > Date.parse(now) + maxSkewSeconds * 1000
      ? `observedAt ${observedAt} is later than ledger time ${now} plus the allowed skew of ${maxSkewSeconds} s`
      : null,
)

export type ResourceState =
  | { readonly status: 'none' }
  | { readonly status: 'observed'; readonly latest: DataOf<'StateObserved'> }

export const initialState = (): ResourceState => ({ status: 'none' })

export const decide = (command: ResourceCommand, state: ResourceState): ResourceEvent[] => {
  switch (command.type) {
    case 'ObserveState': {
      demand(observerAttestsState, command.actor)
      demand(observationNotFromTheFuture, { observedAt: command.observedAt, ...command.context }, 'invalid')
      const { environment, resource, version, digest, observedAt } = command
      const data = { environment, resource, version, digest, observedAt }
      if (state.status === 'none') return [{ type: 'StateObserved', data }]
      const { latest } = state
      // freshness is judged on the latest observation, so an older one must not replace it
      if (Date.parse(observedAt) < Date.parse(latest.observedAt)) {
        throw new DomainError(
          'conflict',
          `stale observation: ${observedAt} is older than ${latest.observedAt}`,
        )
      }
      if (sameObservation(latest, data)) return []
      return [{ type: 'StateObserved', data }]
    }
  }
}

const sameObservation = (a: DataOf<'StateObserved'>, b: DataOf<'StateObserved'>): boolean =>
  a.environment === b.environment &&
  a.resource === b.resource &&
  a.version === b.version &&
  a.digest === b.digest &&
  a.observedAt === b.observedAt

export const evolve = (_state: ResourceState, event: ResourceEvent): ResourceState => {
  switch (event.type) {
    case 'StateObserved':
      return { status: 'observed', latest: event.data }
  }
}
