import { describe, test } from 'node:test'
import type { PolicyEvent } from '../../src/domain/deciders/policy.js'
import * as policy from '../../src/domain/deciders/policy.js'
import type { DataOf, ImpactRequirements } from '../../src/domain/events.js'
import { spec } from '../support/decider-spec.js'

const needs = (count: number): ImpactRequirements => ({ checks: [], approvals: { count, roles: ['sre'] } })
const version = (n: number, owner = 'governance-board'): DataOf<'PolicyPublished'> => ({
  version: n,
  owner,
  requirements: { read: needs(0), low: needs(0), medium: needs(1), high: needs(1), critical: needs(2) },
  freshnessMaxAgeSeconds: 300,
  minAdversarialBranches: 3,
  survivalThreshold: 0.9,
  rollbackTestMaxAgeSeconds: 86400,
  recoveryTimeObjectiveSeconds: 900,
  verdictTtlSeconds: 600,
})
const published = (n: number): PolicyEvent => ({ type: 'PolicyPublished', data: version(n) })

describe('policy decider', () => {
  test('the first policy is version 1', () => {
    spec(policy)
      .given([])
      .when({ type: 'PublishPolicy', policy: version(1) })
      .then([published(1)])
    spec(policy)
      .given([])
      .when({ type: 'PublishPolicy', policy: version(2) })
      .thenThrows('conflict', /expected 1/)
  })

  test('each version follows the current one', () => {
    spec(policy)
      .given([published(1), published(2)])
      .when({ type: 'PublishPolicy', policy: version(3) })
      .then([published(3)])
    spec(policy)
      .given([published(1), published(2)])
      .when({ type: 'PublishPolicy', policy: version(4) })
      .thenThrows('conflict', /expected 3/)
  })

  test('an older version is not published again', () => {
    spec(policy)
      .given([published(1), published(2)])
      .when({ type: 'PublishPolicy', policy: version(1) })
      .thenThrows('conflict', /out of sequence/)
  })

  test('the current version published again unchanged is an idempotent no-op', () => {
    spec(policy)
      .given([published(1)])
      .when({ type: 'PublishPolicy', policy: version(1) })
      .then([])
    spec(policy)
      .given([published(1)])
      .when({ type: 'PublishPolicy', policy: { ...version(1), verdictTtlSeconds: 60 } })
      .thenThrows('conflict', /expected 2/)
  })

  test('a policy has an owner', () => {
    spec(policy)
      .given([])
      .when({ type: 'PublishPolicy', policy: version(1, ' ') })
      .thenThrows('invalid', /owner/)
  })
})
