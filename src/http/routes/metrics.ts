import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const metricsRoutes = async (_app: FastifyInstance): Promise<void> => {}
export const metricsRoute = async (_app: FastifyInstance): Promise<void> => {}
