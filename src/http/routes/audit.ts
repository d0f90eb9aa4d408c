import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const auditRoutes = async (_app: FastifyInstance): Promise<void> => {}
