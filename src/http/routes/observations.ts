import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const observationRoutes = async (_app: FastifyInstance): Promise<void> => {}
