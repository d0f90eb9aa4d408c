import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import type { ResourceCommand, ResourceEvent } from '../../src/domain/deciders/resource.js'
import * as resource from '../../src/domain/deciders/resource.js'
import type { DataOf } from '../../src/domain/events.js'
import { actorOf, actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { observer, agent, simulator } = actors

const nine = '2025-02-01T09:00:00.000Z'
const ten = '2025-02-01T10:00:00.000Z'
/** ledger time at the edge, and the default skew an observer's clock may run ahead of it */
const now = ten
const maxSkewSeconds = 5

const observation = (version: string, observedAt: string): DataOf<'StateObserved'> => ({
  environment: 'production',
  resource: 'deployment/api',
  version,
  digest: `digest-${version}`,
  observedAt,
})
const observe = (
  version: string,
  observedAt: string,
  { actor = observer as Actor, at = now } = {},
): ResourceCommand => ({
  type: 'ObserveState',
  actor,
  context: { now: at, maxSkewSeconds },
  ...observation(version, observedAt),
})
const observed = (version: string, observedAt: string): ResourceEvent => ({
  type: 'StateObserved',
  data: observation(version, observedAt),
})

describe('resource decider', () => {
  test('a first observation is recorded', () => {
    spec(resource)
      .given([])
      .when(observe('rv-41', ten))
      .then([observed('rv-41', ten)])
  })

  test('a newer observation is recorded, even of the same version', () => {
    spec(resource)
      .given([observed('rv-41', nine)])
      .when(observe('rv-42', ten))
      .then([observed('rv-42', ten)])
    spec(resource)
      .given([observed('rv-41', nine)])
      .when(observe('rv-41', ten))
      .then([observed('rv-41', ten)])
  })

  test('a stale observation is refused', () => {
    spec(resource)
      .given([observed('rv-42', ten)])
      .when(observe('rv-41', nine))
      .thenThrows(
        'conflict',
        /stale observation: 2025-02-01T09:00:00.000Z is older than 2025-02-01T10:00:00.000Z/,
      )
  })

  test('the same observation repeated is an idempotent no-op', () => {
    spec(resource)
      .given([observed('rv-41', ten)])
      .when(observe('rv-41', ten))
      .then([])
  })

  test('observerAttestsState: an agent reporting live state is refused', () => {
    const command = observe('rv-41', ten, { actor: agent })
    spec(resource)
      .given([])
      .when(command)
      .thenThrows('forbidden', /agent-7 holds no observer role: only an observer reports live state/)
    assert.equal(specificationRefusing(resource, [], command), 'observerAttestsState')
  })

  test('observerAttestsState: a principal holding both observer and agent is refused', () => {
    const command = observe('rv-41', ten, { actor: actorOf('agent-7', ['observer', 'agent']) })
    spec(resource)
      .given([])
      .when(command)
      .thenThrows('forbidden', /agent-7 holds the agent role, and an agent's word is not evidence/)
    assert.equal(specificationRefusing(resource, [], command), 'observerAttestsState')
  })

  test('observerAttestsState: another witness (a simulator) is no observer', () => {
    const command = observe('rv-41', ten, { actor: simulator })
    spec(resource)
      .given([])
      .when(command)
      .thenThrows('forbidden', /simulator-1 holds no observer role/)
    assert.equal(specificationRefusing(resource, [], command), 'observerAttestsState')
  })

  test('observationNotFromTheFuture: an observation dated beyond ledger time plus the skew is invalid', () => {
    const later = '2025-02-01T10:00:05.001Z'
    const command = observe('rv-41', later)
    spec(resource)
      .given([])
      .when(command)
      .thenThrows(
        'invalid',
        /observedAt 2025-02-01T10:00:05.001Z is later than ledger time 2025-02-01T10:00:00.000Z plus the allowed skew of 5 s/,
      )
    assert.equal(specificationRefusing(resource, [], command), 'observationNotFromTheFuture')
    // a date from far ahead cannot pin the latest observation for everyone after it
    spec(resource)
      .given([observed('rv-41', nine)])
      .when(observe('rv-42', '2030-01-01T00:00:00.000Z'))
      .thenThrows('invalid', /later than ledger time/)
  })

  test('observationNotFromTheFuture: an observer clock ahead within the skew is accepted', () => {
    spec(resource)
      .given([])
      .when(observe('rv-41', '2025-02-01T10:00:05.000Z'))
      .then([observed('rv-41', '2025-02-01T10:00:05.000Z')])
    spec(resource)
      .given([])
      .when(observe('rv-41', '2025-02-01T10:00:03.000Z'))
      .then([observed('rv-41', '2025-02-01T10:00:03.000Z')])
  })
})
