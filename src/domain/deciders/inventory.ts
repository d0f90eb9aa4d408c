import type { Actor } from '../actor.js'
import type { DataOf, EventOf } from '../events.js'
import { demand } from '../specification.js'
import { type Approval, adminGoverns, secondAdminBehind, widens } from './governance.js'

export type InventoryEvent = EventOf<'ToolActionRegistered'>

export type InventoryCommand = {
  type: 'RegisterToolAction'
  actor: Actor
  /** who stands behind it: a registration that lowers the impact or marks it reversible needs two admins */
  approval: Approval
} & DataOf<'ToolActionRegistered'>

export type InventoryState =
  | { readonly status: 'none' }
  | { readonly status: 'registered'; readonly current: DataOf<'ToolActionRegistered'> }

export const initialState = (): InventoryState => ({ status: 'none' })

export const decide = (command: InventoryCommand, state: InventoryState): InventoryEvent[] => {
  switch (command.type) {
    case 'RegisterToolAction': {
      demand(adminGoverns, command.actor)
      const { tool, action, impact, reversible, description } = command
      const data = { tool, action, impact, reversible, description }
      // each registration is a fact in the ledger, so only a change is worth recording
      if (state.status === 'registered' && sameRegistration(state.current, data)) return []
      // judged on this stream's own state, so no concurrent change can make a lowering look harmless
      const current = state.status === 'registered' ? state.current : null
      const lowering = widens(
        { kind: 'register-tool-action', ...data },
        { ledgerEmpty: false, registered: () => current },
      )
      if (lowering !== null)
        demand(secondAdminBehind, { change: `a registration that ${lowering}`, approval: command.approval })
      return [{ type: 'ToolActionRegistered', data }]
    }
  }
}

const sameRegistration = (a: DataOf<'ToolActionRegistered'>, b: DataOf<'ToolActionRegistered'>): boolean =>
  a.tool === b.tool &&
  a.action === b.action &&
  a.impact === b.impact &&
  a.reversible === b.reversible &&
  a.description === b.description

export const evolve = (_state: InventoryState, event: InventoryEvent): InventoryState => {
  switch (event.type) {
    case 'ToolActionRegistered':
      return { status: 'registered', current: event.data }
  }
}
