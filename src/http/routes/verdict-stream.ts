import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const verdictStreamRoutes = async (_app: FastifyInstance): Promise<void> => {}
