import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const executionRoutes = async (_app: FastifyInstance): Promise<void> => {}
