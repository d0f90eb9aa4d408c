import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const grantRoutes = async (_app: FastifyInstance): Promise<void> => {}
