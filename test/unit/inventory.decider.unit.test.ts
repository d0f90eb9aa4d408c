import { describe, test } from 'node:test'
import type { InventoryCommand, InventoryEvent } from '../../src/domain/deciders/inventory.js'
import * as inventory from '../../src/domain/deciders/inventory.js'
import { spec } from '../support/decider-spec.js'

const registration = {
  tool: 'kubernetes',
  action: 'scale',
  impact: 'high',
  reversible: true,
  description: 'change the replica count',
} as const
const register: InventoryCommand = { type: 'RegisterToolAction', ...registration }
const registered: InventoryEvent = { type: 'ToolActionRegistered', data: registration }

describe('inventory decider', () => {
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
})
