import type { Actor } from '../actor.js'
import { DomainError } from '../errors.js'
import type { EventOf, KillSwitchRef } from '../events.js'
import { demand } from '../specification.js'
import { type Approval, adminGoverns, secondAdminBehind } from './governance.js'

export type KillSwitchEvent = EventOf<'KillSwitchEngaged'> | EventOf<'KillSwitchReleased'>

export type KillSwitchCommand = { readonly actor: Actor } & (
  | ({ type: 'Engage'; reason: string } & KillSwitchRef)
  /** a release widens authority: it takes the second admin's approval */
  | { type: 'Release'; reason: string; approval: Approval }
)

export type KillSwitchState =
  | { readonly status: 'released' }
  | ({ readonly status: 'engaged'; readonly reason: string } & Readonly<KillSwitchRef>)

export const initialState = (): KillSwitchState => ({ status: 'released' })

export const decide = (command: KillSwitchCommand, state: KillSwitchState): KillSwitchEvent[] => {
  demand(adminGoverns, command.actor)
  switch (command.type) {
    case 'Engage': {
      const { scope, target, reason } = command
      // the global switch stops everything; every other switch names what it stops
      if (scope === 'global' && target !== null)
        throw new DomainError('invalid', 'the global kill switch has no target')
      if (scope !== 'global' && target === null)
        throw new DomainError('invalid', `a ${scope} kill switch needs a target`)
      if (state.status === 'engaged') throw new DomainError('conflict', 'the kill switch is already engaged')
      return [{ type: 'KillSwitchEngaged', data: { scope, target, reason } }]
    }
    case 'Release': {
      if (state.status !== 'engaged') throw new DomainError('conflict', 'the kill switch is not engaged')
      demand(secondAdminBehind, { change: 'releasing a kill switch', approval: command.approval })
      const { scope, target } = state
      return [{ type: 'KillSwitchReleased', data: { scope, target, reason: command.reason } }]
    }
  }
}

export const evolve = (_state: KillSwitchState, event: KillSwitchEvent): KillSwitchState => {
  switch (event.type) {
    case 'KillSwitchEngaged': {
      const { scope, target, reason } = event.data
      return { status: 'engaged', scope, target, reason }
    }
    case 'KillSwitchReleased':
      return { status: 'released' }
  }
}
