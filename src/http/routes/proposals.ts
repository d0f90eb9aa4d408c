import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import {
  type ProposalRequest,
  proposalCommand,
  refusalIn,
  SubmitProposalInput,
  submitProposal,
} from '../../application/proposals.js'
import { proposalView, type VerdictView, verdictOf } from '../../application/queries.js'
import { BASE_APPROVAL_ROLE } from '../../domain/actor.js'
import {
  ApprovalGranted,
  Identifier,
  ProposalSubmitted,
  RollbackTested,
  SimulationRecorded,
  SimulationRequested,
  streams,
  VerdictIssued,
} from '../../domain/events.js'
import { uuidv7 } from '../../domain/ids.js'
import type { AppendResult } from '../../store/port.js'
import { authorize, hasRole, principalOf } from '../auth.js'
import { actorOf, answerOf, optionsOf } from '../commands.js'
import { ConnectionSlots, clientGone } from '../connections.js'
import { ApiError, forbidden, notFound } from '../errors.js'
import { type LedgerWait, LedgerWaits } from '../ledger-waits.js'
import { busyResponses, CommandResult, errorResponses, IdempotencyHeaders, readErrors } from '../schemas.js'
import { VERDICT_EVENT_TYPES } from './verdict-stream.js'

const ProposalParams = z.object({ proposalId: Identifier })

const SimulationRequestBody = SimulationRequested.shape.data
  .omit({ proposalId: true, requestId: true })
  .extend({
    requestId: Identifier.optional().describe('chosen by the agent; generated when absent'),
    branchKinds: SimulationRequested.shape.data.shape.branchKinds.default([]),
  })
  .strict()
const SimulationBody = SimulationRecorded.shape.data
  .omit({ proposalId: true, simulatedBy: true, simulationId: true })
  .extend({ simulationId: Identifier.optional() })
  .strict()
const RollbackTestBody = RollbackTested.shape.data.omit({ proposalId: true, testedBy: true }).strict()
const ApprovalBody = ApprovalGranted.shape.data
  .pick({ actionDigest: true })
  .extend({
    role: Identifier.default(BASE_APPROVAL_ROLE).describe(
      "one of the approval roles the approver's token grants (its approval-roles claim)",
    ),
  })
  .strict()
const WithdrawBody = z
  .object({
    reason: z.string().min(1).max(2000),
    supersededBy: Identifier.optional().describe(
      'the proposal of the same agent that replaces this one: the withdrawal then counts as superseded',
    ),
  })
  .strict()

export const VerdictViewSchema = VerdictIssued.shape.data.extend({
  position: z.number().int(),
  revoked: z.boolean(),
  expired: z.boolean(),
})

const ProposalResponse = z.object({
  proposal: ProposalSubmitted.shape.data,
  status: z.string(),
  simulationRequests: z.array(SimulationRequested.shape.data),
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
    .describe(
      'wait for a verdict with a higher revision; one beyond the current revision waits for the next verdict',
    ),
})

/** `?wait`, or the header `Prefer: wait=N`: a command on a proposal answers with the verdict in force after it. */
const VerdictWanted = z.object({
  wait: z
    .string()
    .regex(/^(|true|\d{1,3})$/, 'empty, true, or seconds')
    .optional()
    .describe(
      'answer with the verdict in force once the command is recorded (the one it drew, decided in the same commit); the header Prefer: wait=N asks the same',
    ),
})

const WithVerdict = CommandResult.extend({
  verdict: VerdictViewSchema.nullable()
    .optional()
    .describe('with ?wait or Prefer: wait=N: the verdict in force once the command was recorded'),
  verdictWithheld: z
    .string()
    .optional()
    .describe(
      'with ?wait or Prefer: wait=N, instead of the verdict: why none is served now (the gate closed while the command was recorded); read it with GET .../verdict once the service is ready',
    ),
})

/** Whether the request asks for the verdict with the answer: `?wait`, or a `wait` preference (RFC 7240). */
const verdictWanted = (request: FastifyRequest): boolean => {
  if ((request.query as { wait?: string } | undefined)?.wait !== undefined) return true
  const prefer = request.headers.prefer
  const preferences = (Array.isArray(prefer) ? prefer.join(',') : (prefer ?? '')).split(',')
  return preferences.some((p) => /^\s*wait\s*=\s*\d+\s*(;|$)/i.test(p))
}

/**
 * The proposal's verdict once a command is recorded: the one the command drew, appended in its commit and told
 * with its result, with what the ledger recorded on the proposal after it (read from that version on: usually
 * nothing); else (it drew none, or it was a retry) the one in force.
 */
const verdictAfter = async (
  request: FastifyRequest,
  proposalId: string,
  result: AppendResult,
): Promise<VerdictView | null> => {
  const stream = streams.proposal(proposalId)
  const drawn = result.answers?.filter((e) => e.stream === stream && e.type === 'VerdictIssued').at(-1)
  if (!drawn) return verdictSince(request, proposalId, 0, null)
  // a later call of the same group commit (a kill switch) may have revoked it: the events after it say so
  return verdictSince(request, proposalId, drawn.streamVersion, verdictOf([drawn]))
}

/** A verdict known as of a version of the proposal's stream, brought up to the ledger by the events after it. */
const verdictSince = async (
  request: FastifyRequest,
  proposalId: string,
  version: number,
  verdict: VerdictView | null,
): Promise<VerdictView | null> =>
  verdictOf(await request.server.runtime.store.readStream(streams.proposal(proposalId), version + 1), verdict)

/**
 * The command's answer, with the verdict in force after it when the request asks for it. A verdict is served only
 * while the gate is open: a command that asks for one is refused before anything is done while the gate is closed
 * (`refuseWhileGateClosed`), and one whose gate closed while it was recorded is answered without it, saying why.
 */
const answerWithVerdict = async (request: FastifyRequest, proposalId: string, result: AppendResult) => {
  const answer = answerOf(request, result)
  if (!verdictWanted(request)) return answer
  const closed = await request.server.runtime.gate.closedBecause()
  if (closed)
    return { ...answer, verdictWithheld: `no verdict is served while the gate is closed: ${closed}` }
  return { ...answer, verdict: await verdictAfter(request, proposalId, result) }
}

/** A command that asks for its verdict is refused, before anything is done, while no verdict can be served. */
const refuseWhileGateClosed = async (request: FastifyRequest): Promise<void> => {
  if (verdictWanted(request)) await requireGateOpen(request)
}

/**
 * Runs a command on a proposal for the request's principal: the one path every proposal command takes. An
 * evidence command (`verdict`) answers with the verdict in force after it when the request asks for it.
 */
export const runOnProposal = async (
  request: FastifyRequest,
  proposalId: string,
  command: ProposalRequest,
  verdict: 'verdict' | 'no-verdict' = 'no-verdict',
) => {
  const { store, gate } = request.server.runtime
  if (verdict === 'verdict') await refuseWhileGateClosed(request)
  const result = await proposalCommand(store, gate, actorOf(request), proposalId, command, optionsOf(request))
  const refused = refusalIn(result)
  if (refused) {
    answerOf(request, result)
    throw refused
  }
  return verdict === 'verdict' ? answerWithVerdict(request, proposalId, result) : answerOf(request, result)
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

/** A verdict is served only while the service can vouch for it: 503, saying why, while the gate is closed. */
const requireGateOpen = async (request: FastifyRequest): Promise<void> => {
  const closed = await request.server.runtime.gate.closedBecause()
  if (closed) throw new ApiError('unavailable', `no verdict is served while the gate is closed: ${closed}`)
}

/** How soon a long-poll refused for want of a slot may try again. */
const WAIT_RETRY_AFTER_SECONDS = 1

/** What a long-poll learned: the verdict, whether its time ran out first, and the stream version it has read. */
interface Waited {
  readonly verdict: VerdictView | null
  readonly timedOut: boolean
  /** the proposal's events up to this version are folded into `verdict` */
  readonly version: number
}

/**
 * Resolves once a verdict newer than `afterRevision` is in the ledger, or when the wait is over (its time,
 * its client gone, the server closing); 404 for no proposal. The proposal is read once; after that, the verdict
 * follows the verdict events the ledger tail hands the wait, without reading the stream again. A revision beyond
 * the current one waits for the next verdict.
 */
const waitForVerdict = async (
  request: FastifyRequest,
  proposalId: string,
  afterRevision: number,
  wait: LedgerWait,
): Promise<Waited> => {
  // one read of the stream tells whether the proposal exists, whose it is, and its verdict
  const events = await request.server.runtime.store.readStream(streams.proposal(proposalId))
  if (events.length === 0) throw notFound(`proposal ${proposalId}`)
  requireProposalReader(request, (events[0]?.data as { agentId?: unknown } | undefined)?.agentId)
  let verdict = verdictOf(events)
  // the wait was registered before the read: what it was handed up to the read's last event is in the read
  let version = events.at(-1)?.streamVersion ?? 0
  const after = Math.min(afterRevision, verdict?.revision ?? 0)
  for (;;) {
    if (verdict !== null && verdict.revision > after) return { verdict, timedOut: false, version }
    const came = await wait.next()
    if (came === null) return { verdict, timedOut: true, version }
    const unseen = came.filter((e) => e.streamVersion > version)
    verdict = verdictOf(unseen, verdict)
    version = unseen.at(-1)?.streamVersion ?? version
  }
}

/**
 * The answer of a long-poll once the gate is known to be open: the verdict it followed, brought up to the ledger
 * itself by the events recorded after the last one it read or was handed (none, unless the tail is behind the
 * ledger, as it may be for a moment under PostgreSQL or after the tail restarted).
 */
const servedVerdict = async (
  request: FastifyRequest,
  proposalId: string,
  waited: Waited,
): Promise<{ verdict: VerdictView | null; timedOut: boolean }> => {
  const verdict = await verdictSince(request, proposalId, waited.version, waited.verdict)
  const newer = verdict?.revision !== waited.verdict?.revision
  return { verdict, timedOut: waited.timedOut && !newer }
}

export const proposalRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, config, tail } = app.runtime
  const waits = new LedgerWaits(VERDICT_EVENT_TYPES)
  const slots = new ConnectionSlots({
    what: 'verdict waits',
    perPrincipal: config.WAIT_MAX_PER_PRINCIPAL,
    total: config.WAIT_MAX_TOTAL,
    retryAfterSeconds: WAIT_RETRY_AFTER_SECONDS,
  })
  // one listener feeds every waiting request; a closing server answers them at once
  tail.on('events', waits.feed)
  app.addHook('preClose', async () => {
    waits.closeAll()
    // the answers are written within this turn of the event loop, before the server drops connections
    await new Promise((done) => setImmediate(done))
  })
  app.addHook('onClose', async () => void tail.off('events', waits.feed))

  app.post(
    '/proposals',
    {
      preValidation: authorize('agent'),
      schema: {
        tags: ['proposals'],
        operationId: 'submitProposal',
        summary: 'Submit a proposal of a production action (the ledger computes its plan hash)',
        headers: IdempotencyHeaders,
        querystring: VerdictWanted,
        body: SubmitProposalInput,
        response: {
          201: WithVerdict.extend({
            proposalId: z.string(),
            planHash: z.string(),
            actionDigest: z.string(),
          }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      await refuseWhileGateClosed(request)
      const submitted = await submitProposal(store, actorOf(request), request.body, optionsOf(request))
      const { proposalId, planHash, actionDigest, result } = submitted
      const answer = await answerWithVerdict(request, proposalId, result)
      return reply.code(201).send({ ...answer, proposalId, planHash, actionDigest })
    },
  )

  app.get(
    '/proposals/:proposalId',
    {
      preValidation: authorize('agent', ...PROPOSAL_READERS),
      schema: {
        tags: ['proposals'],
        operationId: 'getProposal',
        summary: 'A proposal with its evidence and its current verdict, every check with its reason',
        params: ProposalParams,
        response: { 200: ProposalResponse, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      // the gate first: no proposal is served while the service cannot vouch for its verdicts
      await requireGateOpen(request)
      const view = await proposalView(store, request.params.proposalId)
      if (!view) throw notFound(`proposal ${request.params.proposalId}`)
      requireProposalReader(request, view.proposal.agentId)
      return {
        proposal: view.proposal,
        status: view.status,
        simulationRequests: [...view.simulationRequests],
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
        operationId: 'getVerdict',
        summary: 'The current verdict; with ?wait=N, waits up to N seconds for one newer than ?afterRevision',
        params: ProposalParams,
        querystring: WaitQuery,
        response: {
          200: z.object({ verdict: VerdictViewSchema.nullable(), timedOut: z.boolean() }),
          ...readErrors(400, 401, 403, 404),
          ...busyResponses,
        },
      },
    },
    async (request, reply) => {
      const { proposalId } = request.params
      const { afterRevision, wait } = request.query
      const seconds = Math.min(wait, config.WAIT_MAX_SECONDS)
      const release = seconds > 0 ? slots.take(principalOf(request).sub) : () => {}
      const ledgerWait = waits.wait(streams.proposal(proposalId), seconds * 1000, clientGone(reply))
      try {
        const waited = await waitForVerdict(request, proposalId, afterRevision, ledgerWait)
        // served only while the gate is open, however long the wait was, and as the ledger holds it then
        await requireGateOpen(request)
        return await servedVerdict(request, proposalId, waited)
      } finally {
        ledgerWait.end()
        release()
      }
    },
  )

  app.post(
    '/proposals/:proposalId/simulation-requests',
    {
      preValidation: authorize('agent'),
      schema: {
        tags: ['evidence'],
        operationId: 'requestSimulation',
        summary: "Request a simulation of the proposal's action (its agent, from the 'simulate' rung up)",
        headers: IdempotencyHeaders,
        params: ProposalParams,
        querystring: VerdictWanted,
        body: SimulationRequestBody,
        response: { 201: WithVerdict.extend({ requestId: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { requestId = uuidv7(), ...body } = request.body
      const result = await runOnProposal(
        request,
        request.params.proposalId,
        {
          type: 'RequestSimulation',
          requestId,
          ...body,
        },
        'verdict',
      )
      return reply.code(201).send({ ...result, requestId })
    },
  )

  app.post(
    '/proposals/:proposalId/simulations',
    {
      preValidation: authorize('simulator'),
      schema: {
        tags: ['evidence'],
        operationId: 'recordSimulation',
        summary: 'Record the results of a requested simulation (the simulation harness only)',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        querystring: VerdictWanted,
        body: SimulationBody,
        response: { 201: WithVerdict, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { simulationId = uuidv7(), ...body } = request.body
      const result = await runOnProposal(
        request,
        request.params.proposalId,
        {
          type: 'AttachSimulation',
          simulationId,
          ...body,
        },
        'verdict',
      )
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/rollback-tests',
    {
      preValidation: authorize('simulator', 'executor'),
      schema: {
        tags: ['evidence'],
        operationId: 'recordRollbackTest',
        summary:
          'Record a tested rollback (the simulator or executor that ran it): playbook, test run, expected recovery time and kill switch',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        querystring: VerdictWanted,
        body: RollbackTestBody,
        response: { 201: WithVerdict, ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await runOnProposal(
        request,
        request.params.proposalId,
        {
          type: 'AttachRollbackTest',
          ...request.body,
        },
        'verdict',
      )
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/approvals',
    {
      preValidation: authorize('approver'),
      schema: {
        tags: ['evidence'],
        operationId: 'approveProposal',
        summary:
          "Approve a proposal's action, bound to its digest, in a role the approver's token grants (never by its proposer or a possible executor)",
        headers: IdempotencyHeaders,
        params: ProposalParams,
        querystring: VerdictWanted,
        body: ApprovalBody,
        response: { 201: WithVerdict, ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await runOnProposal(
        request,
        request.params.proposalId,
        {
          type: 'Approve',
          ...request.body,
        },
        'verdict',
      )
      return reply.code(201).send(result)
    },
  )

  app.post(
    '/proposals/:proposalId/withdrawal',
    {
      preValidation: authorize('agent', 'policy-admin'),
      schema: {
        tags: ['proposals'],
        operationId: 'withdrawProposal',
        summary: 'Withdraw an open proposal (its agent, or a policy admin)',
        headers: IdempotencyHeaders,
        params: ProposalParams,
        querystring: VerdictWanted,
        body: WithdrawBody,
        response: { 201: WithVerdict, ...errorResponses },
      },
    },
    async (request, reply) => {
      const result = await runOnProposal(
        request,
        request.params.proposalId,
        {
          type: 'Withdraw',
          ...request.body,
        },
        'verdict',
      )
      return reply.code(201).send(result)
    },
  )
}
