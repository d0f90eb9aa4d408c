import type { Actor } from '../actor.js'
import { actionDigestOf, canonicalizeRecorded, planHashOf } from '../canonical.js'
import { DomainError } from '../errors.js'
import type { AuthorityLevel, DataOf, EventOf, KillSwitchRef } from '../events.js'
import { demand, unmet } from '../specification.js'
import {
  agentProposesAsItself,
  approvalRoleFromToken,
  approverIsIndependent,
  gateOpen,
  identityBoundToAgent,
  proposerAboveObserve,
  proposerOrAdminWithdraws,
  proposerRequestsSimulation,
  replacedByTheSameAgent,
  simulationAnswersRequest,
  simulatorAttestsSimulation,
  starterReports,
  testerAttestsRollback,
  WHAT_A_START_NEEDS,
  WHO_MAY_START,
} from './proposal-rules.js'

export type ProposalEvent =
  | EventOf<'ProposalSubmitted'>
  | EventOf<'SimulationRequested'>
  | EventOf<'SimulationRecorded'>
  | EventOf<'RollbackTested'>
  | EventOf<'ApprovalGranted'>
  | EventOf<'ProposalWithdrawn'>
  | EventOf<'ProposalExpired'>
  | EventOf<'DecisionResumed'>
  | EventOf<'VerdictIssued'>
  | EventOf<'VerdictRevoked'>
  | EventOf<'VerdictExpired'>
  | EventOf<'ExecutionStarted'>
  | EventOf<'ExecutionRefused'>
  | EventOf<'ExecutionSucceeded'>
  | EventOf<'ExecutionFailed'>
  | EventOf<'ViolationRecorded'>
  | EventOf<'RecoveryDeadlinePassed'>
  | EventOf<'RollbackStarted'>
  | EventOf<'RollbackCompleted'>
  | EventOf<'RollbackFailed'>

/** What the caller states: the proposal id comes from the stream, the digests from the ledger. */
type Given<T extends ProposalEvent['type']> = Omit<DataOf<T>, 'proposalId'>

/** What the rules know of a principal attesting evidence beside its token: whether it is a registered agent. */
export interface Attester {
  readonly attesterIsAgent: boolean
}

/** A proposal as its agent states it; the ledger adds the plan hash and the action digest. */
export type ProposalInput = Omit<DataOf<'ProposalSubmitted'>, 'planHash' | 'actionDigest'>

export type ProposalCommand = { readonly actor: Actor } & (
  | {
      type: 'SubmitProposal'
      proposal: ProposalInput
      context: {
        agentLevel: AuthorityLevel | null
        /** the agents bound to act through the proposal's executing identity */
        boundAgents: readonly string[]
      }
    }
  | ({
      type: 'RequestSimulation'
      context: { agentLevel: AuthorityLevel | null }
    } & Given<'SimulationRequested'>)
  | ({ type: 'AttachSimulation'; context: Attester } & Omit<Given<'SimulationRecorded'>, 'simulatedBy'>)
  | ({ type: 'AttachRollbackTest'; context: Attester } & Omit<Given<'RollbackTested'>, 'testedBy'>)
  | ({
      type: 'Approve'
      context: Attester & {
        /** the executors bound to run as the proposal's executing identity */
        executors: readonly string[]
      }
    } & Omit<Given<'ApprovalGranted'>, 'approver'>)
  | ({
      type: 'Withdraw'
      context: {
        /** who proposed the replacement named in supersededBy, and where it stands; null when there is none */
        replacement: { readonly agentId: string; readonly status: string } | null
      }
    } & Given<'ProposalWithdrawn'>)
  | ({
      type: 'StartExecution'
      context: {
        /** the executors bound to run as the proposal's executing identity */
        executors: readonly string[]
        /** the engaged kill switches over the action, read from their own streams at the gate */
        engagedSwitches: readonly KillSwitchRef[]
        /** whether the decision service has judged every event up to the ledger's head at the gate */
        gateClosed: string | null
        /** ledger time at the gate */
        now: string
      }
    } & Omit<Given<'ExecutionStarted'>, 'executor'>)
  | ({ type: 'SucceedExecution' } & Given<'ExecutionSucceeded'>)
  | ({ type: 'FailExecution' } & Given<'ExecutionFailed'>)
  | ({ type: 'StartRollback' } & Given<'RollbackStarted'>)
  | ({ type: 'CompleteRollback' } & Given<'RollbackCompleted'>)
  | ({ type: 'FailRollback' } & Given<'RollbackFailed'>)
)

/** The current verdict, as the decision service last wrote it. */
export interface CurrentVerdict {
  readonly verdictId: string
  readonly decision: 'allow' | 'block'
  readonly expiresAt: string
  readonly revoked: boolean
  readonly expired: boolean
}

export type ViolationKind = DataOf<'ViolationRecorded'>['kind']

/** The facts every submitted proposal carries, whatever its status. */
export interface ProposalFacts {
  readonly proposal: DataOf<'ProposalSubmitted'>
  readonly simulationRequests: readonly DataOf<'SimulationRequested'>[]
  readonly simulations: readonly DataOf<'SimulationRecorded'>[]
  readonly rollbackTests: readonly DataOf<'RollbackTested'>[]
  readonly approvals: readonly DataOf<'ApprovalGranted'>[]
  readonly verdict: CurrentVerdict | null
  readonly violation: ViolationKind | null
  readonly recoveryDeadlinePassed: boolean
}

/** An execution under way or done, and the executor that started it (the only one that reports on it). */
type Executed = ProposalFacts & { readonly executionId: string; readonly executor: string }
type RolledBack = Executed & { readonly rollbackId: string }

export type ProposalState =
  | { readonly status: 'none' }
  | (ProposalFacts & { readonly status: 'open' })
  | (ProposalFacts & { readonly status: 'withdrawn' })
  | (ProposalFacts & { readonly status: 'expired' })
  | (Executed & { readonly status: 'executing' })
  | (Executed & { readonly status: 'succeeded' })
  | (Executed & { readonly status: 'failed' })
  | (RolledBack & { readonly status: 'rolling-back' })
  | (RolledBack & { readonly status: 'recovered' })
  | (RolledBack & { readonly status: 'rollback-failed' })

type Status = ProposalState['status']
type In<S extends Status> = Extract<ProposalState, { status: S }>
type Command<T extends ProposalCommand['type']> = Extract<ProposalCommand, { type: T }>

export const initialState = (): ProposalState => ({ status: 'none' })

export const decide = (command: ProposalCommand, state: ProposalState): ProposalEvent[] => {
  if (command.type === 'SubmitProposal') return submit(command, state)
  if (state.status === 'none') throw new DomainError('not-found', 'the proposal does not exist')
  const { proposalId } = state.proposal
  const acting = { actor: command.actor, proposal: state.proposal }
  switch (command.type) {
    case 'RequestSimulation':
      return requestSimulation(command, requireStatus(state, ['open'], 'request a simulation'))
    case 'AttachSimulation':
      demand(simulatorAttestsSimulation, { ...acting, ...command.context })
      return attachSimulation(command, requireStatus(state, ['open'], 'attach a simulation'))
    case 'AttachRollbackTest':
      demand(testerAttestsRollback, { ...acting, ...command.context })
      return attachRollbackTest(command, requireStatus(state, ['open'], 'attach a rollback test'))
    case 'Approve':
      demand(approverIsIndependent, { ...acting, ...command.context })
      demand(approvalRoleFromToken, { actor: command.actor, role: command.role })
      return approve(command, requireStatus(state, ['open'], 'approve'))
    case 'Withdraw': {
      demand(proposerOrAdminWithdraws, acting)
      requireStatus(state, ['open'], 'withdraw')
      const { reason, supersededBy } = command
      if (supersededBy === undefined) return [{ type: 'ProposalWithdrawn', data: { proposalId, reason } }]
      demand(
        replacedByTheSameAgent,
        { proposal: state.proposal, supersededBy, replacement: command.context.replacement },
        'conflict',
      )
      return [{ type: 'ProposalWithdrawn', data: { proposalId, reason, supersededBy } }]
    }
    case 'StartExecution':
      return startExecution(command, state)
    case 'SucceedExecution': {
      requireExecution(state, command, 'report its success')
      requireStatus(state, ['executing'], 'complete an execution')
      const { executionId, resourceVersionAfter } = command
      return [{ type: 'ExecutionSucceeded', data: { proposalId, executionId, resourceVersionAfter } }]
    }
    case 'FailExecution': {
      requireExecution(state, command, 'report its failure')
      requireStatus(state, ['executing'], 'fail an execution')
      const { executionId, error, resourceVersionAfter } = command
      return [{ type: 'ExecutionFailed', data: { proposalId, executionId, error, resourceVersionAfter } }]
    }
    case 'StartRollback': {
      requireStatus(state, ['failed', 'succeeded', 'rollback-failed'], 'start a rollback')
      requireExecution(state, command, 'roll it back')
      const { rollbackId, executionId } = command
      return [{ type: 'RollbackStarted', data: { proposalId, rollbackId, executionId } }]
    }
    case 'CompleteRollback': {
      requireRollback(state, command, 'report its completion')
      requireStatus(state, ['rolling-back'], 'complete a rollback')
      const { rollbackId, resourceVersionAfter } = command
      return [{ type: 'RollbackCompleted', data: { proposalId, rollbackId, resourceVersionAfter } }]
    }
    case 'FailRollback': {
      requireRollback(state, command, 'report its failure')
      requireStatus(state, ['rolling-back'], 'fail a rollback')
      const { rollbackId, error } = command
      return [{ type: 'RollbackFailed', data: { proposalId, rollbackId, error } }]
    }
  }
}

const requireStatus = <S extends Status>(
  state: ProposalState,
  allowed: readonly S[],
  action: string,
): In<S> => {
  const statuses: readonly Status[] = allowed
  if (!statuses.includes(state.status)) {
    throw new DomainError('conflict', `cannot ${action}: the proposal is ${state.status}`)
  }
  return state as In<S>
}

type Submitted = Exclude<ProposalState, { status: 'none' }>

/** The execution named is this proposal's (else it is unknown here), and only its starter reports on it. */
const requireExecution = (
  state: Submitted,
  command: { readonly actor: Actor; readonly executionId: string },
  what: string,
): void => {
  if (!('executionId' in state) || state.executionId !== command.executionId) {
    throw new DomainError('not-found', `execution ${command.executionId} is not this proposal's execution`)
  }
  demand(starterReports, { actor: command.actor, executor: state.executor, what })
}

/** The rollback named is the one under way (else it is unknown here), and only the starter reports on it. */
const requireRollback = (
  state: Submitted,
  command: { readonly actor: Actor; readonly rollbackId: string },
  what: string,
): void => {
  if (!('rollbackId' in state) || state.rollbackId !== command.rollbackId) {
    throw new DomainError('not-found', `rollback ${command.rollbackId} is not this proposal's rollback`)
  }
  demand(starterReports, { actor: command.actor, executor: state.executor, what })
}

const submit = (command: Command<'SubmitProposal'>, state: ProposalState): ProposalEvent[] => {
  const { actor, proposal, context } = command
  const { proposalId, agentId, executingIdentity, environment, plan } = proposal
  demand(agentProposesAsItself, { actor, agentId })
  if (state.status !== 'none') throw new DomainError('conflict', `proposal ${proposalId} already exists`)
  if (context.agentLevel === null) throw new DomainError('not-found', `agent ${agentId} is not registered`)
  demand(proposerAboveObserve, { agentId, environment, level: context.agentLevel })
  demand(identityBoundToAgent, { agentId, executingIdentity, boundAgents: context.boundAgents })
  // both digests are computed here, never taken from the caller
  const data = { ...proposal, planHash: planHashOf(plan), actionDigest: actionDigestOf(proposal) }
  return [{ type: 'ProposalSubmitted', data }]
}

/** Evidence names the action it is for; evidence for another action is refused, never silently kept. */
const requireThisAction = (state: In<'open'>, actionDigest: string, what: string): void => {
  if (actionDigest !== state.proposal.actionDigest) {
    throw new DomainError(
      'conflict',
      `the ${what} names action ${actionDigest}, not this proposal's action ${state.proposal.actionDigest}`,
      { actionDigest: state.proposal.actionDigest },
    )
  }
}

/** Evidence with a known id is a retry when identical, and a conflict when it differs. */
const isRepeat = <T>(known: T | undefined, given: T, what: string): boolean => {
  if (known === undefined) return false
  if (canonicalizeRecorded(known) === canonicalizeRecorded(given)) return true
  throw new DomainError('conflict', `${what} was already recorded with other content`)
}

const requestSimulation = (command: Command<'RequestSimulation'>, state: In<'open'>): ProposalEvent[] => {
  const { actor, requestId, actionDigest, branchKinds, context } = command
  demand(proposerRequestsSimulation, { actor, proposal: state.proposal, level: context.agentLevel })
  requireThisAction(state, actionDigest, 'simulation request')
  const data = { proposalId: state.proposal.proposalId, requestId, actionDigest, branchKinds }
  const known = state.simulationRequests.find((r) => r.requestId === requestId)
  if (isRepeat(known, data, `simulation request ${requestId}`)) return []
  return [{ type: 'SimulationRequested', data }]
}

const attachSimulation = (command: Command<'AttachSimulation'>, state: In<'open'>): ProposalEvent[] => {
  const { actor, simulationId, requestId, actionDigest, branches } = command
  requireThisAction(state, actionDigest, 'simulation')
  const requests = state.simulationRequests.map((r) => r.requestId)
  demand(simulationAnswersRequest, { requestId, requests }, 'conflict')
  const data = {
    proposalId: state.proposal.proposalId,
    simulationId,
    requestId,
    actionDigest,
    simulatedBy: actor.sub,
    branches,
  }
  const known = state.simulations.find((s) => s.simulationId === data.simulationId)
  if (isRepeat(known, data, `simulation ${data.simulationId}`)) return []
  return [{ type: 'SimulationRecorded', data }]
}

const attachRollbackTest = (command: Command<'AttachRollbackTest'>, state: In<'open'>): ProposalEvent[] => {
  const { actor, actionDigest, playbook, testRunId, testedAt, outcome, expectedRecoverySeconds, killSwitch } =
    command
  requireThisAction(state, actionDigest, 'rollback test')
  const evidence = { playbook, testRunId, testedAt, outcome, expectedRecoverySeconds, killSwitch }
  const data = { proposalId: state.proposal.proposalId, actionDigest, testedBy: actor.sub, ...evidence }
  const known = state.rollbackTests.find((t) => t.testRunId === data.testRunId)
  if (isRepeat(known, data, `rollback test run ${data.testRunId}`)) return []
  return [{ type: 'RollbackTested', data }]
}

const approve = (command: Command<'Approve'>, state: In<'open'>): ProposalEvent[] => {
  const { actor, role, actionDigest } = command
  requireThisAction(state, actionDigest, 'approval')
  if (state.approvals.some((a) => a.approver === actor.sub && a.role === role)) return []
  const data = { proposalId: state.proposal.proposalId, actionDigest, approver: actor.sub, role }
  return [{ type: 'ApprovalGranted', data }]
}

/**
 * The execution gate. A principal that may not start this action at all (no executor, not bound to its
 * identity, one of its approvers) is refused with every reason and nothing is recorded: it could not have run
 * it, and it must not fill the proposal's stream. An entitled executor's start that breaks any other rule is
 * refused and recorded with every reason, so it counts as an unsafe action blocked before execution.
 */
const startExecution = (command: Command<'StartExecution'>, state: ProposalState): ProposalEvent[] => {
  if (state.status === 'none') throw new DomainError('not-found', 'the proposal does not exist')
  const { actor, executionId, verdictId, actionDigest, context } = command
  const { proposalId } = state.proposal
  // the same executor starting the same execution again is a retry of a start that happened, not a new attempt
  if ('executionId' in state && state.executionId === executionId && state.executor === actor.sub) return []
  const start = {
    actor,
    proposal: state.proposal,
    status: state.status,
    approvers: state.approvals.map((a) => a.approver),
    verdict: state.verdict,
    cited: { verdictId, actionDigest },
    executors: context.executors,
    engagedSwitches: context.engagedSwitches,
    now: context.now,
  }
  // fail closed: a verdict the decision service may be about to replace is no verdict to start on
  demand(gateOpen, context, 'unavailable')
  const who = unmet(WHO_MAY_START, start)
  if (who.length > 0) {
    throw new DomainError(
      'forbidden',
      `the execution gate refused the start: ${who.map((r) => r.reason).join('; ')}`,
      {
        specification: who[0]?.specification,
        reasons: who,
      },
    )
  }
  const reasons = unmet(WHAT_A_START_NEEDS, start)
  const data = { proposalId, executionId, verdictId, actionDigest, executor: actor.sub }
  if (reasons.length > 0) return [{ type: 'ExecutionRefused', data: { ...data, reasons } }]
  return [{ type: 'ExecutionStarted', data }]
}

export const evolve = (state: ProposalState, event: ProposalEvent): ProposalState => {
  if (event.type === 'ProposalSubmitted') return state.status === 'none' ? opened(event.data) : state
  if (state.status === 'none') return state
  switch (event.type) {
    case 'SimulationRequested':
      return { ...state, simulationRequests: [...state.simulationRequests, event.data] }
    case 'SimulationRecorded':
      return { ...state, simulations: [...state.simulations, event.data] }
    case 'ExecutionRefused':
      return state
    case 'RollbackTested':
      return { ...state, rollbackTests: [...state.rollbackTests, event.data] }
    case 'ApprovalGranted':
      return { ...state, approvals: [...state.approvals, event.data] }
    case 'VerdictIssued': {
      const { verdictId, decision, expiresAt } = event.data
      return { ...state, verdict: { verdictId, decision, expiresAt, revoked: false, expired: false } }
    }
    case 'VerdictRevoked':
      return withVerdict(state, event.data.verdictId, { revoked: true })
    case 'VerdictExpired':
      return withVerdict(state, event.data.verdictId, { expired: true })
    case 'ViolationRecorded':
      return { ...state, violation: event.data.kind }
    case 'RecoveryDeadlinePassed':
      return { ...state, recoveryDeadlinePassed: true }
    case 'ProposalWithdrawn':
      return state.status === 'open' ? { ...state, status: 'withdrawn' } : state
    case 'ProposalExpired':
      return state.status === 'open' ? { ...state, status: 'expired' } : state
    case 'DecisionResumed':
      return state
    case 'ExecutionStarted': {
      const { executionId, executor } = event.data
      return state.status === 'open' ? { ...state, status: 'executing', executionId, executor } : state
    }
    case 'ExecutionSucceeded':
      return state.status === 'executing' ? { ...state, status: 'succeeded' } : state
    case 'ExecutionFailed':
      return state.status === 'executing' ? { ...state, status: 'failed' } : state
    case 'RollbackStarted':
      return state.status === 'failed' || state.status === 'succeeded' || state.status === 'rollback-failed'
        ? { ...state, status: 'rolling-back', rollbackId: event.data.rollbackId }
        : state
    case 'RollbackCompleted':
      return state.status === 'rolling-back' ? { ...state, status: 'recovered' } : state
    case 'RollbackFailed':
      return state.status === 'rolling-back' ? { ...state, status: 'rollback-failed' } : state
  }
}

const opened = (proposal: DataOf<'ProposalSubmitted'>): ProposalState => ({
  status: 'open',
  proposal,
  simulationRequests: [],
  simulations: [],
  rollbackTests: [],
  approvals: [],
  verdict: null,
  violation: null,
  recoveryDeadlinePassed: false,
})

/** A revocation or expiry of a superseded verdict leaves the current one as it is. */
const withVerdict = (
  state: Exclude<ProposalState, { status: 'none' }>,
  verdictId: string,
  change: Partial<Pick<CurrentVerdict, 'revoked' | 'expired'>>,
): ProposalState =>
  state.verdict?.verdictId === verdictId ? { ...state, verdict: { ...state.verdict, ...change } } : state
