import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const agentRoutes = async (_app: FastifyInstance): Promise<void> => {}
