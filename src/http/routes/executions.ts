import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { proposalView, recordedId } from '../../application/queries.js'
import { proposal } from '../../domain/deciders/index.js'
import {
  ExecutionFailed,
  ExecutionStarted,
  ExecutionSucceeded,
  Identifier,
  RollbackCompleted,
  RollbackFailed,
  RollbackStarted,
  streams,
} from '../../domain/events.js'
import { uuidv7 } from '../../domain/ids.js'
import { authorize, principalOf } from '../auth.js'
import { notFound } from '../errors.js'
import { CommandResult, errorResponses, IdempotencyHeaders } from '../schemas.js'

const ProposalParams = z.object({ proposalId: Identifier })
const ExecutionParams = ProposalParams.extend({ executionId: Identifier })
const RollbackParams = ProposalParams.extend({ rollbackId: Identifier })

const StartBody = ExecutionStarted.shape.data
  .omit({ proposalId: true, executor: true, executionId: true })
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

/** The proposal, or a 404 before the decider is asked. */
const requireProposal = async (request: FastifyRequest, proposalId: string) => {
  const view = await proposalView(request.server.runtime.store, proposalId)
  if (!view) throw notFound(`proposal ${proposalId}`)
  return view
}

/** The execution named in the path must be this proposal's: any other id is unknown here. */
const requireExecution = async (request: FastifyRequest, proposalId: string, executionId: string) => {
  const view = await requireProposal(request, proposalId)
  if (!('executionId' in view) || view.executionId !== executionId) {
    throw notFound(`execution ${executionId} of proposal ${proposalId}`)
  }
}

/** The rollback named in the path must be this proposal's latest. */
const requireRollback = async (request: FastifyRequest, proposalId: string, rollbackId: string) => {
  const view = await requireProposal(request, proposalId)
  if (!('rollbackId' in view) || view.rollbackId !== rollbackId) {
    throw notFound(`rollback ${rollbackId} of proposal ${proposalId}`)
  }
}

export const executionRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store } = app.runtime

  app.post(
    '/proposals/:proposalId/executions',
    {
      preValidation: authorize('executor'),
      schema: {
        tags: ['executions'],
        summary:
          'Start executing a proposal, citing the allow verdict (citing none is recorded as a violation)',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: StartBody,
        response: { 201: CommandResult.extend({ executionId: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId } = request.params
      await requireProposal(request, proposalId)
      const { executionId = uuidv7(), ...body } = request.body
      const stream = streams.proposal(proposalId)
      const result = await app.commands.run(request, proposal, stream, {
        type: 'StartExecution',
        executionId,
        ...body,
        executor: principalOf(request).sub,
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
        summary: 'Report that the execution succeeded, with the resource version it left',
        headers: IdempotencyHeaders,
        params: ExecutionParams,
        body: SuccessBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, executionId } = request.params
      await requireExecution(request, proposalId, executionId)
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
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
        summary: 'Report that the execution failed: the recovery clock starts',
        headers: IdempotencyHeaders,
        params: ExecutionParams,
        body: FailureBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, executionId } = request.params
      await requireExecution(request, proposalId, executionId)
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
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
        summary: "Start rolling back the proposal's execution",
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: RollbackBody,
        response: { 201: CommandResult.extend({ rollbackId: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId } = request.params
      await requireProposal(request, proposalId)
      const { rollbackId = uuidv7(), executionId } = request.body
      const stream = streams.proposal(proposalId)
      const result = await app.commands.run(request, proposal, stream, {
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
        summary: 'Report that the rollback completed: the action is recovered',
        headers: IdempotencyHeaders,
        params: RollbackParams,
        body: CompletionBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, rollbackId } = request.params
      await requireRollback(request, proposalId, rollbackId)
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
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
        summary: 'Report that the rollback failed; another rollback may be started',
        headers: IdempotencyHeaders,
        params: RollbackParams,
        body: RollbackFailureBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId, rollbackId } = request.params
      await requireRollback(request, proposalId, rollbackId)
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
        type: 'FailRollback',
        rollbackId,
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )
}
