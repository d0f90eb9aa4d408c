import type { z } from 'zod'
import type { Actor } from '../domain/actor.js'
import { proposal } from '../domain/deciders/index.js'
import type { ProposalCommand, ProposalState } from '../domain/deciders/proposal.js'
import { DomainError } from '../domain/errors.js'
import { boundedJsonObject, type DataOf, Identifier, ProposalSubmitted, streams } from '../domain/events.js'
import { uuidv7 } from '../domain/ids.js'
import { PLAN_LIMITS } from '../domain/limits.js'
import type { AppendResult, EventStore } from '../store/port.js'
import { bindingsOf, isAgent, ledgerNow, switchesOver } from './context.js'
import { type CommandMetadata, handle } from './handle.js'
import { agentLevel, proposalView } from './queries.js'

/** What an agent submits, over HTTP or Kafka: the ledger computes the plan hash and action digest, never the caller. */
export const SubmitProposalInput = ProposalSubmitted.shape.data
  .omit({ planHash: true, actionDigest: true, proposalId: true })
  .extend({
    proposalId: Identifier.optional().describe('chosen by the agent; generated when absent'),
    plan: boundedJsonObject(PLAN_LIMITS),
  })
export type SubmitProposalInput = z.infer<typeof SubmitProposalInput>

export interface Submitted {
  readonly proposalId: string
  readonly planHash: string
  readonly actionDigest: string
  readonly result: AppendResult
}

type Options = Omit<CommandMetadata, 'actor'>

const metadataOf = (actor: Actor, options: Options): CommandMetadata => ({ ...options, actor: actor.sub })

/** Submits a proposal for an authenticated agent: load what its rules read, decide, append. */
export const submitProposal = async (
  store: EventStore,
  actor: Actor,
  input: SubmitProposalInput,
  options: Options = {},
): Promise<Submitted> => {
  const { proposalId = uuidv7(), ...body } = input
  const command = async (): Promise<ProposalCommand> => ({
    type: 'SubmitProposal',
    actor,
    proposal: { proposalId, ...body },
    context: {
      agentLevel: await agentLevel(store, body.agentId, body.environment),
      boundAgents: (await bindingsOf(store, body.executingIdentity)).agent,
    },
  })
  const result = await handle(
    store,
    proposal,
    streams.proposal(proposalId),
    command,
    metadataOf(actor, options),
  )
  // a retry answers with what the first call recorded, including the proposal id generated then
  const recorded = result.events[0]?.data as DataOf<'ProposalSubmitted'> | undefined
  if (!recorded) throw new DomainError('conflict', 'the proposal was not recorded')
  const { planHash, actionDigest } = recorded
  return { proposalId: recorded.proposalId, planHash, actionDigest, result }
}

/** A command on an existing proposal, as the edge states it: the rules' context is added here. */
export type ProposalRequest = DistributiveOmit<
  Exclude<ProposalCommand, { type: 'SubmitProposal' }>,
  'actor' | 'context'
>
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** Loads what each command's rules read beside the proposal's own stream. */
const withContext = async (
  store: EventStore,
  gate: Gate,
  actor: Actor,
  request: ProposalRequest,
  state: ProposalState,
): Promise<ProposalCommand> => {
  if (state.status === 'none') throw new DomainError('not-found', 'the proposal does not exist')
  const { agentId, environment, executingIdentity } = state.proposal
  switch (request.type) {
    case 'RequestSimulation':
      return { ...request, actor, context: { agentLevel: await agentLevel(store, agentId, environment) } }
    case 'AttachSimulation':
    case 'AttachRollbackTest':
      return { ...request, actor, context: { attesterIsAgent: await isAgent(store, actor.sub) } }
    case 'Approve': {
      const executors = (await bindingsOf(store, executingIdentity)).executor
      return { ...request, actor, context: { executors, attesterIsAgent: await isAgent(store, actor.sub) } }
    }
    case 'StartExecution':
      return {
        ...request,
        actor,
        context: {
          executors: (await bindingsOf(store, executingIdentity)).executor,
          engagedSwitches: await switchesOver(store, state.proposal),
          gateClosed: await gate.closedBecause(),
          now: ledgerNow(),
        },
      }
    case 'Withdraw': {
      const replacement =
        request.supersededBy === undefined ? null : await proposalView(store, request.supersededBy)
      const standing = replacement && { agentId: replacement.proposal.agentId, status: replacement.status }
      return { ...request, actor, context: { replacement: standing } }
    }
    default:
      return { ...request, actor } as ProposalCommand
  }
}

/**
 * Runs a command on a proposal for an authenticated principal. A start the execution gate refuses is
 * recorded (ExecutionRefused): `refusalIn` turns that answer into the error a client reads.
 */
export const proposalCommand = (
  store: EventStore,
  gate: Gate,
  actor: Actor,
  proposalId: string,
  request: ProposalRequest,
  options: Options = {},
): Promise<AppendResult> =>
  handle(
    store,
    proposal,
    streams.proposal(proposalId),
    (state) => withContext(store, gate, actor, request, state),
    metadataOf(actor, options),
  )

/**
 * Whether the service can vouch for the verdicts in the ledger now: every ledger consumer running and its data
 * files intact (every event is judged in the commit that appends it, so there is no judgement to wait for).
 */
export interface Gate {
  /** why the gate is closed, or null when it is open */
  closedBecause(): Promise<string | null>
}

/** The error that answers a start the gate refused and recorded, listing every reason; null for any other answer. */
export const refusalIn = (result: AppendResult): DomainError | null => {
  const refused = result.events.find((e) => e.type === 'ExecutionRefused')
  if (!refused) return null
  const { reasons } = refused.data as DataOf<'ExecutionRefused'>
  return new DomainError(
    'conflict',
    `the execution gate refused the start: ${reasons.map((r) => r.reason).join('; ')}`,
    { refusedEventId: refused.id, reasons },
  )
}
