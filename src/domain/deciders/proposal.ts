import { canonicalize, planHashOf } from '../canonical.js'
import { DomainError } from '../errors.js'
import type { AuthorityLevel, DataOf, EventOf } from '../events.js'

export type ProposalEvent =
  | EventOf<'ProposalSubmitted'>
  | EventOf<'SimulationRecorded'>
  | EventOf<'RollbackTested'>
  | EventOf<'ApprovalGranted'>
  | EventOf<'ProposalWithdrawn'>
  | EventOf<'VerdictIssued'>
  | EventOf<'VerdictRevoked'>
  | EventOf<'VerdictExpired'>
  | EventOf<'ExecutionStarted'>
  | EventOf<'ExecutionSucceeded'>
  | EventOf<'ExecutionFailed'>
  | EventOf<'ViolationRecorded'>
  | EventOf<'RecoveryDeadlinePassed'>
  | EventOf<'RollbackStarted'>
  | EventOf<'RollbackCompleted'>
  | EventOf<'RollbackFailed'>

/** What the caller states: the proposal id comes from the stream, the plan hash from the ledger. */
type Given<T extends ProposalEvent['type']> = Omit<DataOf<T>, 'proposalId'>

export type ProposalCommand =
  | ({ type: 'SubmitProposal'; context: { agentLevel: AuthorityLevel | null } } & Omit<
      DataOf<'ProposalSubmitted'>,
      'planHash'
    >)
  | ({ type: 'AttachSimulation' } & Given<'SimulationRecorded'>)
  | ({ type: 'AttachRollbackTest' } & Given<'RollbackTested'>)
  | ({ type: 'Approve' } & Given<'ApprovalGranted'>)
  | ({ type: 'Withdraw' } & Given<'ProposalWithdrawn'>)
  | ({ type: 'StartExecution' } & Given<'ExecutionStarted'>)
  | ({ type: 'SucceedExecution' } & Given<'ExecutionSucceeded'>)
  | ({ type: 'FailExecution' } & Given<'ExecutionFailed'>)
  | ({ type: 'StartRollback' } & Given<'RollbackStarted'>)
  | ({ type: 'CompleteRollback' } & Given<'RollbackCompleted'>)
  | ({ type: 'FailRollback' } & Given<'RollbackFailed'>)

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
  readonly simulations: readonly DataOf<'SimulationRecorded'>[]
  readonly rollbackTests: readonly DataOf<'RollbackTested'>[]
  readonly approvals: readonly DataOf<'ApprovalGranted'>[]
  readonly verdict: CurrentVerdict | null
  readonly violation: ViolationKind | null
  readonly recoveryDeadlinePassed: boolean
}

type Executed = ProposalFacts & { readonly executionId: string }
type RolledBack = Executed & { readonly rollbackId: string }

export type ProposalState =
  | { readonly status: 'none' }
  | (ProposalFacts & { readonly status: 'open' })
  | (ProposalFacts & { readonly status: 'withdrawn' })
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
  switch (command.type) {
    case 'AttachSimulation':
      return attachSimulation(command, requireStatus(state, ['open'], 'attach a simulation'))
    case 'AttachRollbackTest':
      return attachRollbackTest(command, requireStatus(state, ['open'], 'attach a rollback test'))
    case 'Approve':
      return approve(command, requireStatus(state, ['open'], 'approve'))
    case 'Withdraw': {
      requireStatus(state, ['open'], 'withdraw')
      return [{ type: 'ProposalWithdrawn', data: { proposalId, reason: command.reason } }]
    }
    case 'StartExecution': {
      // recorded whatever verdict it cites: judging the verdict is the decision service's job
      requireStatus(state, ['open'], 'start an execution')
      const { executionId, verdictId, planHash, executor } = command
      return [{ type: 'ExecutionStarted', data: { proposalId, executionId, verdictId, planHash, executor } }]
    }
    case 'SucceedExecution': {
      requireExecution(requireStatus(state, ['executing'], 'complete an execution'), command.executionId)
      const { executionId, resourceVersionAfter } = command
      return [{ type: 'ExecutionSucceeded', data: { proposalId, executionId, resourceVersionAfter } }]
    }
    case 'FailExecution': {
      requireExecution(requireStatus(state, ['executing'], 'fail an execution'), command.executionId)
      const { executionId, error, resourceVersionAfter } = command
      return [{ type: 'ExecutionFailed', data: { proposalId, executionId, error, resourceVersionAfter } }]
    }
    case 'StartRollback': {
      const done = requireStatus(state, ['failed', 'succeeded', 'rollback-failed'], 'start a rollback')
      requireExecution(done, command.executionId)
      const { rollbackId, executionId } = command
      return [{ type: 'RollbackStarted', data: { proposalId, rollbackId, executionId } }]
    }
    case 'CompleteRollback': {
      requireRollback(requireStatus(state, ['rolling-back'], 'complete a rollback'), command.rollbackId)
      const { rollbackId, resourceVersionAfter } = command
      return [{ type: 'RollbackCompleted', data: { proposalId, rollbackId, resourceVersionAfter } }]
    }
    case 'FailRollback': {
      requireRollback(requireStatus(state, ['rolling-back'], 'fail a rollback'), command.rollbackId)
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

const requireExecution = (state: Executed, executionId: string): void => {
  if (state.executionId !== executionId) {
    throw new DomainError(
      'conflict',
      `execution ${executionId} is not this proposal's execution ${state.executionId}`,
    )
  }
}

const requireRollback = (state: RolledBack, rollbackId: string): void => {
  if (state.rollbackId !== rollbackId) {
    throw new DomainError(
      'conflict',
      `rollback ${rollbackId} is not the rollback under way, ${state.rollbackId}`,
    )
  }
}

const submit = (command: Command<'SubmitProposal'>, state: ProposalState): ProposalEvent[] => {
  if (state.status !== 'none')
    throw new DomainError('conflict', `proposal ${command.proposalId} already exists`)
  const { proposalId, agentId, executingIdentity, tool, action, resource, environment, plan } = command
  const { expectedImpact, snapshot, description, context } = command
  if (context.agentLevel === null) throw new DomainError('not-found', `agent ${agentId} is not registered`)
  if (context.agentLevel === 'observe') {
    throw new DomainError(
      'forbidden',
      `observe may not propose: agent ${agentId} is observe in ${environment}`,
    )
  }
  // the plan hash is computed here, never taken from the caller
  const planHash = planHashOf(plan)
  const data = { proposalId, agentId, executingIdentity, tool, action, resource, environment, plan, planHash }
  return [{ type: 'ProposalSubmitted', data: { ...data, expectedImpact, snapshot, description } }]
}

/** Evidence with a known id is a retry when identical, and a conflict when it differs. */
const isRepeat = <T>(known: T | undefined, given: T, what: string): boolean => {
  if (known === undefined) return false
  if (canonicalize(known) === canonicalize(given)) return true
  throw new DomainError('conflict', `${what} was already recorded with other content`)
}

const attachSimulation = (command: Command<'AttachSimulation'>, state: In<'open'>): ProposalEvent[] => {
  const { simulationId, planHash, simulatedBy, branches } = command
  const data = { proposalId: state.proposal.proposalId, simulationId, planHash, simulatedBy, branches }
  const known = state.simulations.find((s) => s.simulationId === data.simulationId)
  if (isRepeat(known, data, `simulation ${data.simulationId}`)) return []
  return [{ type: 'SimulationRecorded', data }]
}

const attachRollbackTest = (command: Command<'AttachRollbackTest'>, state: In<'open'>): ProposalEvent[] => {
  const { planHash, playbook, testRunId, testedAt, outcome, expectedRecoverySeconds, killSwitch } = command
  const evidence = { planHash, playbook, testRunId, testedAt, outcome, expectedRecoverySeconds, killSwitch }
  const data = { proposalId: state.proposal.proposalId, ...evidence }
  const known = state.rollbackTests.find((t) => t.testRunId === data.testRunId)
  if (isRepeat(known, data, `rollback test run ${data.testRunId}`)) return []
  return [{ type: 'RollbackTested', data }]
}

const approve = (command: Command<'Approve'>, state: In<'open'>): ProposalEvent[] => {
  const { approver, role, planHash } = command
  if (approver === state.proposal.agentId)
    throw new DomainError('forbidden', 'no self-approval: the agent proposed it')
  if (state.approvals.some((a) => a.approver === approver && a.planHash === planHash)) return []
  // an approval of another plan hash is recorded as given: the eligibility rules ignore it
  return [
    { type: 'ApprovalGranted', data: { proposalId: state.proposal.proposalId, planHash, approver, role } },
  ]
}

export const evolve = (state: ProposalState, event: ProposalEvent): ProposalState => {
  if (event.type === 'ProposalSubmitted') return state.status === 'none' ? opened(event.data) : state
  if (state.status === 'none') return state
  switch (event.type) {
    case 'SimulationRecorded':
      return { ...state, simulations: [...state.simulations, event.data] }
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
    case 'ExecutionStarted':
      return state.status === 'open'
        ? { ...state, status: 'executing', executionId: event.data.executionId }
        : state
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
