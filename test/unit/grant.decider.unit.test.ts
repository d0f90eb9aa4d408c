import { describe, test } from 'node:test'
import type { GrantCommand, GrantEvent } from '../../src/domain/deciders/grant.js'
import * as grant from '../../src/domain/deciders/grant.js'
import type { DataOf } from '../../src/domain/events.js'
import { spec } from '../support/decider-spec.js'

const scope: DataOf<'ScopeGranted'> = {
  grantId: 'g-1',
  identity: 'deployer',
  tool: 'kubernetes',
  action: 'scale',
  resourcePattern: 'deployment/api-*',
  environment: 'production',
  via: 'direct',
}
const grantScope: GrantCommand = { type: 'GrantScope', ...scope }
const granted: GrantEvent = { type: 'ScopeGranted', data: scope }
const revoked: GrantEvent = { type: 'ScopeRevoked', data: { grantId: 'g-1', reason: 'team changed' } }

describe('grant decider', () => {
  test('a scope is granted once', () => {
    spec(grant).given([]).when(grantScope).then([granted])
    spec(grant)
      .given([granted])
      .when(grantScope)
      .thenThrows('conflict', /g-1 already exists/)
  })

  test('a granted scope is revoked with its reason', () => {
    spec(grant).given([granted]).when({ type: 'RevokeScope', reason: 'team changed' }).then([revoked])
  })

  test('an unknown grant cannot be revoked', () => {
    spec(grant).given([]).when({ type: 'RevokeScope', reason: 'team changed' }).thenThrows('not-found')
  })

  test('a revoked grant cannot be revoked again', () => {
    spec(grant)
      .given([granted, revoked])
      .when({ type: 'RevokeScope', reason: 'again' })
      .thenThrows('conflict', /already revoked/)
  })

  test('a revoked grant id is not granted again', () => {
    spec(grant)
      .given([granted, revoked])
      .when(grantScope)
      .thenThrows('conflict', /already exists/)
  })
})
