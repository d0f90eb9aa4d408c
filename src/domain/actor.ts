import { z } from 'zod'

/** What a token lets its subject do; the rules never take a role from a request body. */
export const Role = z.enum([
  'agent',
  'observer',
  'simulator',
  'approver',
  'executor',
  'policy-admin',
  'auditor',
])
export type Role = z.infer<typeof Role>
export const ROLES: readonly Role[] = Role.options

/** The role every approver approves in; a token's approval-roles claim may add others (a change board, say). */
export const BASE_APPROVAL_ROLE = 'approver'

/** The authenticated principal behind a command: everything here comes from its verified token. */
export interface Actor {
  readonly sub: string
  readonly roles: readonly Role[]
  /** the roles this principal may approve in: the base role for an approver, plus its token's claim */
  readonly approvalRoles: readonly string[]
}

export const holds = (actor: Pick<Actor, 'roles'>, ...roles: Role[]): boolean =>
  actor.roles.some((r) => roles.includes(r))
