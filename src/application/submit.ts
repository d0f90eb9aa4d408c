import type { z } from 'zod'
import type { Principal } from '../auth/tokens.js'
import { planHashOf } from '../domain/canonical.js'
import { proposal } from '../domain/deciders/index.js'
import { DomainError } from '../domain/errors.js'
import { Identifier, ProposalSubmitted, streams } from '../domain/events.js'
import { uuidv7 } from '../domain/ids.js'
import type { AppendResult, EventStore } from '../store/port.js'
import { handle } from './handle.js'
import { agentLevel } from './queries.js'

/** What an agent submits, over HTTP or Kafka: the ledger computes the plan hash, never the caller. */
export const SubmitProposalInput = ProposalSubmitted.shape.data
  .omit({ planHash: true, proposalId: true })
  .extend({ proposalId: Identifier.optional().describe('chosen by the agent; generated when absent') })
export type SubmitProposalInput = z.infer<typeof SubmitProposalInput>

export interface Submitted {
  readonly proposalId: string
  readonly planHash: string
  readonly result: AppendResult
}

/** Submits a proposal for an authenticated agent, which may only propose as itself. */
export const submitProposal = async (
  store: EventStore,
  principal: Principal,
  input: SubmitProposalInput,
  options: {
    readonly idempotencyKey?: string
    readonly requestDigest?: string
    readonly correlationId?: string | null
  } = {},
): Promise<Submitted> => {
  if (!principal.roles.includes('agent')) throw new DomainError('forbidden', 'only an agent may propose')
  const { proposalId = uuidv7(), ...body } = input
  if (body.agentId !== principal.sub) throw new DomainError('forbidden', 'an agent proposes only as itself')
  const level = await agentLevel(store, body.agentId, body.environment)
  const result = await handle(
    store,
    proposal,
    streams.proposal(proposalId),
    { type: 'SubmitProposal', proposalId, ...body, context: { agentLevel: level } },
    {
      actor: principal.sub,
      correlationId: options.correlationId ?? null,
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
      ...(options.requestDigest ? { requestDigest: options.requestDigest } : {}),
    },
  )
  // a retry returns what the first call recorded, including the proposal id generated then
  const recorded = result.duplicate
    ? (result.events[0]?.data as { proposalId: string; planHash: string } | undefined)
    : undefined
  return recorded
    ? { proposalId: recorded.proposalId, planHash: recorded.planHash, result }
    : { proposalId, planHash: planHashOf(body.plan), result }
}
