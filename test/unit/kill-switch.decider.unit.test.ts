import { describe, test } from 'node:test'
import type { KillSwitchEvent } from '../../src/domain/deciders/kill-switch.js'
import * as killSwitch from '../../src/domain/deciders/kill-switch.js'
import { spec } from '../support/decider-spec.js'

const engaged: KillSwitchEvent = {
  type: 'KillSwitchEngaged',
  data: { scope: 'environment', target: 'production', reason: 'incident in progress' },
}
const released: KillSwitchEvent = {
  type: 'KillSwitchReleased',
  data: { scope: 'environment', target: 'production', reason: 'incident resolved' },
}

describe('kill switch decider', () => {
  test('a kill switch is engaged with its reason', () => {
    spec(killSwitch)
      .given([])
      .when({ type: 'Engage', scope: 'environment', target: 'production', reason: 'incident in progress' })
      .then([engaged])
  })

  test('the global kill switch has no target', () => {
    spec(killSwitch)
      .given([])
      .when({ type: 'Engage', scope: 'global', target: null, reason: 'stop everything' })
      .then([
        { type: 'KillSwitchEngaged', data: { scope: 'global', target: null, reason: 'stop everything' } },
      ])
    spec(killSwitch)
      .given([])
      .when({ type: 'Engage', scope: 'global', target: 'production', reason: 'stop everything' })
      .thenThrows('invalid', /no target/)
  })

  test('every other kill switch names its target', () => {
    for (const scope of ['environment', 'tool', 'agent'] as const) {
      spec(killSwitch)
        .given([])
        .when({ type: 'Engage', scope, target: null, reason: 'stop it' })
        .thenThrows('invalid', new RegExp(`a ${scope} kill switch needs a target`))
    }
  })

  test('an engaged kill switch cannot be engaged again', () => {
    spec(killSwitch)
      .given([engaged])
      .when({ type: 'Engage', scope: 'environment', target: 'production', reason: 'again' })
      .thenThrows('conflict', /already engaged/)
  })

  test('an engaged kill switch is released with its reason', () => {
    spec(killSwitch).given([engaged]).when({ type: 'Release', reason: 'incident resolved' }).then([released])
  })

  test('a kill switch that is not engaged cannot be released', () => {
    spec(killSwitch)
      .given([])
      .when({ type: 'Release', reason: 'nothing' })
      .thenThrows('conflict', /not engaged/)
    spec(killSwitch)
      .given([engaged, released])
      .when({ type: 'Release', reason: 'twice' })
      .thenThrows('conflict', /not engaged/)
  })

  test('a released kill switch may be engaged again', () => {
    spec(killSwitch)
      .given([engaged, released])
      .when({ type: 'Engage', scope: 'environment', target: 'production', reason: 'incident in progress' })
      .then([engaged])
  })
})
