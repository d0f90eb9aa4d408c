import type { Actor } from '../actor.js'
import { DomainError } from '../errors.js'
import type { DataOf, EventOf } from '../events.js'
import { demand } from '../specification.js'
import { adminGoverns } from './governance.js'

export type GrantEvent = EventOf<'ScopeGranted'> | EventOf<'ScopeRevoked'>

export type GrantCommand = { readonly actor: Actor } & (
  | ({ type: 'GrantScope' } & DataOf<'ScopeGranted'>)
  | { type: 'RevokeScope'; reason: string }
)

export type GrantState =
  | { readonly status: 'none' }
  | { readonly status: 'active'; readonly grant: DataOf<'ScopeGranted'> }
  | { readonly status: 'revoked'; readonly grant: DataOf<'ScopeGranted'>; readonly reason: string }

export const initialState = (): GrantState => ({ status: 'none' })

export const decide = (command: GrantCommand, state: GrantState): GrantEvent[] => {
  demand(adminGoverns, command.actor)
  switch (command.type) {
    case 'GrantScope': {
      if (state.status !== 'none')
        throw new DomainError('conflict', `grant ${state.grant.grantId} already exists`)
      const { grantId, identity, tool, action, resourcePattern, environment, via } = command
      return [
        {
          type: 'ScopeGranted',
          data: { grantId, identity, tool, action, resourcePattern, environment, via },
        },
      ]
    }
    case 'RevokeScope': {
      if (state.status === 'none') throw new DomainError('not-found', 'the grant does not exist')
      if (state.status === 'revoked') {
        throw new DomainError('conflict', `grant ${state.grant.grantId} is already revoked`)
      }
      return [{ type: 'ScopeRevoked', data: { grantId: state.grant.grantId, reason: command.reason } }]
    }
  }
}

export const evolve = (state: GrantState, event: GrantEvent): GrantState => {
  switch (event.type) {
    case 'ScopeGranted':
      return { status: 'active', grant: event.data }
    case 'ScopeRevoked':
      return state.status === 'active'
        ? { status: 'revoked', grant: state.grant, reason: event.data.reason }
        : state
  }
}
