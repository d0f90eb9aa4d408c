import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import type { Approval } from '../../src/domain/deciders/governance.js'
import type { PolicyCommand, PolicyEvent } from '../../src/domain/deciders/policy.js'
import * as policy from '../../src/domain/deciders/policy.js'
import type {
  ImpactRequirements,
  PolicyDraft,
  PromotionRequirement,
  PromotionRequirements,
} from '../../src/domain/events.js'
import { actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, secondAdmin, agent, approver } = actors

const needs = (count: number): ImpactRequirements => ({
  checks: [],
  approvals: { count, roles: ['approver'] },
})
const track = (minProposals: number): PromotionRequirement => ({
  windowDays: 30,
  minProposals,
  minSimulationsPassed: 0,
  minSurvivalRate: 0,
  maxViolations: 0,
  maxFailedExecutions: 0,
})
const promotion: PromotionRequirements = { recommend: track(0), simulate: track(5), execute: track(10) }
const draft = (n: number, owner = 'governance-board'): PolicyDraft => ({
  version: n,
  owner,
  requirements: { read: needs(0), low: needs(0), medium: needs(1), high: needs(1), critical: needs(2) },
  freshnessMaxAgeSeconds: 300,
  minAdversarialBranches: 3,
  survivalThreshold: 0.9,
  rollbackTestMaxAgeSeconds: 86400,
  recoveryTimeObjectiveSeconds: 900,
  verdictTtlSeconds: 600,
  releaseGates: [],
  proposalMaxOpenSeconds: 604_800,
  promotion,
  promotionByEnvironment: { production: { ...promotion, execute: track(20) } },
})
/** the first policy of an empty ledger, by one admin */
const alone: Approval = { requestedBy: admin.sub, approvedBy: null }
const twoAdmins: Approval = { requestedBy: admin.sub, approvedBy: secondAdmin.sub }

const publish = (
  n: number,
  { actor = secondAdmin as Actor, approval = twoAdmins, policy: body = draft(n) } = {},
): PolicyCommand => ({ type: 'PublishPolicy', actor, policy: body, approval })
const published = (n: number, approval = twoAdmins): PolicyEvent => ({
  type: 'PolicyPublished',
  data: { ...draft(n), publishedBy: approval.requestedBy, approvedBy: approval.approvedBy },
})

describe('policy decider', () => {
  test('the first policy is version 1, and one admin may publish it', () => {
    spec(policy)
      .given([])
      .when(publish(1, { actor: admin, approval: alone }))
      .then([published(1, alone)])
    spec(policy)
      .given([])
      .when(publish(2))
      .thenThrows('conflict', /expected 1/)
  })

  test('who published and who approved come from the approval, with the promotion requirements kept', () => {
    spec(policy)
      .given([published(1, alone)])
      .when(publish(2))
      .then([published(2)])
  })

  test('each version follows the current one', () => {
    spec(policy)
      .given([published(1), published(2)])
      .when(publish(3))
      .then([published(3)])
    spec(policy)
      .given([published(1), published(2)])
      .when(publish(4))
      .thenThrows('conflict', /expected 3/)
  })

  test('an older version is not published again', () => {
    spec(policy)
      .given([published(1), published(2)])
      .when(publish(1))
      .thenThrows('conflict', /out of sequence/)
  })

  test('the current version published again unchanged is an idempotent no-op', () => {
    spec(policy)
      .given([published(1)])
      .when(publish(1))
      .then([])
    spec(policy)
      .given([published(1)])
      .when(publish(1, { policy: { ...draft(1), verdictTtlSeconds: 60 } }))
      .thenThrows('conflict', /expected 2/)
    // a retry is judged on the policy itself, whoever published and approved it
    spec(policy)
      .given([published(1)])
      .when(publish(1, { approval: { requestedBy: secondAdmin.sub, approvedBy: admin.sub } }))
      .then([])
  })

  test('a policy has an owner', () => {
    spec(policy)
      .given([])
      .when(publish(1, { policy: draft(1, ' ') }))
      .thenThrows('invalid', /owner/)
  })

  test('adminGoverns: a policy published by a non-admin is refused', () => {
    for (const actor of [agent, approver]) {
      const command = publish(1, { actor, approval: { requestedBy: actor.sub, approvedBy: null } })
      spec(policy)
        .given([])
        .when(command)
        .thenThrows('forbidden', new RegExp(`${actor.sub} holds no policy-admin role`))
      assert.equal(specificationRefusing(policy, [], command), 'adminGoverns')
    }
  })

  test('a policy after the first is never published by one admin alone', {}, () => {
    spec(policy)
      .given([published(1, alone)])
      .when(publish(2, { actor: admin, approval: alone }))
      .thenThrows('forbidden')
  })

  describe('shadow policies', () => {
    const shadow = (
      n: number,
      { actor = secondAdmin as Actor, approval = twoAdmins, policy: body = draft(n) } = {},
    ): PolicyCommand => ({ type: 'PublishShadowPolicy', actor, policy: body, approval })
    const inShadow = (n: number, body = draft(n)): PolicyEvent => ({
      type: 'ShadowPolicyPublished',
      data: { ...body, publishedBy: twoAdmins.requestedBy, approvedBy: twoAdmins.approvedBy },
    })
    const withdraw = (actor: Actor = admin): PolicyCommand => ({
      type: 'WithdrawShadowPolicy',
      actor,
      reason: 'enough seen',
    })

    test('the next version goes into shadow with two admins behind it', () => {
      spec(policy)
        .given([published(1)])
        .when(shadow(2))
        .then([inShadow(2)])
      spec(policy)
        .given([published(1)])
        .when(shadow(3))
        .thenThrows('conflict', /expected 2/)
    })

    test('secondAdminBehind: one admin alone never puts a shadow policy in force, not even on an empty ledger', () => {
      for (const given of [[], [published(1)]]) {
        const command = shadow(given.length + 1, { actor: admin, approval: alone })
        spec(policy)
          .given(given)
          .when(command)
          .thenThrows('forbidden', /second, distinct policy admin/)
        assert.equal(specificationRefusing(policy, given, command), 'secondAdminBehind')
        const self = { requestedBy: admin.sub, approvedBy: admin.sub }
        assert.equal(
          specificationRefusing(policy, given, shadow(given.length + 1, { actor: admin, approval: self })),
          'secondAdminBehind',
        )
      }
    })

    test('adminGoverns: an agent or an approver cannot publish or withdraw a shadow policy', () => {
      for (const actor of [agent, approver]) {
        const approval = { requestedBy: actor.sub, approvedBy: secondAdmin.sub }
        assert.equal(
          specificationRefusing(policy, [published(1)], shadow(2, { actor, approval })),
          'adminGoverns',
        )
        assert.equal(
          specificationRefusing(policy, [published(1), inShadow(2)], withdraw(actor)),
          'adminGoverns',
        )
      }
    })

    test('one shadow at a time: the same one again is a retry, another is refused', () => {
      spec(policy)
        .given([published(1), inShadow(2)])
        .when(shadow(2))
        .then([])
      spec(policy)
        .given([published(1), inShadow(2)])
        .when(shadow(2, { policy: { ...draft(2), verdictTtlSeconds: 60 } }))
        .thenThrows('conflict', /in shadow already/)
    })

    test('one admin withdraws it; with none in force there is nothing to withdraw', () => {
      spec(policy)
        .given([published(1), inShadow(2)])
        .when(withdraw())
        .then([{ type: 'ShadowPolicyWithdrawn', data: { version: 2, reason: 'enough seen' } }])
      spec(policy)
        .given([
          published(1),
          inShadow(2),
          { type: 'ShadowPolicyWithdrawn', data: { version: 2, reason: 'x' } },
        ])
        .when(withdraw())
        .thenThrows('not-found')
    })

    test('publishing its version live with its terms promotes it; with other terms withdraws it', () => {
      spec(policy)
        .given([published(1), inShadow(2)])
        .when(publish(2))
        .then([published(2), { type: 'ShadowPolicyPromoted', data: { version: 2 } }])
      spec(policy)
        .given([published(1), inShadow(2, { ...draft(2), verdictTtlSeconds: 60 })])
        .when(publish(2))
        .then([
          published(2),
          {
            type: 'ShadowPolicyWithdrawn',
            data: { version: 2, reason: 'policy version 2 was published live with other terms' },
          },
        ])
      spec(policy)
        .given([
          published(1),
          inShadow(2),
          published(2),
          { type: 'ShadowPolicyPromoted', data: { version: 2 } },
        ])
        .when(shadow(3))
        .then([inShadow(3)])
    })
  })
})
