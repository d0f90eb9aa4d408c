import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError } from './errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * a read answered from the read models (projections, shadow decisions, the Merkle tree): an instance that
     * keeps none (READ_MODELS=false) answers it 503
     */
    readModel?: boolean
  }
}

/** The reason an instance keeping no read models gives for each read of them. */
export const NO_READ_MODELS =
  'this instance keeps no read models (READ_MODELS=false): it decides and answers commands and verdicts; send reads to an instance that keeps them'

/**
 * Refuses the reads of read models on an instance that keeps none, before they run: the documents it holds
 * stopped at its last start with them, and an answer from them would be stale without saying so.
 */
export const readModelsPlugin = fp<{ kept: boolean }>(
  async (app: FastifyInstance, { kept }) => {
    if (kept) return
    app.addHook('onRequest', async (request) => {
      if (request.routeOptions.config?.readModel === true) throw new ApiError('unavailable', NO_READ_MODELS)
    })
  },
  { name: 'governance-read-models' },
)
