import { describe, test } from 'node:test'
import type { ResourceEvent } from '../../src/domain/deciders/resource.js'
import * as resource from '../../src/domain/deciders/resource.js'
import type { DataOf } from '../../src/domain/events.js'
import { spec } from '../support/decider-spec.js'

const observation = (version: string, observedAt: string): DataOf<'StateObserved'> => ({
  environment: 'production',
  resource: 'deployment/api',
  version,
  digest: `digest-${version}`,
  observedAt,
})
const observe = (version: string, observedAt: string) =>
  ({ type: 'ObserveState', ...observation(version, observedAt) }) as const
const observed = (version: string, observedAt: string): ResourceEvent => ({
  type: 'StateObserved',
  data: observation(version, observedAt),
})

const nine = '2025-02-01T09:00:00.000Z'
const ten = '2025-02-01T10:00:00.000Z'

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
      .thenThrows('conflict', /stale observation/)
  })

  test('the same observation repeated is an idempotent no-op', () => {
    spec(resource)
      .given([observed('rv-41', ten)])
      .when(observe('rv-41', ten))
      .then([])
  })
})
