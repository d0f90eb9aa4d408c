import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import type { TokenCommand, TokenEvent } from '../../src/domain/deciders/token.js'
import * as token from '../../src/domain/deciders/token.js'
import { actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, secondAdmin, agent, observer, executor, auditor } = actors

const revoke = (jti: string, actor: Actor = admin, reason = 'leaked in a build log'): TokenCommand => ({
  type: 'Revoke',
  actor,
  jti,
  reason,
})
const revoked = (jti: string, reason = 'leaked in a build log'): TokenEvent => ({
  type: 'TokenRevoked',
  data: { jti, reason },
})

describe('token revocation decider', () => {
  test('one policy admin revokes a token by its jti, with the reason', () => {
    spec(token)
      .given([])
      .when(revoke('jti-1'))
      .then([revoked('jti-1')])
    spec(token)
      .given([revoked('jti-0')])
      .when(revoke('jti-1', secondAdmin))
      .then([revoked('jti-1')])
  })

  test('revoking a revoked token again records nothing, whoever asks and whatever the reason', () => {
    const given = [revoked('jti-1'), revoked('jti-2'), revoked('jti-3')]
    spec(token).given(given).when(revoke('jti-2')).then([])
    spec(token)
      .given(given)
      .when(revoke('jti-1', secondAdmin, 'another reason'))
      .then([])
  })

  test('no other role revokes a token: adminRevokesTokens', () => {
    for (const actor of [agent, observer, executor, auditor]) {
      spec(token)
        .given([])
        .when(revoke('jti-1', actor))
        .thenThrows('forbidden', /holds no policy-admin role/)
      assert.equal(specificationRefusing(token, [], revoke('jti-1', actor)), 'adminRevokesTokens')
    }
  })
})
