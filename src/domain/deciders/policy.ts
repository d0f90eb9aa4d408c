import type { Actor } from '../actor.js'
import { canonicalizeRecorded } from '../canonical.js'
import { DomainError } from '../errors.js'
import type { DataOf, EventOf, PolicyDraft } from '../events.js'
import { demand } from '../specification.js'
import { type Approval, adminGoverns, secondAdminBehind } from './governance.js'

export type PolicyEvent =
  | EventOf<'PolicyPublished'>
  | EventOf<'ShadowPolicyPublished'>
  | EventOf<'ShadowPolicyWithdrawn'>
  | EventOf<'ShadowPolicyPromoted'>

export type PolicyCommand =
  | {
      type: 'PublishPolicy'
      actor: Actor
      policy: PolicyDraft
      /** who published it and, but for the first policy of an empty ledger, the second admin who approved it */
      approval: Approval
    }
  | {
      /** the next version, decided beside the live policy and never enforced; always two admins */
      type: 'PublishShadowPolicy'
      actor: Actor
      policy: PolicyDraft
      approval: Approval
    }
  | { type: 'WithdrawShadowPolicy'; actor: Actor; reason: string }

export type ShadowPolicy = DataOf<'ShadowPolicyPublished'>

export type PolicyState =
  | { readonly status: 'none'; readonly shadow: ShadowPolicy | null }
  | {
      readonly status: 'published'
      readonly current: DataOf<'PolicyPublished'>
      readonly shadow: ShadowPolicy | null
    }

export const initialState = (): PolicyState => ({ status: 'none', shadow: null })

export const decide = (command: PolicyCommand, state: PolicyState): PolicyEvent[] => {
  demand(adminGoverns, command.actor)
  switch (command.type) {
    case 'PublishPolicy': {
      const { approval } = command
      // only the first policy of an empty ledger is published by one admin: the application says when
      if (state.status === 'published') demand(secondAdminBehind, { change: 'a policy', approval })
      const { requestedBy, approvedBy } = approval
      const published = publish({ ...command.policy, publishedBy: requestedBy, approvedBy }, state)
      return [...published, ...shadowEndedBy(published, state.shadow)]
    }
    case 'PublishShadowPolicy': {
      // a shadow policy narrows nothing and widens nothing, yet it is a policy version: two admins, always
      demand(secondAdminBehind, { change: 'a shadow policy', approval: command.approval })
      const { requestedBy, approvedBy } = command.approval
      return publishShadow({ ...command.policy, publishedBy: requestedBy, approvedBy }, state)
    }
    case 'WithdrawShadowPolicy': {
      if (state.shadow === null) throw new DomainError('not-found', 'no shadow policy is in force')
      return [
        { type: 'ShadowPolicyWithdrawn', data: { version: state.shadow.version, reason: command.reason } },
      ]
    }
  }
}

const nextVersion = (state: PolicyState): number =>
  (state.status === 'published' ? state.current.version : 0) + 1

const outOfSequence = (version: number, expected: number) =>
  new DomainError('conflict', `policy version ${version} is out of sequence: expected ${expected}`, {
    expected,
  })

const publish = (policy: DataOf<'PolicyPublished'>, state: PolicyState): PolicyEvent[] => {
  if (policy.owner.trim() === '') throw new DomainError('invalid', 'a policy needs an owner')
  const current = state.status === 'published' ? state.current : null
  // publishing the current version again, unchanged, is a retry, whoever published and approved it
  if (current !== null && sameTerms(current, policy)) return []
  const expected = nextVersion(state)
  if (policy.version !== expected) throw outOfSequence(policy.version, expected)
  return [{ type: 'PolicyPublished', data: policy }]
}

/**
 * The shadow policy is the next version, so that promoting it is publishing that version live. One at a time:
 * another needs the one in shadow withdrawn first.
 */
const publishShadow = (policy: ShadowPolicy, state: PolicyState): PolicyEvent[] => {
  if (policy.owner.trim() === '') throw new DomainError('invalid', 'a policy needs an owner')
  if (state.shadow !== null) {
    if (sameTerms(state.shadow, policy)) return []
    throw new DomainError(
      'conflict',
      `policy version ${state.shadow.version} is in shadow already: withdraw it before another`,
      { shadowVersion: state.shadow.version },
    )
  }
  const expected = nextVersion(state)
  if (policy.version !== expected) throw outOfSequence(policy.version, expected)
  return [{ type: 'ShadowPolicyPublished', data: policy }]
}

/** A live policy of the shadow's version ends the shadow: promoted when its terms are the shadow's, else withdrawn. */
const shadowEndedBy = (published: readonly PolicyEvent[], shadow: ShadowPolicy | null): PolicyEvent[] => {
  const live = published.find((e) => e.type === 'PolicyPublished')
  if (shadow === null || live === undefined || live.data.version < shadow.version) return []
  const { version } = shadow
  if (sameTerms(shadow, live.data)) return [{ type: 'ShadowPolicyPromoted', data: { version } }]
  const reason = `policy version ${live.data.version} was published live with other terms`
  return [{ type: 'ShadowPolicyWithdrawn', data: { version, reason } }]
}

export const evolve = (state: PolicyState, event: PolicyEvent): PolicyState => {
  switch (event.type) {
    case 'PolicyPublished':
      return { status: 'published', current: event.data, shadow: state.shadow }
    case 'ShadowPolicyPublished':
      return { ...state, shadow: event.data }
    case 'ShadowPolicyWithdrawn':
    case 'ShadowPolicyPromoted':
      return { ...state, shadow: null }
  }
}

const draftOf = ({ publishedBy: _by, approvedBy: _approved, ...draft }: DataOf<'PolicyPublished'>) => draft

/** The same policy, whoever published and approved it. */
const sameTerms = (a: DataOf<'PolicyPublished'>, b: DataOf<'PolicyPublished'>): boolean =>
  canonicalizeRecorded(draftOf(a)) === canonicalizeRecorded(draftOf(b))
