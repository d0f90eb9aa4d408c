import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const killSwitchRoutes = async (_app: FastifyInstance): Promise<void> => {}
