import type { Actor } from '../actor.js'
import { DomainError } from '../errors.js'
import type { BindingRole, EventOf } from '../events.js'
import { demand } from '../specification.js'
import { type Approval, adminGoverns, secondAdminBehind } from './governance.js'

/**
 * The principals bound to one executing identity: the agents that may act through it and the executors that
 * may run as it. Binding widens authority, so it takes two policy admins; unbinding takes one.
 */
export type BindingEvent = EventOf<'IdentityBound'> | EventOf<'IdentityUnbound'>

export type BindingCommand = { readonly actor: Actor } & (
  | { type: 'Bind'; principal: string; role: BindingRole; identity: string; approval: Approval }
  | { type: 'Unbind'; principal: string; role: BindingRole; identity: string; reason: string }
)

export interface BindingState {
  readonly agent: readonly string[]
  readonly executor: readonly string[]
}

export const initialState = (): BindingState => ({ agent: [], executor: [] })

export const decide = (command: BindingCommand, state: BindingState): BindingEvent[] => {
  const { principal, role, identity } = command
  switch (command.type) {
    case 'Bind': {
      demand(adminGoverns, command.actor)
      demand(secondAdminBehind, { change: `binding ${principal} to ${identity}`, approval: command.approval })
      const { requestedBy, approvedBy } = command.approval
      // approvedBy is never null past the specification; the check tells the type so
      if (approvedBy === null || state[role].includes(principal)) return []
      return [{ type: 'IdentityBound', data: { principal, role, identity, requestedBy, approvedBy } }]
    }
    case 'Unbind': {
      demand(adminGoverns, command.actor)
      if (!state[role].includes(principal)) {
        throw new DomainError('not-found', `${principal} is not bound to ${identity} as ${role}`)
      }
      return [{ type: 'IdentityUnbound', data: { principal, role, identity, reason: command.reason } }]
    }
  }
}

export const evolve = (state: BindingState, event: BindingEvent): BindingState => {
  const { principal, role } = event.data
  const others = state[role].filter((p) => p !== principal)
  return { ...state, [role]: event.type === 'IdentityBound' ? [...others, principal] : others }
}
