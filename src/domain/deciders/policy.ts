import { canonicalize } from '../canonical.js'
import { DomainError } from '../errors.js'
import type { DataOf, EventOf } from '../events.js'

export type PolicyEvent = EventOf<'PolicyPublished'>

export type PolicyCommand = { type: 'PublishPolicy'; policy: DataOf<'PolicyPublished'> }

export type PolicyState =
  | { readonly status: 'none' }
  | { readonly status: 'published'; readonly current: DataOf<'PolicyPublished'> }

export const initialState = (): PolicyState => ({ status: 'none' })

export const decide = (command: PolicyCommand, state: PolicyState): PolicyEvent[] => {
  switch (command.type) {
    case 'PublishPolicy':
      return publish(command.policy, state)
  }
}

const publish = (policy: DataOf<'PolicyPublished'>, state: PolicyState): PolicyEvent[] => {
  if (policy.owner.trim() === '') throw new DomainError('invalid', 'a policy needs an owner')
  const current = state.status === 'published' ? state.current : null
  // publishing the current version again, unchanged, is a retry
  if (current !== null && canonicalize(current) === canonicalize(policy)) return []
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
