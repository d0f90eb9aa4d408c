// The principals of the decider tests, as their verified tokens would state them.
import type { Actor, Role } from '../../src/domain/actor.js'
import type { Decider } from '../../src/domain/deciders/index.js'
import { DomainError } from '../../src/domain/errors.js'

/** A principal: its subject, its roles and, for an approver, the roles it may approve in. */
export const actorOf = (
  sub: string,
  roles: readonly Role[],
  approvalRoles: readonly string[] = [],
): Actor => ({
  sub,
  roles,
  approvalRoles,
})

export const actors = {
  /** the proposing agent of every test */
  agent: actorOf('agent-7', ['agent']),
  /** an agent that proposed nothing here */
  otherAgent: actorOf('agent-8', ['agent']),
  observer: actorOf('observer-1', ['observer']),
  simulator: actorOf('simulator-1', ['simulator']),
  /** an approver whose token grants the base approval role only */
  approver: actorOf('approver-1', ['approver'], ['approver']),
  /** an approver whose token's approval-roles claim adds the change board */
  boardApprover: actorOf('approver-2', ['approver'], ['approver', 'change-board']),
  /** bound to run as the proposals' executing identity */
  executor: actorOf('executor-1', ['executor']),
  /** an executor that did not start the execution */
  otherExecutor: actorOf('executor-2', ['executor']),
  admin: actorOf('admin-1', ['policy-admin']),
  secondAdmin: actorOf('admin-2', ['policy-admin']),
  auditor: actorOf('auditor-1', ['auditor']),
} as const

/**
 * The named specification a refused command cites (`details.specification` of its DomainError); throws when
 * the command is not refused at all.
 */
export const specificationRefusing = <C, S, E>(
  decider: Decider<C, S, E>,
  given: readonly E[],
  command: C,
): string | undefined => {
  const state = given.reduce(decider.evolve, decider.initialState())
  try {
    decider.decide(command, state)
  } catch (error) {
    if (!(error instanceof DomainError)) throw error
    const details = error.details as { specification?: unknown } | undefined
    return typeof details?.specification === 'string' ? details.specification : undefined
  }
  throw new Error('the command was not refused')
}
