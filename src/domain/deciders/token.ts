import { type Actor, holds } from '../actor.js'
import type { EventOf } from '../events.js'
import { demand, specification } from '../specification.js'

/**
 * Token revocation: one stream holds every revocation, so the service reads them all at start. A revocation
 * narrows authority (a token that worked stops working, nothing new is allowed), so one policy admin suffices,
 * as for engaging a kill switch: waiting for a second admin would leave a stolen token working meanwhile.
 */
export type TokenEvent = EventOf<'TokenRevoked'>

export type TokenCommand = { readonly actor: Actor } & { type: 'Revoke'; jti: string; reason: string }

/** Every jti revoked so far, the latest first: a list that evolve extends without copying. */
export interface TokenState {
  readonly latest: { readonly jti: string; readonly before: TokenState } | null
}

export const initialState = (): TokenState => ({ latest: null })

export const isRevoked = (state: TokenState, jti: string): boolean => {
  for (let at = state.latest; at !== null; at = at.before.latest) if (at.jti === jti) return true
  return false
}

export const adminRevokesTokens = specification<Actor>(
  'adminRevokesTokens',
  'only a policy admin revokes a token; one is enough, since a revocation only takes authority away',
  (actor) => (holds(actor, 'policy-admin') ? null : `${actor.sub} holds no policy-admin role`),
)

export const decide = (command: TokenCommand, state: TokenState): TokenEvent[] => {
  demand(adminRevokesTokens, command.actor)
  const { jti, reason } = command
  // revoking a revoked token again changes nothing
  if (isRevoked(state, jti)) return []
  return [{ type: 'TokenRevoked', data: { jti, reason } }]
}

export const evolve = (state: TokenState, event: TokenEvent): TokenState => ({
  latest: { jti: event.data.jti, before: state },
})
