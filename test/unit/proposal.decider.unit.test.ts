import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { planHashOf } from '../../src/domain/canonical.js'
import type { ProposalCommand, ProposalEvent } from '../../src/domain/deciders/proposal.js'
import * as proposal from '../../src/domain/deciders/proposal.js'
import type { AuthorityLevel, DataOf } from '../../src/domain/events.js'
import { spec } from '../support/decider-spec.js'

const proposalId = 'p-1'
const agentId = 'agent-7'
const plan = { replicas: 3, image: 'api:1.4.2' }
const planHash = planHashOf(plan)
const otherHash = planHashOf({ replicas: 30 })
const verdictId = '0190c5a8-0000-7000-8000-000000000001'

const submit = (agentLevel: AuthorityLevel | null): ProposalCommand => ({
  type: 'SubmitProposal',
  proposalId,
  agentId,
  executingIdentity: 'deployer',
  tool: 'kubernetes',
  action: 'scale',
  resource: 'deployment/api',
  environment: 'production',
  plan,
  expectedImpact: 'high',
  snapshot: { version: 'rv-41' },
  description: 'scale the api',
  context: { agentLevel },
})

const submitted: ProposalEvent = {
  type: 'ProposalSubmitted',
  data: {
    proposalId,
    agentId,
    executingIdentity: 'deployer',
    tool: 'kubernetes',
    action: 'scale',
    resource: 'deployment/api',
    environment: 'production',
    plan,
    planHash,
    expectedImpact: 'high',
    snapshot: { version: 'rv-41' },
    description: 'scale the api',
  },
}

const simulation: Omit<DataOf<'SimulationRecorded'>, 'proposalId'> = {
  simulationId: 'sim-1',
  planHash,
  simulatedBy: 'simulator',
  branches: [
    { name: 'db-down', kind: 'dependency-down', counterfactual: 'the database is down', outcome: 'survived' },
  ],
}
const rollbackTest: Omit<DataOf<'RollbackTested'>, 'proposalId'> = {
  planHash,
  playbook: 'scale back to 2 replicas',
  testRunId: 'run-1',
  testedAt: '2025-02-01T10:00:00.000Z',
  outcome: 'passed',
  expectedRecoverySeconds: 120,
  killSwitch: { scope: 'tool', target: 'kubernetes' },
}
const approved = (approver: string, hash = planHash): ProposalEvent => ({
  type: 'ApprovalGranted',
  data: { proposalId, planHash: hash, approver, role: 'sre' },
})
const started = (executionId = 'ex-1', cited: string | null = verdictId): ProposalEvent => ({
  type: 'ExecutionStarted',
  data: { proposalId, executionId, verdictId: cited, planHash, executor: 'deployer' },
})
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
const issuedVerdict = (id: string): ProposalEvent => ({
  type: 'VerdictIssued',
  data: {
    verdictId: id,
    proposalId,
    revision: 1,
    decision: 'allow',
    checks: [],
    agentId,
    tool: 'kubernetes',
    action: 'scale',
    resource: 'deployment/api',
    environment: 'production',
    impact: 'high',
    planHash,
    resourceVersion: 'rv-41',
    policyVersion: 3,
    decidedAt: '2025-02-01T10:05:00.000Z',
    expiresAt: '2025-02-01T10:20:00.000Z',
    supersedes: null,
    basedOnEventId: '0190c5a8-0000-7000-8000-0000000000aa',
    signature: 'header.payload.signature',
  },
})
const issued = issuedVerdict(verdictId)

const stateOf = (events: ProposalEvent[]) => events.reduce(proposal.evolve, proposal.initialState())

describe('proposal decider', () => {
  test('a proposal is submitted by an agent above observe', () => {
    spec(proposal).given([]).when(submit('recommend')).then([submitted])
  })

  test('the plan hash is computed by the ledger', () => {
    const command = { ...submit('execute'), planHash: `sha256:${'0'.repeat(64)}` }
    spec(proposal).given([]).when(command).then([submitted])
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

  test('commands for an unknown proposal are not found', () => {
    spec(proposal).given([]).when({ type: 'Withdraw', reason: 'no longer needed' }).thenThrows('not-found')
  })

  test('evidence is attached while the proposal is open', () => {
    spec(proposal)
      .given([submitted])
      .when({ type: 'AttachSimulation', ...simulation })
      .then([{ type: 'SimulationRecorded', data: { proposalId, ...simulation } }])
    spec(proposal)
      .given([submitted])
      .when({ type: 'AttachRollbackTest', ...rollbackTest })
      .then([{ type: 'RollbackTested', data: { proposalId, ...rollbackTest } }])
    spec(proposal)
      .given([submitted])
      .when({ type: 'Approve', approver: 'sre-on-call', role: 'sre', planHash })
      .then([approved('sre-on-call')])
  })

  test('evidence is refused once the proposal is no longer open', () => {
    const history = [submitted, started()]
    spec(proposal)
      .given(history)
      .when({ type: 'AttachSimulation', ...simulation })
      .thenThrows('conflict', /attach a simulation: the proposal is executing/)
    spec(proposal)
      .given(history)
      .when({ type: 'AttachRollbackTest', ...rollbackTest })
      .thenThrows('conflict', /executing/)
    spec(proposal)
      .given(history)
      .when({ type: 'Approve', approver: 'sre-on-call', role: 'sre', planHash })
      .thenThrows('conflict', /executing/)
  })

  test('evidence for another plan hash is recorded as given', () => {
    spec(proposal)
      .given([submitted])
      .when({ type: 'Approve', approver: 'sre-on-call', role: 'sre', planHash: otherHash })
      .then([approved('sre-on-call', otherHash)])
    spec(proposal)
      .given([submitted])
      .when({ type: 'AttachSimulation', ...simulation, planHash: otherHash })
      .then([{ type: 'SimulationRecorded', data: { proposalId, ...simulation, planHash: otherHash } }])
  })

  test('no self-approval', () => {
    spec(proposal)
      .given([submitted])
      .when({ type: 'Approve', approver: agentId, role: 'sre', planHash })
      .thenThrows('forbidden', /no self-approval/)
  })

  test('an identical approval is an idempotent no-op', () => {
    spec(proposal)
      .given([submitted, approved('sre-on-call')])
      .when({ type: 'Approve', approver: 'sre-on-call', role: 'sre', planHash })
      .then([])
    spec(proposal)
      .given([submitted, approved('sre-on-call')])
      .when({ type: 'Approve', approver: 'sre-on-call', role: 'sre', planHash: otherHash })
      .then([approved('sre-on-call', otherHash)])
  })

  test('repeated evidence is a no-op, and other evidence under the same id a conflict', () => {
    const recorded: ProposalEvent = { type: 'SimulationRecorded', data: { proposalId, ...simulation } }
    spec(proposal)
      .given([submitted, recorded])
      .when({ type: 'AttachSimulation', ...simulation })
      .then([])
    spec(proposal)
      .given([submitted, recorded])
      .when({ type: 'AttachSimulation', ...simulation, simulatedBy: agentId })
      .thenThrows('conflict', /sim-1/)
    spec(proposal)
      .given([submitted, { type: 'RollbackTested', data: { proposalId, ...rollbackTest } }])
      .when({ type: 'AttachRollbackTest', ...rollbackTest })
      .then([])
  })

  test('an open proposal may be withdrawn, once', () => {
    const withdrawn: ProposalEvent = { type: 'ProposalWithdrawn', data: { proposalId, reason: 'superseded' } }
    spec(proposal).given([submitted]).when({ type: 'Withdraw', reason: 'superseded' }).then([withdrawn])
    spec(proposal)
      .given([submitted, withdrawn])
      .when({ type: 'Withdraw', reason: 'superseded' })
      .thenThrows('conflict', /withdrawn/)
    spec(proposal)
      .given([submitted, withdrawn])
      .when({ type: 'StartExecution', executionId: 'ex-1', verdictId, planHash, executor: 'deployer' })
      .thenThrows('conflict', /withdrawn/)
  })

  test('an execution without a valid verdict is still recorded', () => {
    spec(proposal)
      .given([submitted])
      .when({ type: 'StartExecution', executionId: 'ex-1', verdictId: null, planHash, executor: 'deployer' })
      .then([started('ex-1', null)])
    spec(proposal)
      .given([
        submitted,
        issued,
        { type: 'VerdictRevoked', data: { verdictId, proposalId, reason: 'kill switch', killSwitch: null } },
      ])
      .when({
        type: 'StartExecution',
        executionId: 'ex-1',
        verdictId,
        planHash: otherHash,
        executor: 'deployer',
      })
      .then([
        {
          type: 'ExecutionStarted',
          data: { proposalId, executionId: 'ex-1', verdictId, planHash: otherHash, executor: 'deployer' },
        },
      ])
  })

  test('an execution starts once', () => {
    spec(proposal)
      .given([submitted, started()])
      .when({ type: 'StartExecution', executionId: 'ex-2', verdictId, planHash, executor: 'deployer' })
      .thenThrows('conflict', /start an execution: the proposal is executing/)
  })

  test('an execution ends in success or failure', () => {
    spec(proposal)
      .given([submitted, started()])
      .when({ type: 'SucceedExecution', executionId: 'ex-1', resourceVersionAfter: 'rv-42' })
      .then([
        {
          type: 'ExecutionSucceeded',
          data: { proposalId, executionId: 'ex-1', resourceVersionAfter: 'rv-42' },
        },
      ])
    spec(proposal)
      .given([submitted, started()])
      .when({
        type: 'FailExecution',
        executionId: 'ex-1',
        error: 'pods crash-looping',
        resourceVersionAfter: 'rv-42',
      })
      .then([failed])
  })

  test('an execution cannot succeed before it starts', () => {
    spec(proposal)
      .given([submitted])
      .when({ type: 'SucceedExecution', executionId: 'ex-1', resourceVersionAfter: null })
      .thenThrows('conflict', /the proposal is open/)
  })

  test('an execution is completed under its own id', () => {
    spec(proposal)
      .given([submitted, started()])
      .when({ type: 'FailExecution', executionId: 'ex-9', error: 'boom', resourceVersionAfter: null })
      .thenThrows('conflict', /ex-9/)
  })

  test('a failed execution is rolled back', () => {
    spec(proposal)
      .given([submitted, started(), failed])
      .when({ type: 'StartRollback', rollbackId: 'rb-1', executionId: 'ex-1' })
      .then([rollbackStarted()])
    spec(proposal)
      .given([submitted, started(), failed, rollbackStarted()])
      .when({ type: 'CompleteRollback', rollbackId: 'rb-1', resourceVersionAfter: 'rv-43' })
      .then([
        {
          type: 'RollbackCompleted',
          data: { proposalId, rollbackId: 'rb-1', resourceVersionAfter: 'rv-43' },
        },
      ])
  })

  test('a failed rollback may be tried again', () => {
    spec(proposal)
      .given([submitted, started(), failed, rollbackStarted()])
      .when({ type: 'FailRollback', rollbackId: 'rb-1', error: 'playbook timed out' })
      .then([rollbackFailed])
    spec(proposal)
      .given([submitted, started(), failed, rollbackStarted(), rollbackFailed])
      .when({ type: 'StartRollback', rollbackId: 'rb-2', executionId: 'ex-1' })
      .then([rollbackStarted('rb-2')])
  })

  test('a rollback needs a finished execution and its own ids', () => {
    spec(proposal)
      .given([submitted, started()])
      .when({ type: 'StartRollback', rollbackId: 'rb-1', executionId: 'ex-1' })
      .thenThrows('conflict', /start a rollback: the proposal is executing/)
    spec(proposal)
      .given([submitted, started(), failed])
      .when({ type: 'StartRollback', rollbackId: 'rb-1', executionId: 'ex-9' })
      .thenThrows('conflict', /ex-9/)
    spec(proposal)
      .given([submitted, started(), failed, rollbackStarted()])
      .when({ type: 'CompleteRollback', rollbackId: 'rb-9', resourceVersionAfter: null })
      .thenThrows('conflict', /rb-9/)
    spec(proposal)
      .given([submitted, started(), failed])
      .when({ type: 'CompleteRollback', rollbackId: 'rb-1', resourceVersionAfter: null })
      .thenThrows('conflict', /the proposal is failed/)
  })

  test('the state carries the current verdict and what the decision service recorded', () => {
    const expired: ProposalEvent = {
      type: 'VerdictExpired',
      data: { verdictId, proposalId, expiresAt: '2025-02-01T10:20:00.000Z' },
    }
    const violation: ProposalEvent = {
      type: 'ViolationRecorded',
      data: {
        proposalId,
        executionId: 'ex-1',
        agentId,
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
  })

  test('revoking a superseded verdict leaves the current one as it is', () => {
    const newer = issuedVerdict('0190c5a8-0000-7000-8000-000000000002')
    const revoked: ProposalEvent = {
      type: 'VerdictRevoked',
      data: {
        verdictId,
        proposalId,
        reason: 'kill switch engaged',
        killSwitch: { scope: 'global', target: null },
      },
    }
    const state = stateOf([submitted, issued, newer, revoked])
    assert.deepEqual(state.status !== 'none' && state.verdict, {
      verdictId: '0190c5a8-0000-7000-8000-000000000002',
      decision: 'allow',
      expiresAt: '2025-02-01T10:20:00.000Z',
      revoked: false,
      expired: false,
    })
  })
})
