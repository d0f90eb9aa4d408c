import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type AgentDoc,
  authority,
  authorityKeys,
  authorityOf,
  type TrackDoc,
  trackDaysOf,
  trackRecord,
} from '../../projections/authority.js'
import { actionDigestFor, LedgerBuilder, proposalData } from '../support/ledger-events.js'
import { given } from '../support/projection-spec.js'

const trackRecordOf = {
  windowStart: '2024-04-01T00:00:00.000Z',
  windowEnd: '2024-05-01T00:00:00.000Z',
  proposals: 0,
  simulationsPassed: 0,
  simulationSurvivalRate: 1,
  violations: 0,
  failedExecutions: 0,
}

describe('authority projection', () => {
  it('keeps a level per environment, from promotions and demotions, with their causes', () => {
    const l = new LedgerBuilder('2024-05-01T10:00:00.000Z')
    const registered = l.event('AgentRegistered', { agentId: 'agent-1', owner: 'platform-team' })
    const requested = l.after(60).event('PromotionRequested', {
      agentId: 'agent-1',
      requestId: 'req-1',
      environment: 'staging',
      from: 'observe',
      to: 'recommend',
      trackRecord: trackRecordOf,
      requestedBy: 'agent-1',
    })
    const skipping = l.event('PromotionRequested', {
      agentId: 'agent-1',
      requestId: 'req-2',
      environment: 'production',
      from: 'observe',
      to: 'execute',
      trackRecord: trackRecordOf,
      requestedBy: 'agent-1',
    })
    const refused = l.event('PromotionRefused', {
      agentId: 'agent-1',
      requestId: 'req-2',
      environment: 'production',
      from: 'observe',
      to: 'execute',
      reason: 'a promotion climbs one rung at a time',
    })
    const endorsed = l.after(30).event('PromotionApproved', {
      agentId: 'agent-1',
      requestId: 'req-1',
      environment: 'staging',
      approvedBy: 'admin-2',
    })
    const approved = l.after(30).event('PromotionApproved', {
      agentId: 'agent-1',
      requestId: 'req-1',
      environment: 'staging',
      approvedBy: 'admin-1',
    })
    const promoted = l.event('AgentPromoted', {
      agentId: 'agent-1',
      requestId: 'req-1',
      environment: 'staging',
      from: 'observe',
      to: 'recommend',
      approvedBy: 'admin-1',
      endorsedBy: ['admin-2', 'admin-1'],
    })
    const spec = given(authority, [registered, requested, skipping, refused, endorsed, approved, promoted])
    spec.then({
      'agent:agent-1': {
        kind: 'agent',
        agentId: 'agent-1',
        owner: 'platform-team',
        levels: {
          staging: {
            level: 'recommend',
            since: '2024-05-01T10:02:00.000Z',
            cause: 'promotion',
            requestId: 'req-1',
            approvedBy: 'admin-1',
            eventId: promoted.id,
          },
        },
        pendingPromotions: [],
        refusedPromotions: 1,
      },
    })
    const agent = spec.doc('agent:agent-1') as AgentDoc
    assert.equal(authorityOf(agent, 'staging'), 'recommend')
    assert.equal(authorityOf(agent, 'production'), 'observe', 'an environment never promoted is at observe')
    assert.equal(authorityOf(undefined, 'staging'), 'observe')
  })

  it('lists a promotion as pending until it is decided', () => {
    const l = new LedgerBuilder()
    const spec = given(authority, [
      l.event('AgentRegistered', { agentId: 'agent-1', owner: 'platform-team' }),
      l.event('PromotionRequested', {
        agentId: 'agent-1',
        requestId: 'req-1',
        environment: 'staging',
        from: 'observe',
        to: 'recommend',
        trackRecord: trackRecordOf,
        requestedBy: 'agent-1',
      }),
    ])
    const agent = spec.doc('agent:agent-1') as AgentDoc
    assert.deepEqual(
      agent.pendingPromotions.map((p) => [p.requestId, p.environment, p.from, p.to, p.requestedAt]),
      [['req-1', 'staging', 'observe', 'recommend', '2024-05-01T10:00:00.000Z']],
    )
  })

  it('demotes in one environment only, keeping the reason', () => {
    const l = new LedgerBuilder('2024-05-01T10:00:00.000Z')
    const promote = (
      environment: string,
      from: 'observe' | 'recommend' | 'simulate',
      to: 'recommend' | 'simulate' | 'execute',
    ) =>
      l.after(60).event('AgentPromoted', {
        agentId: 'agent-1',
        requestId: `req-${environment}-${to}`,
        environment,
        from,
        to,
        approvedBy: 'admin-1',
        endorsedBy: ['admin-2', 'admin-1'],
      })
    const events = [
      l.event('AgentRegistered', { agentId: 'agent-1', owner: 'platform-team' }),
      promote('staging', 'observe', 'recommend'),
      promote('staging', 'recommend', 'simulate'),
      promote('staging', 'simulate', 'execute'),
      promote('production', 'observe', 'recommend'),
    ]
    const demoted = l.after(3600).event('AgentDemoted', {
      agentId: 'agent-1',
      environment: 'staging',
      from: 'execute',
      to: 'simulate',
      cause: 'violation',
      proposalId: 'p-9',
      reason: 'executed without a valid allow verdict',
    })
    const agent = given(authority, [...events, demoted]).doc('agent:agent-1') as AgentDoc
    assert.deepEqual(agent.levels.staging, {
      level: 'simulate',
      since: '2024-05-01T11:04:00.000Z',
      cause: 'demotion',
      reason: 'executed without a valid allow verdict',
      demotionCause: 'violation',
      proposalId: 'p-9',
      eventId: demoted.id,
    })
    assert.equal(authorityOf(agent, 'production'), 'recommend')
  })

  it('counts the track record per agent, environment and UTC day', () => {
    const l = new LedgerBuilder('2024-05-01T23:00:00.000Z')
    const spec = given(authority, [
      l.event('ProposalSubmitted', proposalData({ proposalId: 'p-1', environment: 'staging' })),
      l.event('SimulationRecorded', {
        proposalId: 'p-1',
        simulationId: 'sim-1',
        requestId: 'simreq-1',
        actionDigest: actionDigestFor({ proposalId: 'p-1', environment: 'staging' }),
        simulatedBy: 'simulator-1',
        branches: [
          { name: 'base', kind: 'baseline', counterfactual: 'as planned', outcome: 'failed' },
          { name: 'db-down', kind: 'dependency-down', counterfactual: 'database down', outcome: 'survived' },
          {
            name: 'race',
            kind: 'concurrent-change',
            counterfactual: 'a concurrent deploy',
            outcome: 'survived',
          },
        ],
      }),
      l.after(3600).event('ProposalSubmitted', proposalData({ proposalId: 'p-2', environment: 'staging' })),
      l.event('SimulationRecorded', {
        proposalId: 'p-2',
        simulationId: 'sim-2',
        requestId: 'simreq-2',
        actionDigest: actionDigestFor({ proposalId: 'p-2', environment: 'staging' }),
        simulatedBy: 'simulator-2',
        branches: [
          { name: 'base', kind: 'baseline', counterfactual: 'as planned', outcome: 'survived' },
          {
            name: 'partial',
            kind: 'partial-failure',
            counterfactual: 'half the pods fail',
            outcome: 'failed',
          },
          { name: 'stale', kind: 'stale-read', counterfactual: 'a stale read', outcome: 'survived' },
        ],
      }),
      l.event('ExecutionStarted', {
        proposalId: 'p-2',
        executionId: 'e-2',
        verdictId: null,
        actionDigest: actionDigestFor({ proposalId: 'p-2', environment: 'staging' }),
        executor: 'executor-1',
      }),
      l.event('ViolationRecorded', {
        proposalId: 'p-2',
        executionId: 'e-2',
        agentId: 'agent-1',
        responsible: 'executor-1',
        verdictId: null,
        kind: 'no-verdict',
        reason: 'the execution cited no verdict',
      }),
      l.event('ExecutionFailed', {
        proposalId: 'p-2',
        executionId: 'e-2',
        error: 'timeout',
        resourceVersionAfter: null,
      }),
      l.event('ProposalSubmitted', proposalData({ proposalId: 'p-3', environment: 'production' })),
    ])
    const day = (d: string, counts: Partial<TrackDoc>): TrackDoc => ({
      kind: 'track',
      agentId: 'agent-1',
      environment: 'staging',
      day: d,
      proposals: 0,
      simulations: 0,
      simulationsPassed: 0,
      branches: 0,
      branchesSurvived: 0,
      violations: 0,
      failedExecutions: 0,
      ...counts,
    })
    spec.then({
      'track:agent-1:staging:2024-05-01': day('2024-05-01', {
        proposals: 1,
        simulations: 1,
        simulationsPassed: 1,
        branches: 2,
        branchesSurvived: 2,
      }),
      'track:agent-1:staging:2024-05-02': day('2024-05-02', {
        proposals: 1,
        simulations: 1,
        simulationsPassed: 0,
        branches: 2,
        branchesSurvived: 1,
        violations: 1,
        failedExecutions: 1,
      }),
      'track:agent-1:production:2024-05-02': {
        ...day('2024-05-02', { proposals: 1 }),
        environment: 'production',
      },
      'proposal:p-1': { kind: 'proposal', agentId: 'agent-1', environment: 'staging' },
    })

    const days = trackDaysOf(spec.list(authorityKeys.trackPrefix('agent-1', 'staging')), 'agent-1', 'staging')
    assert.deepEqual(trackRecord(days, '2024-04-25T00:00:00.000Z', '2024-05-02T12:00:00.000Z'), {
      windowStart: '2024-04-25T00:00:00.000Z',
      windowEnd: '2024-05-02T12:00:00.000Z',
      proposals: 2,
      simulationsPassed: 1,
      simulationSurvivalRate: 0.75,
      violations: 1,
      failedExecutions: 1,
    })
    const firstDayOnly = trackRecord(days, '2024-04-25T00:00:00.000Z', '2024-05-01T23:59:59.999Z')
    assert.deepEqual(
      [firstDayOnly.proposals, firstDayOnly.violations, firstDayOnly.simulationSurvivalRate],
      [1, 0, 1],
    )
  })

  it('gives a survival rate of 1 and zero counts when the window holds nothing', () => {
    assert.deepEqual(trackRecord([], '2024-04-01T00:00:00.000Z', '2024-05-01T00:00:00.000Z'), trackRecordOf)
  })

  it('keeps agents whose ids share a prefix apart', () => {
    const l = new LedgerBuilder()
    const spec = given(authority, [
      l.event('ProposalSubmitted', proposalData({ proposalId: 'p-1', agentId: 'a', environment: 'b' })),
      l.event(
        'ProposalSubmitted',
        proposalData({ proposalId: 'p-2', agentId: 'a:b', environment: 'staging' }),
      ),
    ])
    const listed = spec.list(authorityKeys.trackPrefix('a', 'b'))
    assert.equal(listed.length, 2, 'the prefix alone also lists agent a:b')
    assert.deepEqual(
      trackDaysOf(listed, 'a', 'b').map((d) => [d.agentId, d.environment]),
      [['a', 'b']],
    )
  })
})
