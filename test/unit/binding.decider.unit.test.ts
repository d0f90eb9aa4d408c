import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import type { BindingCommand, BindingEvent } from '../../src/domain/deciders/binding.js'
import * as binding from '../../src/domain/deciders/binding.js'
import type { Approval } from '../../src/domain/deciders/governance.js'
import type { BindingRole } from '../../src/domain/events.js'
import { actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, secondAdmin, executor, agent, approver } = actors
const identity = 'deployer'
const twoAdmins: Approval = { requestedBy: admin.sub, approvedBy: secondAdmin.sub }

const bindCommand = (
  principal: string,
  role: BindingRole,
  { actor = secondAdmin as Actor, approval = twoAdmins } = {},
): BindingCommand => ({ type: 'Bind', actor, principal, role, identity, approval })
const unbindCommand = (principal: string, role: BindingRole, actor: Actor = admin): BindingCommand => ({
  type: 'Unbind',
  actor,
  principal,
  role,
  identity,
  reason: 'left the team',
})
const bound = (principal: string, role: BindingRole): BindingEvent => ({
  type: 'IdentityBound',
  data: { principal, role, identity, requestedBy: admin.sub, approvedBy: secondAdmin.sub },
})
const unbound = (principal: string, role: BindingRole): BindingEvent => ({
  type: 'IdentityUnbound',
  data: { principal, role, identity, reason: 'left the team' },
})

const stateOf = (events: BindingEvent[]) => events.reduce(binding.evolve, binding.initialState())

describe('binding decider', () => {
  test('an identity is bound to an agent or an executor with both admins named', () => {
    spec(binding)
      .given([])
      .when(bindCommand(agent.sub, 'agent'))
      .then([bound(agent.sub, 'agent')])
    spec(binding)
      .given([])
      .when(bindCommand(executor.sub, 'executor'))
      .then([bound(executor.sub, 'executor')])
  })

  test('binding without a second admin is refused', () => {
    spec(binding)
      .given([])
      .when(bindCommand(executor.sub, 'executor', { approval: { requestedBy: admin.sub, approvedBy: null } }))
      .thenThrows('forbidden', /binding executor-1 to .* needs a second, distinct policy admin/)
  })

  test('binding twice is a no-op', () => {
    spec(binding)
      .given([bound(executor.sub, 'executor')])
      .when(bindCommand(executor.sub, 'executor'))
      .then([])
  })

  test('a principal bound as an agent is not bound as an executor', () => {
    spec(binding)
      .given([bound(agent.sub, 'agent')])
      .when(bindCommand(agent.sub, 'executor'))
      .then([bound(agent.sub, 'executor')])
    spec(binding)
      .given([bound(agent.sub, 'agent')])
      .when(unbindCommand(agent.sub, 'executor'))
      .thenThrows('not-found', /agent-7 is not bound to deployer as executor/)
  })

  test('adminGoverns: one policy admin removes a binding', () => {
    spec(binding)
      .given([bound(executor.sub, 'executor')])
      .when(unbindCommand(executor.sub, 'executor'))
      .then([unbound(executor.sub, 'executor')])
  })

  test('adminGoverns: an unbind by a non-admin is refused', () => {
    for (const actor of [executor, agent, approver]) {
      const given = [bound(executor.sub, 'executor')]
      const command = unbindCommand(executor.sub, 'executor', actor)
      spec(binding)
        .given(given)
        .when(command)
        .thenThrows('forbidden', new RegExp(`${actor.sub} holds no policy-admin role`))
      assert.equal(specificationRefusing(binding, given, command), 'adminGoverns')
    }
  })

  test('unbinding something not bound is not found', () => {
    spec(binding)
      .given([])
      .when(unbindCommand(executor.sub, 'executor'))
      .thenThrows('not-found', /executor-1 is not bound to deployer as executor/)
    spec(binding)
      .given([bound(executor.sub, 'executor'), unbound(executor.sub, 'executor')])
      .when(unbindCommand(executor.sub, 'executor'))
      .thenThrows('not-found')
  })

  test('the state lists who is bound, as whom', () => {
    const state = stateOf([
      bound(agent.sub, 'agent'),
      bound(executor.sub, 'executor'),
      bound('executor-2', 'executor'),
      unbound(executor.sub, 'executor'),
      bound(executor.sub, 'executor'),
      bound(executor.sub, 'executor'),
    ])
    assert.deepEqual(state, { agent: [agent.sub], executor: ['executor-2', executor.sub] })
  })

  test('a bind by a principal that is no policy admin is refused', {}, () => {
    spec(binding)
      .given([])
      .when(bindCommand(executor.sub, 'executor', { actor: agent }))
      .thenThrows('forbidden')
  })
})
