import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { keys } from '../../decision/world.js'
import {
  Environment,
  Identifier,
  ImpactClass,
  ReleaseFigures,
  ReleaseGate,
  WorkflowName,
} from '../../domain/events.js'
import { checkGates } from '../../domain/release.js'
import { toolActionOf } from '../../domain/workflow.js'
import { authorize } from '../auth.js'
import { ApiError, notFound } from '../errors.js'
import { readErrors } from '../schemas.js'

const GateQuery = z
  .object({
    agentId: Identifier.optional().describe('the agent whose own runs a per-agent gate counts'),
    environment: Environment.optional().describe('only the gates for this environment (default: every one)'),
    impact: ImpactClass.optional().describe('only the gates for this impact class (default: every one)'),
  })
  .strict()

export const GateAnswerSchema = z.object({
  workflow: z.string(),
  passed: z.boolean().describe('every release gate that can apply passes; false with no policy in force'),
  policyVersion: z.number().int().nullable(),
  reason: z.string(),
  gates: z.array(
    z.object({
      gate: ReleaseGate,
      agentId: z.string().nullable().describe("whose runs were counted; null: every agent's"),
      passed: z.boolean(),
      figures: ReleaseFigures.nullable(),
      reason: z.string(),
    }),
  ),
  asOf: z.number().int().describe('the ledger position the decision service had judged up to, at least'),
})

/**
 * The release gate check: whether a workflow is released under the policy in force, with the figures. What a
 * pipeline that ships a new agent version or playbook asks after recording its branch suite, and stops on.
 */
export const releaseGateRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { decision, gate } = app.runtime

  app.get(
    '/release-gates/:workflow',
    {
      preValidation: authorize('auditor', 'policy-admin', 'simulator'),
      schema: {
        tags: ['read models'],
        operationId: 'checkReleaseGate',
        summary: 'Whether a workflow passes the release gates of the policy in force, with the figures',
        params: z.object({ workflow: WorkflowName.describe('`<tool>.<action>`') }),
        querystring: GateQuery,
        response: { 200: GateAnswerSchema, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      // the runs a pipeline just recorded count: answer only once every event in the ledger is judged
      const closed = await gate.closedBecause()
      if (closed)
        throw new ApiError('unavailable', `no release gate is judged while the gate is closed: ${closed}`)
      const { workflow } = request.params
      const { tool, action } = toolActionOf(workflow) ?? { tool: '', action: '' }
      const asOf = decision.position
      const world = decision.world()
      // a workflow is a registered tool action: of anything else there is nothing to release
      if (world.get('tool', keys.tool(tool, action)) === undefined)
        throw notFound(`workflow ${workflow} (a registered tool action)`)
      const runs = world.workflowRuns(tool, action, request.query.agentId ?? '')
      const answer = checkGates(world.policy(), runs, { tool, action, ...request.query })
      return { workflow, ...answer, gates: [...answer.gates], asOf }
    },
  )
}
