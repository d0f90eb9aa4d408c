import type { Actor } from '../actor.js'
import { canonicalizeRecorded } from '../canonical.js'
import { DomainError } from '../errors.js'
import type { DataOf, EventOf, PolicyDraft } from '../events.js'
import { demand } from '../specification.js'
import { type Approval, adminGoverns, secondAdminBehind } from './governance.js'

export type PolicyEvent = EventOf<'PolicyPublished'>

export type PolicyCommand = {
  type: 'PublishPolicy'
  actor: Actor
  policy: PolicyDraft
  /** who published it and, but for the first policy of an empty ledger, the second admin who approved it */
  approval: Approval
}

export type PolicyState =
  | { readonly status: 'none' }
  | { readonly status: 'published'; readonly current: DataOf<'PolicyPublished'> }

export const initialState = (): PolicyState => ({ status: 'none' })

export const decide = (command: PolicyCommand, state: PolicyState): PolicyEvent[] => {
  switch (command.type) {
    case 'PublishPolicy': {
      demand(adminGoverns, command.actor)
      const { approval } = command
      // only the first policy of an empty ledger is published by one admin: the application says when
      if (state.status === 'published') demand(secondAdminBehind, { change: 'a policy', approval })
      const { requestedBy, approvedBy } = approval
      return publish({ ...command.policy, publishedBy: requestedBy, approvedBy }, state)
    }
  }
}

const publish = (policy: DataOf<'PolicyPublished'>, state: PolicyState): PolicyEvent[] => {
  if (policy.owner.trim() === '') throw new DomainError('invalid', 'a policy needs an owner')
  const current = state.status === 'published' ? state.current : null
  // publishing the current version again, unchanged, is a retry, whoever published and approved it
  if (current !== null && canonicalizeRecorded(draftOf(current)) === canonicalizeRecorded(draftOf(policy)))
    return []
  const expected = (current?.version ?? 0) + 1
  if (policy.version !== expected) {
    throw new DomainError(
      'conflict',
      `policy version ${policy.version} is out of sequence: expected ${expected}`,
      {
        expected,
      },
    )
  }
  return [{ type: 'PolicyPublished', data: policy }]
}

export const evolve = (_state: PolicyState, event: PolicyEvent): PolicyState => {
  switch (event.type) {
    case 'PolicyPublished':
      return { status: 'published', current: event.data }
  }
}

const draftOf = ({ publishedBy: _by, approvedBy: _approved, ...draft }: DataOf<'PolicyPublished'>) => draft
