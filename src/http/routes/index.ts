import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { agentRoutes } from './agents.js'
import { auditRoutes } from './audit.js'
import { checkpointPublicRoutes, checkpointRoutes } from './checkpoints.js'
import { executionRoutes } from './executions.js'
import { governanceRoutes } from './governance.js'
import { grantRoutes } from './grants.js'
import { inventoryRoutes } from './inventory.js'
import { killSwitchRoutes } from './kill-switches.js'
import { ledgerRoutes } from './ledger.js'
import { metricsRoute, metricsRoutes } from './metrics.js'
import { observationRoutes } from './observations.js'
import { openActionRoutes } from './open-actions.js'
import { policyRoutes } from './policies.js'
import { principalRoutes } from './principal.js'
import { proposalRoutes } from './proposals.js'
import { releaseGateRoutes } from './release-gates.js'
import { shadowPolicyRoutes } from './shadow-policies.js'
import { survivalRoutes } from './survival.js'
import { systemRoutes } from './system.js'
import { tokenRevocationRoutes } from './token-revocations.js'
import { verdictStreamRoutes } from './verdict-stream.js'

/** Routes under /v1, behind authentication: one plugin per resource. */
export const apiRoutes = async (api: FastifyInstance): Promise<void> => {
  for (const routes of [
    proposalRoutes,
    executionRoutes,
    observationRoutes,
    agentRoutes,
    grantRoutes,
    inventoryRoutes,
    policyRoutes,
    releaseGateRoutes,
    shadowPolicyRoutes,
    killSwitchRoutes,
    governanceRoutes,
    openActionRoutes,
    metricsRoutes,
    survivalRoutes,
    auditRoutes,
    ledgerRoutes,
    checkpointRoutes,
    verdictStreamRoutes,
    tokenRevocationRoutes,
    principalRoutes,
  ]) {
    await api.register(routes)
  }
}

/** Routes reachable without a token: health, readiness, the public keys, the published checkpoints. */
export const publicRoutes = fp(
  async (app: FastifyInstance): Promise<void> => {
    await app.register(systemRoutes)
    await app.register(checkpointPublicRoutes)
  },
  { name: 'governance-public-routes' },
)
export { metricsRoute }
