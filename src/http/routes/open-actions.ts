import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const openActionRoutes = async (_app: FastifyInstance): Promise<void> => {}
