import type { FastifyInstance } from 'fastify'

// PLACEHOLDER: being written now
export const inventoryRoutes = async (_app: FastifyInstance): Promise<void> => {}
