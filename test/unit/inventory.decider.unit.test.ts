import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { InventoryCommand, InventoryEvent } from '../../src/domain/deciders/inventory.js'
import * as inventory from '../../src/domain/deciders/inventory.js'
import { actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, agent, approver } = actors

const registration = {
  tool: 'kubernetes',
  action: 'scale',
  impact: 'high',
  reversible: true,
  description: 'change the replica count',
} as const
/** behind a registration that lowers nothing, one admin; behind one that does, two */
const alone = { requestedBy: admin.sub, approvedBy: null }
const withSecond = { requestedBy: admin.sub, approvedBy: 'admin-2' }
const register: InventoryCommand = {
  type: 'RegisterToolAction',
  actor: admin,
  ...registration,
  approval: withSecond,
}
const registered: InventoryEvent = { type: 'ToolActionRegistered', data: registration }

describe('inventory decider', () => {
  test('secondAdminBehind: a registration that lowers the impact or marks it reversible takes two admins', () => {
    // unregistered counts as critical and irreversible: registering it as high and reversible lowers both
    spec(inventory)
      .given([])
      .when({ ...register, approval: alone })
      .thenThrows(
        'forbidden',
        /lowers kubernetes.scale from 'critical' to 'high' impact and marks kubernetes.scale reversible/,
      )
    spec(inventory)
      .given([registered])
      .when({ ...register, impact: 'low', approval: alone })
      .thenThrows('forbidden', /needs a second, distinct policy admin/)
  })

  test('a registration that raises the impact or marks it irreversible takes one admin', () => {
    spec(inventory)
      .given([registered])
      .when({ ...register, impact: 'critical', reversible: false, approval: alone })
      .then([
        { type: 'ToolActionRegistered', data: { ...registration, impact: 'critical', reversible: false } },
      ])
    spec(inventory)
      .given([])
      .when({ ...register, impact: 'critical', reversible: false, approval: alone })
      .then([
        { type: 'ToolActionRegistered', data: { ...registration, impact: 'critical', reversible: false } },
      ])
  })

  test('a tool action is registered with its impact and reversibility', () => {
    spec(inventory).given([]).when(register).then([registered])
  })

  test('an identical re-registration is an idempotent no-op', () => {
    spec(inventory).given([registered]).when(register).then([])
  })

  test('a change of impact is recorded', () => {
    spec(inventory)
      .given([registered])
      .when({ ...register, impact: 'critical' })
      .then([{ type: 'ToolActionRegistered', data: { ...registration, impact: 'critical' } }])
  })

  test('a change of reversibility is recorded', () => {
    spec(inventory)
      .given([registered])
      .when({ ...register, reversible: false })
      .then([{ type: 'ToolActionRegistered', data: { ...registration, reversible: false } }])
  })

  test('the latest registration is the one compared', () => {
    const changed: InventoryEvent = {
      type: 'ToolActionRegistered',
      data: { ...registration, impact: 'critical' },
    }
    spec(inventory).given([registered, changed]).when(register).then([registered])
  })

  test('adminGoverns: an agent registering (or lowering) a tool action is refused', () => {
    for (const actor of [agent, approver]) {
      const command: InventoryCommand = { ...register, actor, impact: 'read' }
      spec(inventory)
        .given([registered])
        .when(command)
        .thenThrows('forbidden', new RegExp(`${actor.sub} holds no policy-admin role`))
      assert.equal(specificationRefusing(inventory, [registered], command), 'adminGoverns')
    }
  })
})
