import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const policyRoutes = async (_app: FastifyInstance): Promise<void> => {}
