import { DomainError } from '../errors.js'
import type { DataOf, EventOf } from '../events.js'

export type ResourceEvent = EventOf<'StateObserved'>

export type ResourceCommand = { type: 'ObserveState' } & DataOf<'StateObserved'>

export type ResourceState =
  | { readonly status: 'none' }
  | { readonly status: 'observed'; readonly latest: DataOf<'StateObserved'> }

export const initialState = (): ResourceState => ({ status: 'none' })

export const decide = (command: ResourceCommand, state: ResourceState): ResourceEvent[] => {
  switch (command.type) {
    case 'ObserveState': {
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
