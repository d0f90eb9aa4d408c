import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import { actionDigestOf, planHashOf } from '../../src/domain/canonical.js'
import type { ProposalCommand, ProposalEvent, ProposalInput } from '../../src/domain/deciders/proposal.js'
import * as proposal from '../../src/domain/deciders/proposal.js'
import { WHAT_A_START_NEEDS, WHO_MAY_START } from '../../src/domain/deciders/proposal-rules.js'
import { DomainError, type DomainErrorCode } from '../../src/domain/errors.js'
import type { AuthorityLevel, DataOf, KillSwitchRef } from '../../src/domain/events.js'
import { actorOf, actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { agent, otherAgent, simulator, approver, boardApprover, executor, otherExecutor, admin } = actors

const proposalId = 'p-1'
const agentId = agent.sub
const identity = 'deployer'
const plan = { replicas: 3, image: 'api:1.4.2' }
const input: ProposalInput = {
  proposalId,
  agentId,
  executingIdentity: identity,
  tool: 'kubernetes',
  action: 'scale',
  resource: 'deployment/api',
  environment: 'production',
  plan,
  expectedImpact: 'high',
  snapshot: { version: 'rv-41' },
  description: 'scale the api',
}
const planHash = planHashOf(plan)
const actionDigest = actionDigestOf(input)
/** the same plan on another resource: another action */
const otherDigest = actionDigestOf({ ...input, resource: 'deployment/billing' })
const verdictId = '0190c5a8-0000-7000-8000-000000000001'
const newerVerdictId = '0190c5a8-0000-7000-8000-000000000002'
const unknownVerdictId = '0190c5a8-0000-7000-8000-0000000000ff'

/** the principal that runs as the executing identity itself: never a witness of its own action */
const identityActor = (...roles: Parameters<typeof actorOf>[1]) => actorOf(identity, roles, ['approver'])
/** a principal that approves and executes: bound as executor only after approving */
const approverExecutor = actorOf('approver-executor', ['approver', 'executor'], ['approver'])

// ---------- commands ----------

const submit = (
  agentLevel: AuthorityLevel | null,
  { actor = agent, boundAgents = [agentId] }: { actor?: Actor; boundAgents?: string[] } = {},
): ProposalCommand => ({
  type: 'SubmitProposal',
  actor,
  proposal: input,
  context: { agentLevel, boundAgents },
})
const requestSimulation = (
  actor: Actor = agent,
  agentLevel: AuthorityLevel | null = 'simulate',
  digest = actionDigest,
): ProposalCommand => ({
  type: 'RequestSimulation',
  actor,
  requestId: 'req-1',
  actionDigest: digest,
  branchKinds: ['dependency-down'],
  context: { agentLevel },
})
const branches: DataOf<'SimulationRecorded'>['branches'] = [
  { name: 'db-down', kind: 'dependency-down', counterfactual: 'the database is down', outcome: 'survived' },
]
const attachSimulation = (
  actor: Actor = simulator,
  { requestId = 'req-1', digest = actionDigest } = {},
): ProposalCommand => ({
  type: 'AttachSimulation',
  actor,
  simulationId: 'sim-1',
  requestId,
  actionDigest: digest,
  branches,
  context: { attesterIsAgent: false },
})
const rollbackEvidence = {
  playbook: 'scale back to 2 replicas',
  testRunId: 'run-1',
  testedAt: '2025-02-01T10:00:00.000Z',
  outcome: 'passed',
  expectedRecoverySeconds: 120,
  killSwitch: { scope: 'tool', target: 'kubernetes' },
} as const
const attachRollbackTest = (actor: Actor = simulator, digest = actionDigest): ProposalCommand => ({
  type: 'AttachRollbackTest',
  actor,
  actionDigest: digest,
  ...rollbackEvidence,
  context: { attesterIsAgent: false },
})
const approve = (
  actor: Actor = approver,
  { role = 'approver', executors = [executor.sub], digest = actionDigest, attesterIsAgent = false } = {},
): ProposalCommand => ({
  type: 'Approve',
  actor,
  role,
  actionDigest: digest,
  context: { executors, attesterIsAgent },
})
const now = '2025-02-01T10:10:00.000Z'
const start = (
  actor: Actor = executor,
  {
    executionId = 'ex-1',
    cited = verdictId as string | null,
    digest = actionDigest,
    executors = [executor.sub, otherExecutor.sub],
    at = now,
    switches = [] as KillSwitchRef[],
    closed = null as string | null,
  } = {},
): ProposalCommand => ({
  type: 'StartExecution',
  actor,
  executionId,
  verdictId: cited,
  actionDigest: digest,
  context: { executors, engagedSwitches: switches, gateClosed: closed, now: at },
})
const withdraw = (actor: Actor = agent): ProposalCommand => ({
  type: 'Withdraw',
  actor,
  reason: 'superseded',
  context: { replacement: null },
})
const succeed = (actor: Actor = executor, executionId = 'ex-1'): ProposalCommand => ({
  type: 'SucceedExecution',
  actor,
  executionId,
  resourceVersionAfter: 'rv-42',
})
const fail = (actor: Actor = executor, executionId = 'ex-1'): ProposalCommand => ({
  type: 'FailExecution',
  actor,
  executionId,
  error: 'pods crash-looping',
  resourceVersionAfter: 'rv-42',
})
const startRollback = (
  actor: Actor = executor,
  rollbackId = 'rb-1',
  executionId = 'ex-1',
): ProposalCommand => ({
  type: 'StartRollback',
  actor,
  rollbackId,
  executionId,
})
const completeRollback = (actor: Actor = executor, rollbackId = 'rb-1'): ProposalCommand => ({
  type: 'CompleteRollback',
  actor,
  rollbackId,
  resourceVersionAfter: 'rv-43',
})
const failRollback = (actor: Actor = executor, rollbackId = 'rb-1'): ProposalCommand => ({
  type: 'FailRollback',
  actor,
  rollbackId,
  error: 'playbook timed out',
})

// ---------- events ----------

const submitted: ProposalEvent = { type: 'ProposalSubmitted', data: { ...input, planHash, actionDigest } }
const simulationRequested: ProposalEvent = {
  type: 'SimulationRequested',
  data: { proposalId, requestId: 'req-1', actionDigest, branchKinds: ['dependency-down'] },
}
const simulationRecorded = (simulatedBy = simulator.sub): ProposalEvent => ({
  type: 'SimulationRecorded',
  data: { proposalId, simulationId: 'sim-1', requestId: 'req-1', actionDigest, simulatedBy, branches },
})
const rollbackTested = (testedBy = simulator.sub): ProposalEvent => ({
  type: 'RollbackTested',
  data: { proposalId, actionDigest, testedBy, ...rollbackEvidence },
})
const approved = (by = approver.sub, role = 'approver'): ProposalEvent => ({
  type: 'ApprovalGranted',
  data: { proposalId, actionDigest, approver: by, role },
})
const started = (by = executor.sub, executionId = 'ex-1'): ProposalEvent => ({
  type: 'ExecutionStarted',
  data: { proposalId, executionId, verdictId, actionDigest, executor: by },
})
const refused = (
  reasons: { specification: string; reason: string }[],
  { by = executor.sub, executionId = 'ex-1', cited = verdictId as string | null, digest = actionDigest } = {},
): ProposalEvent => ({
  type: 'ExecutionRefused',
  data: { proposalId, executionId, verdictId: cited, actionDigest: digest, executor: by, reasons },
})
const succeeded: ProposalEvent = {
  type: 'ExecutionSucceeded',
  data: { proposalId, executionId: 'ex-1', resourceVersionAfter: 'rv-42' },
}
const failed: ProposalEvent = {
  type: 'ExecutionFailed',
  data: { proposalId, executionId: 'ex-1', error: 'pods crash-looping', resourceVersionAfter: 'rv-42' },
}
const rollbackStarted = (rollbackId = 'rb-1'): ProposalEvent => ({
  type: 'RollbackStarted',
  data: { proposalId, rollbackId, executionId: 'ex-1' },
})
const rollbackFailed: ProposalEvent = {
  type: 'RollbackFailed',
  data: { proposalId, rollbackId: 'rb-1', error: 'playbook timed out' },
}
const withdrawn: ProposalEvent = { type: 'ProposalWithdrawn', data: { proposalId, reason: 'superseded' } }
const issuedVerdict = (
  id: string,
  { decision = 'allow' as 'allow' | 'block', expiresAt = '2025-02-01T10:20:00.000Z' } = {},
): ProposalEvent => ({
  type: 'VerdictIssued',
  data: {
    verdictId: id,
    proposalId,
    revision: id === verdictId ? 1 : 2,
    decision,
    checks: [],
    agentId,
    executingIdentity: identity,
    tool: 'kubernetes',
    action: 'scale',
    resource: 'deployment/api',
    environment: 'production',
    impact: 'high',
    planHash,
    actionDigest,
    resourceVersion: 'rv-41',
    policyVersion: 3,
    decidedAt: '2025-02-01T10:05:00.000Z',
    expiresAt,
    supersedes: id === verdictId ? null : verdictId,
    basedOnEventId: '0190c5a8-0000-7000-8000-0000000000aa',
    signature: 'header.payload.signature',
  },
})
const issued = issuedVerdict(verdictId)
const revoked: ProposalEvent = {
  type: 'VerdictRevoked',
  data: {
    verdictId,
    proposalId,
    reason: 'kill switch engaged',
    killSwitch: { scope: 'global', target: null },
  },
}
const expired: ProposalEvent = {
  type: 'VerdictExpired',
  data: { verdictId, proposalId, expiresAt: '2025-02-01T10:20:00.000Z' },
}

const stateOf = (events: ProposalEvent[]) => events.reduce(proposal.evolve, proposal.initialState())

/** Refused with the error code, the named specification, and a message that says why. */
const refuses = (
  given: ProposalEvent[],
  command: ProposalCommand,
  code: DomainErrorCode,
  specification: string,
  why: RegExp,
): void => {
  spec(proposal).given(given).when(command).thenThrows(code, why)
  assert.equal(specificationRefusing(proposal, given, command), specification)
}

/** The reasons of the one ExecutionRefused a start comes to. */
/** The reasons a principal that may not start at all is refused with (403, nothing recorded). */
const whoReasons = (given: ProposalEvent[], command: ProposalCommand) => {
  try {
    proposal.decide(command, stateOf(given))
  } catch (error) {
    assert.ok(error instanceof DomainError, String(error))
    assert.equal(error.code, 'forbidden')
    return (error.details as { reasons: { specification: string; reason: string }[] }).reasons
  }
  return assert.fail('expected the start to be refused')
}

const gateReasons = (given: ProposalEvent[], command: ProposalCommand) => {
  const events = proposal.decide(command, stateOf(given))
  const [event] = events
  assert.equal(events.length, 1)
  if (event?.type !== 'ExecutionRefused') assert.fail(`expected ExecutionRefused, got ${event?.type}`)
  return event.data.reasons
}

describe('proposal decider: submission', () => {
  test('a proposal is submitted by an agent above observe, through an identity bound to it', () => {
    spec(proposal).given([]).when(submit('recommend')).then([submitted])
  })

  test('the plan hash and the action digest are computed by the ledger, never taken from the caller', () => {
    const forged = `sha256:${'0'.repeat(64)}`
    const command = submit('execute')
    if (command.type !== 'SubmitProposal') assert.fail()
    const claimed = { ...command.proposal, planHash: forged, actionDigest: forged } as ProposalInput
    spec(proposal)
      .given([])
      .when({ ...command, proposal: claimed })
      .then([submitted])
  })

  test('the action digest covers the resource, not only the plan', () => {
    const elsewhere = { ...input, resource: 'deployment/billing' }
    spec(proposal)
      .given([])
      .when({ ...submit('recommend'), proposal: elsewhere } as ProposalCommand)
      .then([{ type: 'ProposalSubmitted', data: { ...elsewhere, planHash, actionDigest: otherDigest } }])
    assert.notEqual(otherDigest, actionDigest)
  })

  test('an observe agent may not propose', () => {
    spec(proposal)
      .given([])
      .when(submit('observe'))
      .thenThrows('forbidden', /observe may not propose/)
  })

  test('an unregistered agent may not propose', () => {
    spec(proposal)
      .given([])
      .when(submit(null))
      .thenThrows('not-found', /not registered/)
  })

  test('a proposal id is used once', () => {
    spec(proposal)
      .given([submitted])
      .when(submit('execute'))
      .thenThrows('conflict', /already exists/)
  })

  test('agentProposesAsItself: an agent proposing as another agent is refused', () => {
    refuses(
      [],
      submit('execute', { actor: otherAgent }),
      'forbidden',
      'agentProposesAsItself',
      /agent-8 may propose only as itself, not as agent agent-7/,
    )
  })

  test('agentProposesAsItself: a principal without the agent role does not propose for an agent', () => {
    refuses(
      [],
      submit('execute', { actor: admin }),
      'forbidden',
      'agentProposesAsItself',
      /admin-1 holds no agent role: only an agent proposes/,
    )
    // the agent's own subject is not enough without the role
    refuses(
      [],
      submit('execute', { actor: actorOf(agentId, ['observer']) }),
      'forbidden',
      'agentProposesAsItself',
      /holds no agent role/,
    )
  })

  test('identityBoundToAgent: a proposal naming an identity not bound to its agent is refused', () => {
    refuses(
      [],
      submit('execute', { boundAgents: [] }),
      'forbidden',
      'identityBoundToAgent',
      /executing identity deployer is not bound to agent agent-7/,
    )
    // bound to another agent is not bound to this one
    refuses(
      [],
      submit('execute', { boundAgents: [otherAgent.sub] }),
      'forbidden',
      'identityBoundToAgent',
      /not bound to agent agent-7/,
    )
  })

  test('identityBoundToAgent: an identity bound to the agent (among others) lets it through', () => {
    spec(proposal)
      .given([])
      .when(submit('recommend', { boundAgents: [otherAgent.sub, agentId] }))
      .then([submitted])
  })

  test('commands for an unknown proposal are not found', () => {
    spec(proposal).given([]).when(withdraw()).thenThrows('not-found')
    spec(proposal).given([]).when(start()).thenThrows('not-found')
  })
})

describe('proposal decider: simulation requests', () => {
  test('proposerRequestsSimulation: the proposing agent at simulate or above requests a simulation', () => {
    spec(proposal).given([submitted]).when(requestSimulation()).then([simulationRequested])
    spec(proposal).given([submitted]).when(requestSimulation(agent, 'execute')).then([simulationRequested])
  })

  test('proposerRequestsSimulation: another agent, or a simulator, may not request it', () => {
    refuses(
      [submitted],
      requestSimulation(otherAgent),
      'forbidden',
      'proposerRequestsSimulation',
      /only the proposing agent may request a simulation/,
    )
    refuses(
      [submitted],
      requestSimulation(simulator),
      'forbidden',
      'proposerRequestsSimulation',
      /only the proposing agent/,
    )
  })

  test('proposerRequestsSimulation: below the simulate rung the agent may not request one', () => {
    refuses(
      [submitted],
      requestSimulation(agent, 'recommend'),
      'forbidden',
      'proposerRequestsSimulation',
      /agent agent-7 holds 'recommend' in production; requesting a simulation needs 'simulate'/,
    )
    refuses(
      [submitted],
      requestSimulation(agent, null),
      'forbidden',
      'proposerRequestsSimulation',
      /holds 'no level'/,
    )
  })

  test('a simulation request for another action digest is a conflict', () => {
    spec(proposal)
      .given([submitted])
      .when(requestSimulation(agent, 'simulate', otherDigest))
      .thenThrows('conflict', /simulation request names action .* not this proposal's action/)
  })

  test('a repeated simulation request is a no-op, and other content under its id a conflict', () => {
    spec(proposal).given([submitted, simulationRequested]).when(requestSimulation()).then([])
    const other = { ...requestSimulation(), branchKinds: ['stale-read'] } as ProposalCommand
    spec(proposal)
      .given([submitted, simulationRequested])
      .when(other)
      .thenThrows('conflict', /simulation request req-1 was already recorded with other content/)
  })
})

describe('proposal decider: evidence', () => {
  const requestedOnly = [submitted, simulationRequested]

  test('evidence is attached while the proposal is open', () => {
    spec(proposal).given(requestedOnly).when(attachSimulation()).then([simulationRecorded()])
    spec(proposal).given([submitted]).when(attachRollbackTest()).then([rollbackTested()])
    spec(proposal).given([submitted]).when(approve()).then([approved()])
  })

  test('evidence is refused once the proposal is no longer open', () => {
    const history = [...requestedOnly, started()]
    spec(proposal)
      .given(history)
      .when(attachSimulation())
      .thenThrows('conflict', /attach a simulation: the proposal is executing/)
    spec(proposal)
      .given(history)
      .when(attachRollbackTest())
      .thenThrows('conflict', /executing/)
    spec(proposal)
      .given(history)
      .when(approve())
      .thenThrows('conflict', /approve: the proposal is executing/)
    spec(proposal)
      .given([submitted, withdrawn])
      .when(requestSimulation())
      .thenThrows('conflict', /request a simulation: the proposal is withdrawn/)
  })

  test('evidence for another action digest is a conflict, never recorded', () => {
    spec(proposal)
      .given([submitted])
      .when(approve(approver, { digest: otherDigest }))
      .thenThrows('conflict', /approval names action .* not this proposal's action/)
    spec(proposal)
      .given(requestedOnly)
      .when(attachSimulation(simulator, { digest: otherDigest }))
      .thenThrows('conflict', /simulation names action .* not this proposal's action/)
    spec(proposal)
      .given([submitted])
      .when(attachRollbackTest(simulator, otherDigest))
      .thenThrows('conflict', /rollback test names action .* not this proposal's action/)
  })

  test('simulatorAttestsSimulation: the agent attesting its own simulation is refused', () => {
    refuses(
      requestedOnly,
      attachSimulation(agent),
      'forbidden',
      'simulatorAttestsSimulation',
      /agent-7 holds no simulator role: only the simulation harness records results/,
    )
    // a simulator role in the agent's own token does not help: it proposed the action
    refuses(
      requestedOnly,
      attachSimulation(actorOf(agentId, ['agent', 'simulator'])),
      'forbidden',
      'simulatorAttestsSimulation',
      /agent-7 proposed this action and cannot attest evidence for it/,
    )
  })

  test('simulatorAttestsSimulation: another agent, or the executing identity, is refused even as a simulator', () => {
    refuses(
      requestedOnly,
      attachSimulation(actorOf(otherAgent.sub, ['agent', 'simulator'])),
      'forbidden',
      'simulatorAttestsSimulation',
      /agent-8 holds the agent role, and an agent's word is not evidence/,
    )
    refuses(
      requestedOnly,
      attachSimulation(identityActor('simulator')),
      'forbidden',
      'simulatorAttestsSimulation',
      /deployer is the action's executing identity and cannot attest evidence for it/,
    )
    refuses(
      requestedOnly,
      attachSimulation(approver),
      'forbidden',
      'simulatorAttestsSimulation',
      /approver-1 holds no simulator role/,
    )
  })

  test('simulationAnswersRequest: a simulation nobody requested is refused', () => {
    refuses(
      [submitted],
      attachSimulation(),
      'conflict',
      'simulationAnswersRequest',
      /no simulation request req-1 was made for this proposal/,
    )
    refuses(
      requestedOnly,
      attachSimulation(simulator, { requestId: 'req-9' }),
      'conflict',
      'simulationAnswersRequest',
      /no simulation request req-9/,
    )
  })

  test('simulationAnswersRequest: a simulation answering the request is recorded', () => {
    spec(proposal).given(requestedOnly).when(attachSimulation()).then([simulationRecorded()])
  })

  test('testerAttestsRollback: the simulator or executor that ran it records a rollback test', () => {
    spec(proposal).given([submitted]).when(attachRollbackTest(simulator)).then([rollbackTested()])
    spec(proposal)
      .given([submitted])
      .when(attachRollbackTest(executor))
      .then([rollbackTested(executor.sub)])
  })

  test('testerAttestsRollback: the agent, another agent or the executing identity is refused', () => {
    refuses(
      [submitted],
      attachRollbackTest(agent),
      'forbidden',
      'testerAttestsRollback',
      /agent-7 holds neither the simulator nor the executor role/,
    )
    refuses(
      [submitted],
      attachRollbackTest(actorOf(agentId, ['agent', 'executor'])),
      'forbidden',
      'testerAttestsRollback',
      /agent-7 proposed this action and cannot attest evidence for it/,
    )
    refuses(
      [submitted],
      attachRollbackTest(actorOf(otherAgent.sub, ['agent', 'simulator'])),
      'forbidden',
      'testerAttestsRollback',
      /agent-8 holds the agent role/,
    )
    refuses(
      [submitted],
      attachRollbackTest(identityActor('executor')),
      'forbidden',
      'testerAttestsRollback',
      /deployer is the action's executing identity/,
    )
    refuses(
      [submitted],
      attachRollbackTest(approver),
      'forbidden',
      'testerAttestsRollback',
      /approver-1 holds neither the simulator nor the executor role/,
    )
  })

  test('repeated evidence is a no-op, and other evidence under the same id a conflict', () => {
    spec(proposal)
      .given([...requestedOnly, simulationRecorded()])
      .when(attachSimulation())
      .then([])
    // another simulator re-sending sim-1 does not make it its own
    spec(proposal)
      .given([...requestedOnly, simulationRecorded()])
      .when(attachSimulation(actorOf('simulator-2', ['simulator'])))
      .thenThrows('conflict', /simulation sim-1 was already recorded with other content/)
    spec(proposal).given([submitted, rollbackTested()]).when(attachRollbackTest()).then([])
    spec(proposal)
      .given([submitted, rollbackTested()])
      .when(attachRollbackTest(executor))
      .thenThrows('conflict', /rollback test run run-1 was already recorded with other content/)
  })
})

describe('proposal decider: approvals', () => {
  test('approverIsIndependent: an approver neither proposing, nor the identity, nor bound to run it approves', () => {
    spec(proposal).given([submitted]).when(approve()).then([approved()])
  })

  test('approverIsIndependent: the agent approving its own proposal is refused', () => {
    refuses(
      [submitted],
      approve(actorOf(agentId, ['agent', 'approver'], ['approver'])),
      'forbidden',
      'approverIsIndependent',
      /agent-7 proposed this action and cannot approve it/,
    )
    refuses(
      [submitted],
      approve(agent),
      'forbidden',
      'approverIsIndependent',
      /agent-7 holds no approver role/,
    )
  })

  test('approverIsIndependent: another agent approving is refused', () => {
    refuses(
      [submitted],
      approve(actorOf(otherAgent.sub, ['agent', 'approver'], ['approver'])),
      'forbidden',
      'approverIsIndependent',
      /agent-8 holds the agent role, and an agent's word is not evidence/,
    )
  })

  test('a registered agent presenting a token without the agent role still attests nothing', () => {
    const disguised = actorOf(otherAgent.sub, ['approver', 'simulator', 'executor'], ['approver'])
    refuses(
      [submitted],
      approve(disguised, { attesterIsAgent: true }),
      'forbidden',
      'approverIsIndependent',
      /agent-8 is a registered agent, and an agent's word is not evidence/,
    )
    const requested = proposal.decide(requestSimulation(), stateOf([submitted]))
    assert.throws(
      () =>
        proposal.decide(
          { ...attachSimulation(disguised), context: { attesterIsAgent: true } } as ProposalCommand,
          stateOf([submitted, ...requested]),
        ),
      /agent-8 is a registered agent/,
    )
  })

  test('approverIsIndependent: the executing identity approving is refused', () => {
    refuses(
      [submitted],
      approve(identityActor('approver')),
      'forbidden',
      'approverIsIndependent',
      /deployer is the action's executing identity and cannot approve it/,
    )
  })

  test('approverIsIndependent: an executor bound to the identity approving is refused', () => {
    refuses(
      [submitted],
      approve(approverExecutor, { executors: [approverExecutor.sub] }),
      'forbidden',
      'approverIsIndependent',
      /approver-executor is bound to run as deployer and may execute this action, so it cannot approve it/,
    )
    refuses(
      [submitted],
      approve(executor),
      'forbidden',
      'approverIsIndependent',
      /executor-1 holds no approver role/,
    )
  })

  test('approvalRoleFromToken: a role the token does not grant is refused', () => {
    refuses(
      [submitted],
      approve(approver, { role: 'change-board' }),
      'forbidden',
      'approvalRoleFromToken',
      /approver-1's token grants approval in 'approver', not 'change-board'/,
    )
  })

  test('approvalRoleFromToken: a role the token grants is recorded', () => {
    spec(proposal)
      .given([submitted])
      .when(approve(boardApprover, { role: 'change-board' }))
      .then([approved(boardApprover.sub, 'change-board')])
    spec(proposal)
      .given([submitted])
      .when(approve(boardApprover))
      .then([approved(boardApprover.sub)])
  })

  test('an identical approval is an idempotent no-op; the same approver in another role is another', () => {
    spec(proposal).given([submitted, approved()]).when(approve()).then([])
    spec(proposal)
      .given([submitted, approved(boardApprover.sub)])
      .when(approve(boardApprover, { role: 'change-board' }))
      .then([approved(boardApprover.sub, 'change-board')])
  })
})

describe('proposal decider: withdrawal', () => {
  test('proposerOrAdminWithdraws: the proposing agent or a policy admin withdraws an open proposal, once', () => {
    spec(proposal).given([submitted]).when(withdraw()).then([withdrawn])
    spec(proposal).given([submitted]).when(withdraw(admin)).then([withdrawn])
    spec(proposal)
      .given([submitted, withdrawn])
      .when(withdraw())
      .thenThrows('conflict', /withdraw: the proposal is withdrawn/)
  })

  test('proposerOrAdminWithdraws: another agent or an approver may not withdraw it', () => {
    refuses(
      [submitted],
      withdraw(otherAgent),
      'forbidden',
      'proposerOrAdminWithdraws',
      /only the proposing agent or a policy admin may withdraw this proposal/,
    )
    refuses(
      [submitted],
      withdraw(approver),
      'forbidden',
      'proposerOrAdminWithdraws',
      /only the proposing agent/,
    )
  })
})

describe('proposal decider: the execution gate', () => {
  const ready = [submitted, issued]

  test('a bound executor citing the live allow of this action starts it', () => {
    spec(proposal).given(ready).when(start()).then([started()])
    spec(proposal)
      .given(ready)
      .when(start(otherExecutor))
      .then([started(otherExecutor.sub)])
  })

  test('startedByExecutor: an agent starting its own action is refused, and nothing is recorded', () => {
    assert.deepEqual(whoReasons(ready, start(agent)), [
      { specification: 'startedByExecutor', reason: 'agent-7 holds no executor role' },
      { specification: 'executorRunsAsIdentity', reason: 'executor agent-7 is not bound to run as deployer' },
    ])
    // bound as an executor but without the role in its token
    assert.deepEqual(
      whoReasons(ready, start(approver, { executors: [approver.sub] })).map((r) => r.specification),
      ['startedByExecutor'],
    )
  })

  test('executorRunsAsIdentity: an executor not bound to the identity is refused, and nothing is recorded', () => {
    spec(proposal)
      .given(ready)
      .when(start(otherExecutor, { executors: [executor.sub] }))
      .thenThrows('forbidden', /executor executor-2 is not bound to run as deployer/)
  })

  test('approverNeverExecutes: an approver starting the execution it approved is refused, and nothing is recorded', () => {
    // approved while not bound, bound as an executor afterwards
    assert.deepEqual(
      whoReasons(
        [submitted, approved(approverExecutor.sub), issued],
        start(approverExecutor, { executors: [approverExecutor.sub] }),
      ),
      [
        {
          specification: 'approverNeverExecutes',
          reason: 'approver-executor approved this proposal and cannot also execute it',
        },
      ],
    )
    // another approver's approval does not stop a bound executor
    spec(proposal).given([submitted, approved(), issued]).when(start()).then([started()])
  })

  test('proposalIsOpen: a withdrawn proposal is not executed', () => {
    spec(proposal)
      .given([...ready, withdrawn])
      .when(start())
      .then([
        refused([
          {
            specification: 'proposalIsOpen',
            reason: 'the proposal is not open: it is withdrawn',
          },
        ]),
      ])
  })

  test('proposalIsOpen: an expired proposal is not executed, even on its allow', () => {
    const lapsed: ProposalEvent = {
      type: 'ProposalExpired',
      data: { proposalId, submittedAt: '2025-02-01T10:00:00.000Z', deadline: '2025-02-08T10:00:00.000Z' },
    }
    assert.deepEqual(gateReasons([...ready, lapsed], start()), [
      { specification: 'proposalIsOpen', reason: 'the proposal is not open: it is expired' },
    ])
  })

  test('proposalIsOpen: an execution starts once', () => {
    const reasons = gateReasons([...ready, started()], start(executor, { executionId: 'ex-2' }))
    assert.deepEqual(
      reasons.map((r) => r.specification),
      ['proposalIsOpen'],
    )
  })

  test('the same executor starting the same execution again is a retry: nothing new, nothing counted', () => {
    spec(proposal)
      .given([...ready, started()])
      .when(start(executor))
      .then([])
    const other = gateReasons([...ready, started()], start(otherExecutor))
    assert.ok(other.map((r) => r.specification).includes('proposalIsOpen'), 'another executor is refused')
  })

  test('citesLiveAllow: a start citing no verdict is refused and recorded', () => {
    spec(proposal)
      .given(ready)
      .when(start(executor, { cited: null }))
      .then([
        refused([{ specification: 'citesLiveAllow', reason: 'the start cites no verdict' }], { cited: null }),
      ])
  })

  test('citesLiveAllow: a start citing an unknown verdict is refused', () => {
    spec(proposal)
      .given([submitted])
      .when(start())
      .then([refused([{ specification: 'citesLiveAllow', reason: 'the proposal has no verdict yet' }])])
    spec(proposal)
      .given(ready)
      .when(start(executor, { cited: unknownVerdictId }))
      .then([
        refused(
          [
            {
              specification: 'citesLiveAllow',
              reason: `verdict ${unknownVerdictId} is not the current verdict ${verdictId}`,
            },
          ],
          { cited: unknownVerdictId },
        ),
      ])
  })

  test('citesLiveAllow: a start citing a superseded verdict is refused', () => {
    spec(proposal)
      .given([...ready, issuedVerdict(newerVerdictId)])
      .when(start())
      .then([
        refused([
          {
            specification: 'citesLiveAllow',
            reason: `verdict ${verdictId} is not the current verdict ${newerVerdictId}`,
          },
        ]),
      ])
    spec(proposal)
      .given([...ready, issuedVerdict(newerVerdictId)])
      .when(start(executor, { cited: newerVerdictId }))
      .then([{ ...started(), data: { ...started().data, verdictId: newerVerdictId } } as ProposalEvent])
  })

  test('citesLiveAllow: a start citing a block is refused', () => {
    spec(proposal)
      .given([submitted, issuedVerdict(verdictId, { decision: 'block' })])
      .when(start())
      .then([refused([{ specification: 'citesLiveAllow', reason: `verdict ${verdictId} is a block` }])])
  })

  test('citesLiveAllow: a start citing a revoked verdict is refused', () => {
    spec(proposal)
      .given([...ready, revoked])
      .when(start())
      .then([refused([{ specification: 'citesLiveAllow', reason: `verdict ${verdictId} was revoked` }])])
  })

  test('citesLiveAllow: a start citing an expired verdict is refused, whether or not its expiry was recorded', () => {
    const why = `verdict ${verdictId} expired at 2025-02-01T10:20:00.000Z`
    spec(proposal)
      .given([...ready, expired])
      .when(start())
      .then([refused([{ specification: 'citesLiveAllow', reason: why }])])
    // at ledger time the verdict has run out, though no VerdictExpired was written yet
    spec(proposal)
      .given(ready)
      .when(start(executor, { at: '2025-02-01T10:20:00.000Z' }))
      .then([refused([{ specification: 'citesLiveAllow', reason: why }])])
    spec(proposal)
      .given(ready)
      .when(start(executor, { at: '2025-02-01T10:19:59.999Z' }))
      .then([started()])
  })

  test('citesThisAction: a start naming another action digest is refused and recorded', () => {
    spec(proposal)
      .given(ready)
      .when(start(executor, { digest: otherDigest }))
      .then([
        refused(
          [
            {
              specification: 'citesThisAction',
              reason: `the start names action ${otherDigest}, not this proposal's action ${actionDigest}`,
            },
          ],
          { digest: otherDigest },
        ),
      ])
  })

  test('a start breaking every rule is refused with all the reasons, in the order of the gate', () => {
    // an approver without the executor role, not bound, on a withdrawn proposal, citing nothing, for another action
    const given = [submitted, approved(), issued, withdrawn]
    const switches: KillSwitchRef[] = [{ scope: 'global', target: null }]
    // who may start is judged first: such a principal is refused without a record
    assert.deepEqual(
      whoReasons(given, start(approver, { cited: null, digest: otherDigest, executors: [], switches })).map(
        (r) => r.specification,
      ),
      WHO_MAY_START.map((s) => s.name),
    )
    // an entitled executor breaking every other rule is refused and recorded with all the reasons
    const reasons = gateReasons(given, start(executor, { cited: null, digest: otherDigest, switches }))
    assert.deepEqual(
      reasons.map((r) => r.specification),
      WHAT_A_START_NEEDS.map((s) => s.name),
    )
    assert.deepEqual(
      [...WHO_MAY_START, ...WHAT_A_START_NEEDS].map((s) => s.name),
      [
        'startedByExecutor',
        'executorRunsAsIdentity',
        'approverNeverExecutes',
        'proposalIsOpen',
        'citesLiveAllow',
        'noKillSwitchEngaged',
        'citesThisAction',
      ],
    )
    for (const { reason } of reasons) assert.ok(reason.length > 0)
  })

  test('gateOpen: no start while the service cannot vouch for the verdict, and the answer says why (503)', () => {
    spec(proposal)
      .given(ready)
      .when(start(executor, { closed: 'projections: stopped: SQLITE_BUSY' }))
      .thenThrows('unavailable', /execution gate is closed.*projections: stopped: SQLITE_BUSY/)
  })

  test('noKillSwitchEngaged: an engaged switch stops a start before its revocation reaches the verdict', () => {
    const reasons = gateReasons(
      ready,
      start(executor, { switches: [{ scope: 'tool', target: 'kubernetes' }] }),
    )
    assert.deepEqual(
      reasons.map((r) => r.specification),
      ['noKillSwitchEngaged'],
    )
    assert.match(reasons[0]?.reason ?? '', /the tool switch for kubernetes/)
  })

  test('a refused start leaves the proposal open: nothing ran', () => {
    const refusal = refused([{ specification: 'citesLiveAllow', reason: 'the start cites no verdict' }], {
      cited: null,
    })
    assert.equal(stateOf([...ready, refusal]).status, 'open')
    spec(proposal)
      .given([...ready, refusal])
      .when(start())
      .then([started()])
  })
})

describe('proposal decider: outcomes and rollbacks', () => {
  const running = [submitted, issued, started()]

  test('an execution ends in success or failure', () => {
    spec(proposal).given(running).when(succeed()).then([succeeded])
    spec(proposal).given(running).when(fail()).then([failed])
  })

  test('an execution cannot succeed before it starts: there is no execution to report on', () => {
    spec(proposal)
      .given([submitted])
      .when(succeed())
      .thenThrows('not-found', /execution ex-1 is not this proposal's execution/)
  })

  test('an execution is completed under its own id', () => {
    spec(proposal)
      .given(running)
      .when(fail(executor, 'ex-9'))
      .thenThrows('not-found', /execution ex-9 is not this proposal's execution/)
  })

  test('starterReports: success or failure reported by another executor is refused', () => {
    refuses(
      running,
      succeed(otherExecutor),
      'forbidden',
      'starterReports',
      /only executor-1, which started the execution, may report its success/,
    )
    refuses(
      running,
      fail(otherExecutor),
      'forbidden',
      'starterReports',
      /only executor-1, which started the execution, may report its failure/,
    )
    // the agent cannot declare its own action done either
    refuses(running, succeed(agent), 'forbidden', 'starterReports', /only executor-1/)
  })

  test('starterReports: a rollback is started and reported only by the executor that started the execution', () => {
    refuses(
      [...running, failed],
      startRollback(otherExecutor),
      'forbidden',
      'starterReports',
      /only executor-1, which started the execution, may roll it back/,
    )
    refuses(
      [...running, failed, rollbackStarted()],
      completeRollback(otherExecutor),
      'forbidden',
      'starterReports',
      /only executor-1, which started the execution, may report its completion/,
    )
    refuses(
      [...running, failed, rollbackStarted()],
      failRollback(otherExecutor),
      'forbidden',
      'starterReports',
      /only executor-1/,
    )
  })

  test('a failed execution is rolled back by its executor', () => {
    spec(proposal)
      .given([...running, failed])
      .when(startRollback())
      .then([rollbackStarted()])
    spec(proposal)
      .given([...running, failed, rollbackStarted()])
      .when(completeRollback())
      .then([
        {
          type: 'RollbackCompleted',
          data: { proposalId, rollbackId: 'rb-1', resourceVersionAfter: 'rv-43' },
        },
      ])
  })

  test('a succeeded execution may be rolled back too', () => {
    spec(proposal)
      .given([...running, succeeded])
      .when(startRollback())
      .then([rollbackStarted()])
  })

  test('a failed rollback may be tried again', () => {
    spec(proposal)
      .given([...running, failed, rollbackStarted()])
      .when(failRollback())
      .then([rollbackFailed])
    spec(proposal)
      .given([...running, failed, rollbackStarted(), rollbackFailed])
      .when(startRollback(executor, 'rb-2'))
      .then([rollbackStarted('rb-2')])
  })

  test('a rollback needs a finished execution and its own ids', () => {
    spec(proposal)
      .given(running)
      .when(startRollback())
      .thenThrows('conflict', /start a rollback: the proposal is executing/)
    spec(proposal)
      .given([...running, failed])
      .when(startRollback(executor, 'rb-1', 'ex-9'))
      .thenThrows('not-found', /ex-9/)
    spec(proposal)
      .given([...running, failed, rollbackStarted()])
      .when(completeRollback(executor, 'rb-9'))
      .thenThrows('not-found', /rollback rb-9 is not this proposal's rollback/)
    spec(proposal)
      .given([...running, failed])
      .when(completeRollback())
      .thenThrows('not-found', /rollback rb-1 is not this proposal's rollback/)
  })
})

describe('proposal decider: state', () => {
  test('the state carries the current verdict and what the decision service recorded', () => {
    const violation: ProposalEvent = {
      type: 'ViolationRecorded',
      data: {
        proposalId,
        executionId: 'ex-1',
        agentId,
        responsible: executor.sub,
        verdictId,
        kind: 'expired',
        reason: 'the verdict had expired',
      },
    }
    const deadline: ProposalEvent = {
      type: 'RecoveryDeadlinePassed',
      data: {
        proposalId,
        executionId: 'ex-1',
        failedAt: '2025-02-01T11:00:00.000Z',
        deadline: '2025-02-01T11:15:00.000Z',
      },
    }
    const state = stateOf([submitted, issued, expired, started(), violation, failed, deadline])
    if (state.status !== 'failed') assert.fail(`expected failed, got ${state.status}`)
    assert.deepEqual(state.verdict, {
      verdictId,
      decision: 'allow',
      expiresAt: '2025-02-01T10:20:00.000Z',
      revoked: false,
      expired: true,
    })
    assert.equal(state.violation, 'expired')
    assert.equal(state.recoveryDeadlinePassed, true)
    assert.equal(state.executionId, 'ex-1')
    assert.equal(state.executor, executor.sub)
  })

  test('the state keeps every piece of evidence', () => {
    const state = stateOf([
      submitted,
      simulationRequested,
      simulationRecorded(),
      rollbackTested(),
      approved(),
    ])
    if (state.status !== 'open') assert.fail(`expected open, got ${state.status}`)
    assert.equal(state.simulationRequests.length, 1)
    assert.equal(state.simulations.length, 1)
    assert.equal(state.rollbackTests.length, 1)
    assert.deepEqual(
      state.approvals.map((a) => a.approver),
      [approver.sub],
    )
  })

  test('revoking a superseded verdict leaves the current one as it is', () => {
    const state = stateOf([submitted, issued, issuedVerdict(newerVerdictId), revoked])
    assert.deepEqual(state.status !== 'none' && state.verdict, {
      verdictId: newerVerdictId,
      decision: 'allow',
      expiresAt: '2025-02-01T10:20:00.000Z',
      revoked: false,
      expired: false,
    })
  })
})
