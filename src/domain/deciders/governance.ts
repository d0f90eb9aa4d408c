import { type Actor, holds } from '../actor.js'
import { DomainError } from '../errors.js'
import { type EventOf, type GovernanceChange, ImpactClass } from '../events.js'
import { demand, specification } from '../specification.js'

/**
 * Governing the governor: a change that widens authority (a policy, a kill switch's release, a lowered impact
 * or an action marked reversible, a grant that reaches high or critical impact, an identity binding) waits on
 * its own stream until a second, distinct policy admin approves it. Changes that narrow authority apply at once.
 */
export type GovernanceEvent =
  | EventOf<'ChangeRequested'>
  | EventOf<'ChangeApproved'>
  | EventOf<'ChangeRefused'>

/** Who stands behind a change as it takes effect; approvedBy is null only where one admin may act alone. */
export interface Approval {
  readonly requestedBy: string
  readonly approvedBy: string | null
}

export type GovernanceCommand = { readonly actor: Actor } & (
  | {
      type: 'RequestChange'
      requestId: string
      change: GovernanceChange
      policy: Record<string, unknown> | null
      widens: string
      basedOn: { stream: string; version: number }
    }
  | { type: 'ApproveChange' }
  | { type: 'RefuseChange'; reason: string }
)

export type GovernanceState =
  | { readonly status: 'none' }
  | {
      readonly status: 'pending' | 'approved' | 'refused'
      readonly requestId: string
      readonly change: GovernanceChange
      readonly policy: Record<string, unknown> | null
      readonly requestedBy: string
      readonly basedOn: { readonly stream: string; readonly version: number }
    }

export const initialState = (): GovernanceState => ({ status: 'none' })

// ---------- who may do what ----------

export const adminGoverns = specification<Actor>(
  'adminGoverns',
  'only a policy admin changes policies, the inventory, grants, bindings, promotions and kill switches',
  (actor) => (holds(actor, 'policy-admin') ? null : `${actor.sub} holds no policy-admin role`),
)

export const secondAdminApproves = specification<{
  actor: Actor
  requestedBy: string
  change: GovernanceChange
}>(
  'secondAdminApproves',
  'a change that widens authority takes effect only when a second, distinct policy admin approves it, never one it empowers',
  ({ actor, requestedBy, change }) => {
    if (!holds(actor, 'policy-admin')) return `${actor.sub} holds no policy-admin role`
    if (actor.sub === requestedBy) {
      return `${actor.sub} requested this change: a second, distinct policy admin must approve it`
    }
    if (change.kind === 'bind-identity' && change.principal === actor.sub) {
      return `${actor.sub} would be bound by this change: another policy admin must approve it`
    }
    return null
  },
)

export const secondAdminBehind = specification<{ change: string; approval: Approval }>(
  'secondAdminBehind',
  'a change that widens authority takes effect with a second, distinct policy admin behind it',
  ({ change, approval }) =>
    approval.approvedBy === null || approval.approvedBy === approval.requestedBy
      ? `${change} needs a second, distinct policy admin to approve it`
      : null,
)

// ---------- what widens authority ----------

const rank = (impact: ImpactClass): number => ImpactClass.options.indexOf(impact)

/** What the widening rules look at beside the change itself. */
export interface WideningContext {
  /** the ledger holds no event at all: its very first policy may be published by one admin */
  readonly ledgerEmpty: boolean
  /** the registered entry of a (tool, action); null: unregistered, so critical and irreversible */
  readonly registered: (tool: string, action: string) => { impact: ImpactClass; reversible: boolean } | null
}

/** Why the change widens authority and needs a second admin; null when one admin may make it alone. */
export const widens = (change: GovernanceChange, context: WideningContext): string | null => {
  switch (change.kind) {
    case 'publish-policy':
      return context.ledgerEmpty ? null : 'a policy decides what every agent may do'
    case 'publish-shadow-policy':
      // never by one admin, not even on an empty ledger: it is the policy its promotion would put in force
      return 'a shadow policy is a policy version, decided beside the live one until it is promoted or withdrawn'
    case 'release-kill-switch':
      return 'releasing a kill switch lets what it stopped run again'
    case 'bind-identity':
      return `binding ${change.principal} to ${change.identity} lets it act as that identity`
    case 'register-tool-action': {
      const current = context.registered(change.tool, change.action) ?? {
        impact: 'critical',
        reversible: false,
      }
      const lowered = rank(change.impact) < rank(current.impact)
      const madeReversible = change.reversible && !current.reversible
      if (!lowered && !madeReversible) return null
      const name = `${change.tool}.${change.action}`
      return [
        lowered ? `lowers ${name} from '${current.impact}' to '${change.impact}' impact` : null,
        madeReversible ? `marks ${name} reversible` : null,
      ]
        .filter((s) => s !== null)
        .join(' and ')
    }
    case 'grant-scope': {
      if (change.tool === '*' || change.action === '*') {
        return 'a grant over any tool or action can reach high and critical impact'
      }
      const impact = context.registered(change.tool, change.action)?.impact ?? 'critical'
      return rank(impact) >= rank('high')
        ? `${change.tool}.${change.action} is '${impact}' impact${context.registered(change.tool, change.action) === null ? ' (unregistered)' : ''}`
        : null
    }
  }
}

// ---------- the change stream ----------

export const decide = (command: GovernanceCommand, state: GovernanceState): GovernanceEvent[] => {
  const { actor } = command
  switch (command.type) {
    case 'RequestChange': {
      demand(adminGoverns, actor)
      if (state.status !== 'none')
        throw new DomainError('conflict', `change ${command.requestId} already exists`)
      const { requestId, change, policy, widens: why, basedOn } = command
      const data = { requestId, change, policy, widens: why, requestedBy: actor.sub, basedOn }
      return [{ type: 'ChangeRequested', data }]
    }
    case 'ApproveChange': {
      const pending = requirePending(state)
      demand(secondAdminApproves, { actor, requestedBy: pending.requestedBy, change: pending.change })
      return [{ type: 'ChangeApproved', data: { requestId: pending.requestId, approvedBy: actor.sub } }]
    }
    case 'RefuseChange': {
      const pending = requirePending(state)
      demand(adminGoverns, actor)
      const { requestId } = pending
      return [{ type: 'ChangeRefused', data: { requestId, refusedBy: actor.sub, reason: command.reason } }]
    }
  }
}

const requirePending = (state: GovernanceState) => {
  if (state.status === 'none') throw new DomainError('not-found', 'the change request does not exist')
  if (state.status !== 'pending') throw new DomainError('conflict', `the change request is ${state.status}`)
  return state
}

export const evolve = (state: GovernanceState, event: GovernanceEvent): GovernanceState => {
  switch (event.type) {
    case 'ChangeRequested': {
      const { requestId, change, policy, requestedBy, basedOn } = event.data
      return { status: 'pending', requestId, change, policy, requestedBy, basedOn }
    }
    case 'ChangeApproved':
      return state.status === 'none' ? state : { ...state, status: 'approved' }
    case 'ChangeRefused':
      return state.status === 'none' ? state : { ...state, status: 'refused' }
  }
}
