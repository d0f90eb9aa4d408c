import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const ledgerRoutes = async (_app: FastifyInstance): Promise<void> => {}
