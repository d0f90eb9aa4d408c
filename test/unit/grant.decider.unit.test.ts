import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import type { GrantCommand, GrantEvent } from '../../src/domain/deciders/grant.js'
import * as grant from '../../src/domain/deciders/grant.js'
import type { DataOf } from '../../src/domain/events.js'
import { actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, agent, executor, approver } = actors

const scope: DataOf<'ScopeGranted'> = {
  grantId: 'g-1',
  identity: 'deployer',
  tool: 'kubernetes',
  action: 'scale',
  resourcePattern: 'deployment/api-*',
  environment: 'production',
  via: 'direct',
}
const grantScope = (actor: Actor = admin): GrantCommand => ({ type: 'GrantScope', actor, ...scope })
const revokeScope = (reason = 'team changed', actor: Actor = admin): GrantCommand => ({
  type: 'RevokeScope',
  actor,
  reason,
})
const granted: GrantEvent = { type: 'ScopeGranted', data: scope }
const revoked: GrantEvent = { type: 'ScopeRevoked', data: { grantId: 'g-1', reason: 'team changed' } }

describe('grant decider', () => {
  test('a scope is granted once', () => {
    spec(grant).given([]).when(grantScope()).then([granted])
    spec(grant)
      .given([granted])
      .when(grantScope())
      .thenThrows('conflict', /g-1 already exists/)
  })

  test("a grant over any tool or action ('*') is recorded as named", () => {
    const wide = { ...scope, tool: '*', action: '*' }
    spec(grant)
      .given([])
      .when({ type: 'GrantScope', actor: admin, ...wide })
      .then([{ type: 'ScopeGranted', data: wide }])
  })

  test('a granted scope is revoked with its reason', () => {
    spec(grant).given([granted]).when(revokeScope()).then([revoked])
  })

  test('an unknown grant cannot be revoked', () => {
    spec(grant).given([]).when(revokeScope()).thenThrows('not-found')
  })

  test('a revoked grant cannot be revoked again', () => {
    spec(grant)
      .given([granted, revoked])
      .when(revokeScope('again'))
      .thenThrows('conflict', /already revoked/)
  })

  test('a revoked grant id is not granted again', () => {
    spec(grant)
      .given([granted, revoked])
      .when(grantScope())
      .thenThrows('conflict', /already exists/)
  })

  test('adminGoverns: an agent granting itself a scope, or a non-admin revoking one, is refused', () => {
    for (const actor of [agent, executor, approver]) {
      const attempts: [GrantEvent[], GrantCommand][] = [
        [[], grantScope(actor)],
        [[granted], revokeScope('mine now', actor)],
      ]
      for (const [given, command] of attempts) {
        spec(grant)
          .given(given)
          .when(command)
          .thenThrows('forbidden', new RegExp(`${actor.sub} holds no policy-admin role`))
        assert.equal(specificationRefusing(grant, given, command), 'adminGoverns')
      }
    }
  })
})
