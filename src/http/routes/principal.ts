import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { Role } from '../../auth/tokens.js'
import { principalOf } from '../auth.js'
import { readErrors } from '../schemas.js'

const PrincipalResponse = z.object({
  sub: z.string().describe('the token subject'),
  roles: z.array(Role).describe('what the token grants, as the service read it (whatever the roles claim)'),
  approvalRoles: z.array(z.string()).describe('the roles an approver may approve in; empty for others'),
})

/** Who the bearer token stands for, as the service verified it: what a client shows its user, never trusts. */
export const principalRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()

  app.get(
    '/principal',
    {
      schema: {
        tags: ['tokens'],
        operationId: 'getPrincipal',
        summary: 'The verified principal of the bearer token: its subject and roles (any valid token)',
        response: { 200: PrincipalResponse, ...readErrors(401, 429) },
      },
    },
    async (request) => {
      const { sub, roles, approvalRoles } = principalOf(request)
      return { sub, roles: [...roles], approvalRoles: [...approvalRoles] }
    },
  )
}
