import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const systemRoutes = async (_app: FastifyInstance): Promise<void> => {}
