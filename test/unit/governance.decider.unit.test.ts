import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import type {
  GovernanceCommand,
  GovernanceEvent,
  WideningContext,
} from '../../src/domain/deciders/governance.js'
import * as governance from '../../src/domain/deciders/governance.js'
import { widens } from '../../src/domain/deciders/governance.js'
import type { DomainErrorCode } from '../../src/domain/errors.js'
import type { GovernanceChange, ImpactClass } from '../../src/domain/events.js'
import { actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, secondAdmin, agent, approver } = actors

const requestId = 'change-1'
const bind: GovernanceChange = {
  kind: 'bind-identity',
  principal: 'executor-1',
  role: 'executor',
  identity: 'deployer',
}
const why = 'binding executor-1 to deployer lets it act as that identity'
const basedOn = { stream: 'identity-deployer', version: 0 }

const requestChange = (actor: Actor = admin): GovernanceCommand => ({
  type: 'RequestChange',
  actor,
  requestId,
  change: bind,
  policy: null,
  widens: why,
  basedOn,
})
const approveChange = (actor: Actor = secondAdmin): GovernanceCommand => ({
  type: 'ApproveChange',
  actor,
})
const refuseChange = (actor: Actor = secondAdmin): GovernanceCommand => ({
  type: 'RefuseChange',
  actor,
  reason: 'not this quarter',
})

const requested: GovernanceEvent = {
  type: 'ChangeRequested',
  data: { requestId, change: bind, policy: null, widens: why, requestedBy: admin.sub, basedOn },
}
const approved = (by = secondAdmin.sub): GovernanceEvent => ({
  type: 'ChangeApproved',
  data: { requestId, approvedBy: by },
})
const refused = (by = secondAdmin.sub): GovernanceEvent => ({
  type: 'ChangeRefused',
  data: { requestId, refusedBy: by, reason: 'not this quarter' },
})

/** Refused with the error code, the named specification, and a message that says why. */
const refuses = (
  given: GovernanceEvent[],
  command: GovernanceCommand,
  code: DomainErrorCode,
  specification: string,
  message: RegExp,
): void => {
  spec(governance).given(given).when(command).thenThrows(code, message)
  assert.equal(specificationRefusing(governance, given, command), specification)
}

describe('governance decider: the change stream', () => {
  test('adminGoverns: a policy admin requests a change', () => {
    spec(governance).given([]).when(requestChange()).then([requested])
  })

  test('a policy change carries the whole version proposed', () => {
    const policy = { version: 2, owner: 'governance-board' }
    spec(governance)
      .given([])
      .when({
        type: 'RequestChange',
        actor: admin,
        requestId,
        change: { kind: 'publish-policy', policyVersion: 2 },
        policy,
        widens: 'a policy decides what every agent may do',
        basedOn,
      })
      .then([
        {
          type: 'ChangeRequested',
          data: {
            requestId,
            change: { kind: 'publish-policy', policyVersion: 2 },
            policy,
            widens: 'a policy decides what every agent may do',
            requestedBy: admin.sub,
            basedOn,
          },
        },
      ])
  })

  test('adminGoverns: a change requested by a non-admin is refused', () => {
    refuses([], requestChange(agent), 'forbidden', 'adminGoverns', /agent-7 holds no policy-admin role/)
  })

  test('a request id is used once', () => {
    spec(governance)
      .given([requested])
      .when(requestChange())
      .thenThrows('conflict', /change change-1 already exists/)
  })

  test('secondAdminApproves: a second, distinct policy admin approves a pending change', () => {
    spec(governance).given([requested]).when(approveChange()).then([approved()])
  })

  test('secondAdminApproves: the requester approving its own change is refused', () => {
    refuses(
      [requested],
      approveChange(admin),
      'forbidden',
      'secondAdminApproves',
      /admin-1 requested this change: a second, distinct policy admin must approve it/,
    )
  })

  test('secondAdminApproves: an approver who is not a policy admin is refused', () => {
    refuses(
      [requested],
      approveChange(approver),
      'forbidden',
      'secondAdminApproves',
      /approver-1 holds no policy-admin role/,
    )
  })

  test('adminGoverns: any policy admin refuses a pending change, its requester too', () => {
    spec(governance).given([requested]).when(refuseChange()).then([refused()])
    spec(governance)
      .given([requested])
      .when(refuseChange(admin))
      .then([refused(admin.sub)])
  })

  test('adminGoverns: a non-admin may not refuse a change', () => {
    refuses(
      [requested],
      refuseChange(agent),
      'forbidden',
      'adminGoverns',
      /agent-7 holds no policy-admin role/,
    )
  })

  test('only a pending change is approved or refused', () => {
    for (const done of [approved(), refused()]) {
      const status = done.type === 'ChangeApproved' ? 'approved' : 'refused'
      spec(governance)
        .given([requested, done])
        .when(approveChange())
        .thenThrows('conflict', new RegExp(`the change request is ${status}`))
      spec(governance)
        .given([requested, done])
        .when(refuseChange())
        .thenThrows('conflict', new RegExp(`the change request is ${status}`))
    }
    spec(governance)
      .given([])
      .when(approveChange())
      .thenThrows('not-found', /the change request does not exist/)
    spec(governance)
      .given([])
      .when(refuseChange())
      .thenThrows('not-found', /the change request does not exist/)
  })
})

describe('widens: what needs a second policy admin', () => {
  const inventory =
    (entries: Record<string, { impact: ImpactClass; reversible: boolean }>): WideningContext['registered'] =>
    (tool, action) =>
      entries[`${tool}.${action}`] ?? null
  const context = (
    entries: Record<string, { impact: ImpactClass; reversible: boolean }> = {},
    ledgerEmpty = false,
  ): WideningContext => ({ ledgerEmpty, registered: inventory(entries) })
  const scale = { 'kubernetes.scale': { impact: 'high', reversible: false } } as const
  const register = (impact: ImpactClass, reversible: boolean): GovernanceChange => ({
    kind: 'register-tool-action',
    tool: 'kubernetes',
    action: 'scale',
    impact,
    reversible,
    description: 'change the replica count',
  })
  const grant = (tool: string, action: string): GovernanceChange => ({
    kind: 'grant-scope',
    grantId: 'g-1',
    identity: 'deployer',
    tool,
    action,
    resourcePattern: 'deployment/*',
    environment: 'production',
    via: 'direct',
  })

  test('publish a policy: one admin for the first policy of an empty ledger, two otherwise', () => {
    const change: GovernanceChange = { kind: 'publish-policy', policyVersion: 1 }
    assert.equal(widens(change, context({}, true)), null)
    assert.equal(widens(change, context({}, false)), 'a policy decides what every agent may do')
    assert.notEqual(widens({ kind: 'publish-policy', policyVersion: 2 }, context()), null)
  })

  test('publish a shadow policy: always two admins, even on an empty ledger', () => {
    const change: GovernanceChange = { kind: 'publish-shadow-policy', policyVersion: 1 }
    assert.notEqual(widens(change, context({}, true)), null)
    assert.notEqual(widens(change, context({}, false)), null)
  })

  test('release a kill switch: always two admins', () => {
    const release: GovernanceChange = {
      kind: 'release-kill-switch',
      scope: 'global',
      target: null,
      reason: 'incident resolved',
    }
    assert.equal(widens(release, context()), 'releasing a kill switch lets what it stopped run again')
    assert.notEqual(widens(release, context({}, true)), null)
  })

  test('bind an identity: always two admins', () => {
    assert.equal(widens(bind, context()), why)
    assert.equal(widens(bind, context({}, true)), why)
  })

  test('register a tool action: lowering its impact widens', () => {
    assert.equal(
      widens(register('low', false), context(scale)),
      "lowers kubernetes.scale from 'high' to 'low' impact",
    )
  })

  test('register a tool action: marking it reversible widens', () => {
    assert.equal(widens(register('high', true), context(scale)), 'marks kubernetes.scale reversible')
    assert.equal(
      widens(register('medium', true), context(scale)),
      "lowers kubernetes.scale from 'high' to 'medium' impact and marks kubernetes.scale reversible",
    )
  })

  test('register a tool action: raising its impact, or keeping it, takes one admin', () => {
    assert.equal(widens(register('critical', false), context(scale)), null)
    assert.equal(widens(register('high', false), context(scale)), null)
    // marking a reversible action irreversible narrows too
    const reversible = { 'kubernetes.scale': { impact: 'high', reversible: true } } as const
    assert.equal(widens(register('high', false), context(reversible)), null)
  })

  test('register a tool action: an unregistered action counts as critical and irreversible', () => {
    assert.equal(widens(register('critical', false), context()), null)
    assert.equal(
      widens(register('high', false), context()),
      "lowers kubernetes.scale from 'critical' to 'high' impact",
    )
    assert.equal(widens(register('critical', true), context()), 'marks kubernetes.scale reversible')
  })

  test('grant a scope: over a high or critical action it widens', () => {
    assert.equal(widens(grant('kubernetes', 'scale'), context(scale)), "kubernetes.scale is 'high' impact")
    const critical = { 'kubernetes.delete': { impact: 'critical', reversible: false } } as const
    assert.equal(
      widens(grant('kubernetes', 'delete'), context(critical)),
      "kubernetes.delete is 'critical' impact",
    )
  })

  test('grant a scope: over an unregistered action it widens, as critical', () => {
    assert.equal(
      widens(grant('kubernetes', 'scale'), context()),
      "kubernetes.scale is 'critical' impact (unregistered)",
    )
  })

  test("grant a scope: naming '*' for the tool or the action widens, whatever is registered", () => {
    const reason = 'a grant over any tool or action can reach high and critical impact'
    assert.equal(widens(grant('*', 'scale'), context(scale)), reason)
    assert.equal(widens(grant('kubernetes', '*'), context(scale)), reason)
    assert.equal(widens(grant('*', '*'), context()), reason)
  })

  test('grant a scope: over a read, low or medium action it takes one admin', () => {
    for (const impact of ['read', 'low', 'medium'] as const) {
      const entries = { 'kubernetes.get': { impact, reversible: true } }
      assert.equal(widens(grant('kubernetes', 'get'), context(entries)), null, impact)
    }
  })
})
