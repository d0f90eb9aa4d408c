import type { Actor } from '../actor.js'
import type { DataOf, EventOf } from '../events.js'
import { demand } from '../specification.js'
import { adminGoverns } from './governance.js'

export type InventoryEvent = EventOf<'ToolActionRegistered'>

export type InventoryCommand = { type: 'RegisterToolAction'; actor: Actor } & DataOf<'ToolActionRegistered'>

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
