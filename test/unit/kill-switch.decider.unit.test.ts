import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import type { Approval } from '../../src/domain/deciders/governance.js'
import type { KillSwitchCommand, KillSwitchEvent } from '../../src/domain/deciders/kill-switch.js'
import * as killSwitch from '../../src/domain/deciders/kill-switch.js'
import type { KillSwitchScope } from '../../src/domain/events.js'
import { actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, secondAdmin, agent, executor } = actors

const twoAdmins: Approval = { requestedBy: admin.sub, approvedBy: secondAdmin.sub }

const engage = (
  scope: KillSwitchScope,
  target: string | null,
  reason = 'incident in progress',
  actor: Actor = admin,
): KillSwitchCommand => ({ type: 'Engage', actor, scope, target, reason })
const release = (
  reason = 'incident resolved',
  { actor = secondAdmin as Actor, approval = twoAdmins } = {},
): KillSwitchCommand => ({ type: 'Release', actor, reason, approval })

const engaged: KillSwitchEvent = {
  type: 'KillSwitchEngaged',
  data: { scope: 'environment', target: 'production', reason: 'incident in progress' },
}
const released: KillSwitchEvent = {
  type: 'KillSwitchReleased',
  data: { scope: 'environment', target: 'production', reason: 'incident resolved' },
}

describe('kill switch decider', () => {
  test('a kill switch is engaged with its reason, by one admin', () => {
    spec(killSwitch).given([]).when(engage('environment', 'production')).then([engaged])
  })

  test('the global kill switch has no target', () => {
    spec(killSwitch)
      .given([])
      .when(engage('global', null, 'stop everything'))
      .then([
        { type: 'KillSwitchEngaged', data: { scope: 'global', target: null, reason: 'stop everything' } },
      ])
    spec(killSwitch)
      .given([])
      .when(engage('global', 'production', 'stop everything'))
      .thenThrows('invalid', /no target/)
  })

  test('every other kill switch names its target', () => {
    for (const scope of ['environment', 'tool', 'agent'] as const) {
      spec(killSwitch)
        .given([])
        .when(engage(scope, null, 'stop it'))
        .thenThrows('invalid', new RegExp(`a ${scope} kill switch needs a target`))
    }
  })

  test('an engaged kill switch cannot be engaged again', () => {
    spec(killSwitch)
      .given([engaged])
      .when(engage('environment', 'production', 'again'))
      .thenThrows('conflict', /already engaged/)
  })

  test('an engaged kill switch is released with its reason, by a second admin', () => {
    spec(killSwitch).given([engaged]).when(release()).then([released])
  })

  test('releasing without a second admin is refused', () => {
    spec(killSwitch)
      .given([engaged])
      .when(
        release('incident resolved', {
          actor: admin,
          approval: { requestedBy: admin.sub, approvedBy: null },
        }),
      )
      .thenThrows('forbidden', /releasing a kill switch needs a second, distinct policy admin/)
  })

  test('a kill switch that is not engaged cannot be released', () => {
    spec(killSwitch)
      .given([])
      .when(release('nothing'))
      .thenThrows('conflict', /not engaged/)
    spec(killSwitch)
      .given([engaged, released])
      .when(release('twice'))
      .thenThrows('conflict', /not engaged/)
  })

  test('a released kill switch may be engaged again', () => {
    spec(killSwitch).given([engaged, released]).when(engage('environment', 'production')).then([engaged])
  })

  test('adminGoverns: an agent engaging or releasing a kill switch is refused', () => {
    for (const actor of [agent, executor]) {
      const attempts: [KillSwitchEvent[], KillSwitchCommand][] = [
        [[], engage('agent', agent.sub, 'stop it', actor)],
        [[engaged], release('done', { actor })],
      ]
      for (const [given, command] of attempts) {
        spec(killSwitch)
          .given(given)
          .when(command)
          .thenThrows('forbidden', new RegExp(`${actor.sub} holds no policy-admin role`))
        assert.equal(specificationRefusing(killSwitch, given, command), 'adminGoverns')
      }
    }
  })
})
