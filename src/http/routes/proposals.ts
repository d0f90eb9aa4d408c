import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { proposalView, type VerdictView, verdictOf } from '../../application/queries.js'
import { SubmitProposalInput, submitProposal } from '../../application/submit.js'
import { proposal } from '../../domain/deciders/index.js'
import {
  ApprovalGranted,
  Identifier,
  ProposalSubmitted,
  RollbackTested,
  SimulationRecorded,
  streams,
  VerdictIssued,
} from '../../domain/events.js'
import { uuidv7 } from '../../domain/ids.js'
import type { StoredEvent } from '../../store/port.js'
import { authorize, hasRole, principalOf } from '../auth.js'
import { idempotencyOf, sameRequest } from '../commands.js'
import { forbidden, notFound } from '../errors.js'
import { CommandResult, errorResponses, IdempotencyHeaders, summarize } from '../schemas.js'

const ProposalParams = z.object({ proposalId: Identifier })

const SimulationBody = SimulationRecorded.shape.data
  .omit({ proposalId: true, simulatedBy: true, simulationId: true })
  .extend({ simulationId: Identifier.optional() })
const RollbackTestBody = RollbackTested.shape.data.omit({ proposalId: true })
const ApprovalBody = ApprovalGranted.shape.data
  .pick({ planHash: true })
  .extend({ role: Identifier.default('approver') })
  .strict()
const WithdrawBody = z.object({ reason: z.string().min(1).max(2000) }).strict()

export const VerdictViewSchema = VerdictIssued.shape.data.extend({
  position: z.number().int(),
  revoked: z.boolean(),
  expired: z.boolean(),
})

const ProposalResponse = z.object({
  proposal: ProposalSubmitted.shape.data,
  status: z.string(),
  simulations: z.array(SimulationRecorded.shape.data),
  rollbackTests: z.array(RollbackTested.shape.data),
  approvals: z.array(ApprovalGranted.shape.data),
  verdict: VerdictViewSchema.nullable(),
  executionId: z.string().nullable(),
  rollbackId: z.string().nullable(),
  violation: z.string().nullable(),
})

const WaitQuery = z.object({
  wait: z.coerce.number().int().min(0).max(300).default(0).describe('seconds to wait for a newer verdict'),
  afterRevision: z.coerce
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('wait for a verdict with a higher revision'),
})

/** The proposal, or a 404. */
const existingProposal = async (request: FastifyRequest, proposalId: string) => {
  const view = await proposalView(request.server.runtime.store, proposalId)
  if (!view) throw notFound(`proposal ${proposalId}`)
  return view
}

const requireOwnerOr = (
  request: FastifyRequest,
  agentId: string,
  ...roles: Parameters<typeof hasRole>[1][]
) => {
  const principal = principalOf(request)
  if (principal.sub === agentId && hasRole(principal, 'agent')) return
  if (roles.length > 0 && hasRole(principal, ...roles)) return
  throw forbidden(`only agent ${agentId}${roles.length ? ` or ${roles.join(', ')}` : ''} may do this`)
}

/** The roles that read any proposal, as each acts on proposals: approve, simulate, execute, govern, audit. */
const PROPOSAL_READERS = ['approver', 'simulator', 'executor', 'policy-admin', 'auditor'] as const

/**
 * Need to know: a proposal's plan, evidence and verdict are read by the agent that proposed it and by the
 * roles that act on proposals, never by another agent (nor by an observer, refused by role before this).
 */
const requireProposalReader = (request: FastifyRequest, agentId: unknown) => {
  const principal = principalOf(request)
  if (hasRole(principal, ...PROPOSAL_READERS)) return
  if (principal.sub === agentId && hasRole(principal, 'agent')) return
  throw forbidden(
    `an agent reads only its own proposals, and this one is another agent's; any proposal is read by ${PROPOSAL_READERS.join(', ')}`,
  )
}

/** Resolves once a verdict newer than `afterRevision` is in the ledger, or after `seconds`; 404 for no proposal. */
const waitForVerdict = async (
  request: FastifyRequest,
  proposalId: string,
  afterRevision: number,
  seconds: number,
): Promise<{ verdict: VerdictView | null; timedOut: boolean }> => {
  const { store, tail } = request.server.runtime
  const newer = (v: VerdictView | null) => v !== null && v.revision > afterRevision
  const stream = streams.proposal(proposalId)
  let listener: ((batch: readonly StoredEvent[]) => void) | undefined
  const arrived = new Promise<void>((resolve) => {
    listener = (batch) => {
      if (batch.some((e) => e.stream === stream && e.type === 'VerdictIssued')) resolve()
    }
    tail.on('events', listener)
  })
  try {
    const deadline = Date.now() + seconds * 1000
    for (;;) {
      // one read of the stream tells both whether the proposal exists and its verdict
      const events = await store.readStream(stream)
      if (events.length === 0) throw notFound(`proposal ${proposalId}`)
      requireProposalReader(request, (events[0]?.data as { agentId?: unknown } | undefined)?.agentId)
      const verdict = verdictOf(events)
      const remaining = deadline - Date.now()
      if (newer(verdict) || remaining <= 0) return { verdict, timedOut: !newer(verdict) }
      await Promise.race([arrived, new Promise((r) => setTimeout(r, Math.min(remaining, 1000)))])
    }
  } finally {
    if (listener) tail.off('events', listener)
  }
}

export const proposalRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, config } = app.runtime

  app.post(
    '/proposals',
    {
      preValidation: authorize('agent'),
      schema: {
        tags: ['proposals'],
        summary: 'Submit a proposal of a production action (the ledger computes its plan hash)',
        headers: IdempotencyHeaders,
        body: SubmitProposalInput,
        response: {
          201: CommandResult.extend({ proposalId: z.string(), planHash: z.string() }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { proposalId, planHash, result } = await submitProposal(
        store,
        principalOf(request),
        request.body,
        {
          correlationId: request.id,
          ...idempotencyOf(request),
        },
      )
      sameRequest(request, result)
      return reply
        .code(201)
        .send({ duplicate: result.duplicate, events: summarize(result.events), proposalId, planHash })
    },
  )

  app.get(
    '/proposals/:proposalId',
    {
      preValidation: authorize('agent', ...PROPOSAL_READERS),
      schema: {
        tags: ['proposals'],
        summary: 'A proposal with its evidence and its current verdict, every check with its reason',
        params: ProposalParams,
        response: { 200: ProposalResponse, ...errorResponses },
      },
    },
    async (request) => {
      const view = await proposalView(store, request.params.proposalId)
      if (!view) throw notFound(`proposal ${request.params.proposalId}`)
      requireProposalReader(request, view.proposal.agentId)
      return {
        proposal: view.proposal,
        status: view.status,
        simulations: [...view.simulations],
        rollbackTests: [...view.rollbackTests],
        approvals: [...view.approvals],
        verdict: view.verdictDetail,
        executionId: 'executionId' in view ? view.executionId : null,
        rollbackId: 'rollbackId' in view ? view.rollbackId : null,
        violation: view.violation,
      }
    },
  )

  app.get(
    '/proposals/:proposalId/verdict',
    {
      preValidation: authorize('agent', ...PROPOSAL_READERS),
      schema: {
        tags: ['proposals'],
        summary: 'The current verdict; with ?wait=N, waits up to N seconds for one newer than ?afterRevision',
        params: ProposalParams,
        querystring: WaitQuery,
        response: {
          200: z.object({ verdict: VerdictViewSchema.nullable(), timedOut: z.boolean() }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      return waitForVerdict(
        request,
        request.params.proposalId,
        request.query.afterRevision,
        Math.min(request.query.wait, config.WAIT_MAX_SECONDS),
      )
    },
  )

  app.post(
    '/proposals/:proposalId/simulations',
    {
      preValidation: authorize('agent', 'simulator'),
      schema: {
        tags: ['evidence'],
        summary: 'Attach counterfactual simulation results for a plan hash',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: SimulationBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId } = request.params
      const view = await existingProposal(request, proposalId)
      requireOwnerOr(request, view.proposal.agentId, 'simulator')
      const { simulationId = uuidv7(), ...body } = request.body
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
        type: 'AttachSimulation',
        ...body,
        simulationId,
        simulatedBy: principalOf(request).sub,
      })
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/rollback-tests',
    {
      preValidation: authorize('agent', 'simulator', 'executor'),
      schema: {
        tags: ['evidence'],
        summary: 'Attach a tested rollback: playbook, test run, expected recovery time and kill switch',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: RollbackTestBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId } = request.params
      const view = await existingProposal(request, proposalId)
      requireOwnerOr(request, view.proposal.agentId, 'simulator', 'executor')
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
        type: 'AttachRollbackTest',
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/approvals',
    {
      preValidation: authorize('approver'),
      schema: {
        tags: ['evidence'],
        summary: 'Approve a proposal, bound to its plan hash (never by its proposer)',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: ApprovalBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId } = request.params
      const view = await existingProposal(request, proposalId)
      const approver = principalOf(request).sub
      if (approver === view.proposal.agentId || approver === view.proposal.executingIdentity) {
        throw forbidden('no self-approval: the proposer and the executing identity cannot approve')
      }
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
        type: 'Approve',
        approver,
        ...request.body,
      })
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/withdrawal',
    {
      preValidation: authorize('agent', 'policy-admin'),
      schema: {
        tags: ['proposals'],
        summary: 'Withdraw an open proposal',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        body: WithdrawBody,
        response: { 201: CommandResult, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { proposalId } = request.params
      const view = await existingProposal(request, proposalId)
      requireOwnerOr(request, view.proposal.agentId, 'policy-admin')
      const result = await app.commands.run(request, proposal, streams.proposal(proposalId), {
        type: 'Withdraw',
        reason: request.body.reason,
      })
      return reply.code(201).send(result)
    },
  )
}
