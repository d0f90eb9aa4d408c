import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { recordedId } from '../../application/queries.js'
import {
  ExecutionFailed,
  ExecutionStarted,
  ExecutionSucceeded,
  Identifier,
  RollbackCompleted,
  RollbackFailed,
  RollbackStarted,
} from '../../domain/events.js'
import { uuidv7 } from '../../domain/ids.js'
import { authorize } from '../auth.js'
import { CommandResult, errorResponses, IdempotencyHeaders } from '../schemas.js'
import { runOnProposal } from './proposals.js'

const ProposalParams = z.object({ proposalId: Identifier })
const ExecutionParams = ProposalParams.extend({ executionId: Identifier })
const RollbackParams = ProposalParams.extend({ rollbackId: Identifier })

const StartBody = ExecutionStarted.shape.data
  .omit({ proposalId: true, executor: true, executionId: true })
  .extend({ verdictId: z.uuid().nullable().describe("the proposal's current, live allow verdict") })
  .extend({ executionId: Identifier.optional().describe('chosen by the executor; generated when absent') })
  .strict()
const SuccessBody = ExecutionSucceeded.shape.data.omit({ proposalId: true, executionId: true })
const FailureBody = ExecutionFailed.shape.data.omit({ proposalId: true, executionId: true })
const RollbackBody = RollbackStarted.shape.data
  .omit({ proposalId: true, rollbackId: true })
  .extend({ rollbackId: Identifier.optional().describe('chosen by the executor; generated when absent') })
  .strict()
const CompletionBody = RollbackCompleted.shape.data.omit({ proposalId: true, rollbackId: true })
const RollbackFailureBody = RollbackFailed.shape.data.omit({ proposalId: true, rollbackId: true })

export const executionRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store } = app.runtime

  app.post(
    '/proposals/:proposalId/executions',
    {
      preValidation: authorize('executor'),
      schema: {
        tags: ['executions'],
        operationId: 'startExecution',
        summary:
          'Start executing a proposal, citing its live allow verdict; the gate refuses and records anything else',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: StartBody,
        response: { 201: CommandResult.extend({ executionId: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { executionId = uuidv7(), ...body } = request.body
      const result = await runOnProposal(request, request.params.proposalId, {
        type: 'StartExecution',
        executionId,
        ...body,
      })
      const recorded = await recordedId(store, result, 'executionId', executionId)
      return reply.code(201).send({ ...result, executionId: recorded })
    },
  )

  app.post(
    '/proposals/:proposalId/executions/:executionId/success',
    {
      preValidation: authorize('executor'),
      schema: {
        tags: ['executions'],
        operationId: 'reportExecutionSuccess',
        summary: 'Report that the execution succeeded, with the resource version it left',
        headers: IdempotencyHeaders,
        params: ExecutionParams,
        body: SuccessBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, executionId } = request.params
      const result = await runOnProposal(request, proposalId, {
        type: 'SucceedExecution',
        executionId,
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/executions/:executionId/failure',
    {
      preValidation: authorize('executor'),
      schema: {
        tags: ['executions'],
        operationId: 'reportExecutionFailure',
        summary: 'Report that the execution failed: the recovery clock starts',
        headers: IdempotencyHeaders,
        params: ExecutionParams,
        body: FailureBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, executionId } = request.params
      const result = await runOnProposal(request, proposalId, {
        type: 'FailExecution',
        executionId,
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/rollbacks',
    {
      preValidation: authorize('executor'),
      schema: {
        tags: ['executions'],
        operationId: 'startRollback',
        summary: "Start rolling back the proposal's execution",
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: RollbackBody,
        response: { 201: CommandResult.extend({ rollbackId: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { rollbackId = uuidv7(), executionId } = request.body
      const result = await runOnProposal(request, request.params.proposalId, {
        type: 'StartRollback',
        rollbackId,
        executionId,
      })
      const recorded = await recordedId(store, result, 'rollbackId', rollbackId)
      return reply.code(201).send({ ...result, rollbackId: recorded })
    },
  )

  app.post(
    '/proposals/:proposalId/rollbacks/:rollbackId/completion',
    {
      preValidation: authorize('executor'),
      schema: {
        tags: ['executions'],
        operationId: 'completeRollback',
        summary: 'Report that the rollback completed: the action is recovered',
        headers: IdempotencyHeaders,
        params: RollbackParams,
        body: CompletionBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, rollbackId } = request.params
      const result = await runOnProposal(request, proposalId, {
        type: 'CompleteRollback',
        rollbackId,
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/rollbacks/:rollbackId/failure',
    {
      preValidation: authorize('executor'),
      schema: {
        tags: ['executions'],
        operationId: 'reportRollbackFailure',
        summary: 'Report that the rollback failed; another rollback may be started',
        headers: IdempotencyHeaders,
        params: RollbackParams,
        body: RollbackFailureBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, rollbackId } = request.params
      const result = await runOnProposal(request, proposalId, {
        type: 'FailRollback',
        rollbackId,
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )
}
