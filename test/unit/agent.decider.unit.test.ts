import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { levelIn, nextRung, rungBelow } from '../../src/domain/authority.js'
import type { AgentEvent } from '../../src/domain/deciders/agent.js'
import * as agent from '../../src/domain/deciders/agent.js'
import type { AuthorityLevel, TrackRecord } from '../../src/domain/events.js'
import { spec } from '../support/decider-spec.js'

const agentId = 'agent-7'
const trackRecord: TrackRecord = {
  windowStart: '2025-01-01T00:00:00.000Z',
  windowEnd: '2025-01-31T00:00:00.000Z',
  proposals: 40,
  simulationsPassed: 38,
  simulationSurvivalRate: 0.95,
  violations: 0,
  failedExecutions: 1,
}

const registered: AgentEvent = {
  type: 'AgentRegistered',
  data: { agentId, owner: 'platform-team', description: 'restarts stuck workers' },
}
const requested = (
  requestId: string,
  environment: string,
  from: AuthorityLevel,
  to: AuthorityLevel,
): AgentEvent => ({
  type: 'PromotionRequested',
  data: { agentId, requestId, environment, from, to, trackRecord },
})
const promoted = (
  requestId: string,
  environment: string,
  from: AuthorityLevel,
  to: AuthorityLevel,
): AgentEvent => ({
  type: 'AgentPromoted',
  data: { agentId, requestId, environment, from, to, approvedBy: 'policy-admin' },
})
const request = (requestId: string, environment: string, to: AuthorityLevel) =>
  ({ type: 'RequestPromotion', requestId, environment, to, trackRecord }) as const
const approve = (requestId: string, approver = 'policy-admin') =>
  ({ type: 'ApprovePromotion', requestId, approver }) as const

/** The history of an agent promoted rung by rung up to a level in one environment. */
const climbedTo = (environment: string, top: AuthorityLevel): AgentEvent[] => {
  const ladder: AuthorityLevel[] = ['observe', 'recommend', 'simulate', 'execute']
  return ladder.slice(1, ladder.indexOf(top) + 1).flatMap((to, i) => {
    const from = ladder[i] ?? 'observe'
    const id = `${environment}-${to}`
    return [requested(id, environment, from, to), promoted(id, environment, from, to)]
  })
}

describe('agent decider', () => {
  test('an agent is registered once', () => {
    spec(agent)
      .given([])
      .when({ type: 'RegisterAgent', agentId, owner: 'platform-team', description: 'restarts stuck workers' })
      .then([registered])
    spec(agent)
      .given([registered])
      .when({ type: 'RegisterAgent', agentId, owner: 'someone-else', description: '' })
      .thenThrows('conflict', /already registered/)
  })

  test('commands for an unknown agent are not found', () => {
    spec(agent)
      .given([])
      .when(request('r1', 'staging', 'recommend'))
      .thenThrows('not-found')
    spec(agent).given([]).when(approve('r1')).thenThrows('not-found')
  })

  test('each rung of the ladder is earned one at a time', () => {
    const steps: [AuthorityLevel, AuthorityLevel][] = [
      ['observe', 'recommend'],
      ['recommend', 'simulate'],
      ['simulate', 'execute'],
    ]
    const history: AgentEvent[] = [registered]
    for (const [from, to] of steps) {
      const id = `staging-${to}`
      spec(agent)
        .given(history)
        .when(request(id, 'staging', to))
        .then([requested(id, 'staging', from, to)])
      history.push(requested(id, 'staging', from, to))
      spec(agent)
        .given(history)
        .when(approve(id))
        .then([promoted(id, 'staging', from, to)])
      history.push(promoted(id, 'staging', from, to))
    }
  })

  test('a request that skips a rung is refused and recorded', () => {
    spec(agent)
      .given([registered])
      .when(request('r1', 'production', 'execute'))
      .then([
        {
          type: 'PromotionRefused',
          data: {
            agentId,
            requestId: 'r1',
            environment: 'production',
            from: 'observe',
            to: 'execute',
            reason:
              'promotion is one rung at a time: from observe in production the next rung is recommend, not execute',
          },
        },
      ])
  })

  test('a request that does not go up is refused and recorded', () => {
    spec(agent)
      .given([registered, ...climbedTo('staging', 'simulate')])
      .when(request('r1', 'staging', 'recommend'))
      .then([
        {
          type: 'PromotionRefused',
          data: {
            agentId,
            requestId: 'r1',
            environment: 'staging',
            from: 'simulate',
            to: 'recommend',
            reason:
              'promotion is one rung at a time: from simulate in staging the next rung is execute, not recommend',
          },
        },
      ])
    spec(agent)
      .given([registered, ...climbedTo('staging', 'execute')])
      .when(request('r2', 'staging', 'execute'))
      .then([
        {
          type: 'PromotionRefused',
          data: {
            agentId,
            requestId: 'r2',
            environment: 'staging',
            from: 'execute',
            to: 'execute',
            reason: 'execute is the top rung in staging; there is nothing to promote to',
          },
        },
      ])
  })

  test('authority is per environment', () => {
    // execute in staging, recommend in production, never promoted in qa
    const history = [registered, ...climbedTo('staging', 'execute'), ...climbedTo('production', 'recommend')]
    const state = history.reduce(agent.evolve, agent.initialState())
    assert.deepEqual(state.status === 'registered' && state.levels, {
      staging: 'execute',
      production: 'recommend',
    })
    spec(agent)
      .given(history)
      .when(request('p2', 'production', 'simulate'))
      .then([requested('p2', 'production', 'recommend', 'simulate')])
    spec(agent)
      .given(history)
      .when(request('q1', 'qa', 'recommend'))
      .then([requested('q1', 'qa', 'observe', 'recommend')])
  })

  test('one pending request per environment', () => {
    spec(agent)
      .given([registered, requested('r1', 'staging', 'observe', 'recommend')])
      .when(request('r2', 'staging', 'recommend'))
      .thenThrows('conflict', /r1 is already pending for staging/)
    spec(agent)
      .given([registered, requested('r1', 'staging', 'observe', 'recommend')])
      .when(request('r2', 'production', 'recommend'))
      .then([requested('r2', 'production', 'observe', 'recommend')])
  })

  test('a repeated request is a harmless no-op', () => {
    spec(agent)
      .given([registered, requested('r1', 'staging', 'observe', 'recommend')])
      .when(request('r1', 'staging', 'recommend'))
      .then([])
  })

  test('a request id already pending for another promotion is a conflict', () => {
    spec(agent)
      .given([registered, requested('r1', 'staging', 'observe', 'recommend')])
      .when(request('r1', 'production', 'recommend'))
      .thenThrows('conflict', /r1 is already pending/)
  })

  test('nobody approves their own promotion', () => {
    spec(agent)
      .given([registered, requested('r1', 'staging', 'observe', 'recommend')])
      .when(approve('r1', agentId))
      .thenThrows('forbidden', /own promotion/)
  })

  test('approving an unknown request is not found', () => {
    spec(agent).given([registered]).when(approve('r9')).thenThrows('not-found', /r9/)
    spec(agent)
      .given([registered, ...climbedTo('staging', 'recommend')])
      .when(approve('staging-recommend'))
      .thenThrows('not-found')
  })

  test('a promotion whose starting level no longer holds is refused and recorded', () => {
    // a promotion recorded meanwhile under another request (written before the one-pending rule)
    spec(agent)
      .given([
        registered,
        requested('r1', 'staging', 'observe', 'recommend'),
        promoted('older', 'staging', 'observe', 'recommend'),
      ])
      .when(approve('r1'))
      .then([
        {
          type: 'PromotionRefused',
          data: {
            agentId,
            requestId: 'r1',
            environment: 'staging',
            from: 'observe',
            to: 'recommend',
            reason: 'the level in staging changed from observe to recommend since the request',
          },
        },
      ])
  })

  test('a policy admin may refuse a promotion', () => {
    spec(agent)
      .given([registered, requested('r1', 'staging', 'observe', 'recommend')])
      .when({ type: 'RefusePromotion', requestId: 'r1', by: 'policy-admin', reason: 'too few proposals' })
      .then([
        {
          type: 'PromotionRefused',
          data: {
            agentId,
            requestId: 'r1',
            environment: 'staging',
            from: 'observe',
            to: 'recommend',
            reason: 'too few proposals',
          },
        },
      ])
    spec(agent)
      .given([
        registered,
        requested('r1', 'staging', 'observe', 'recommend'),
        {
          type: 'PromotionRefused',
          data: {
            agentId,
            requestId: 'r1',
            environment: 'staging',
            from: 'observe',
            to: 'recommend',
            reason: 'too few proposals',
          },
        },
      ])
      .when(approve('r1'))
      .thenThrows('not-found')
  })

  test('a demotion cancels pending requests', () => {
    const demoted: AgentEvent = {
      type: 'AgentDemoted',
      data: {
        agentId,
        environment: 'staging',
        from: 'simulate',
        to: 'recommend',
        cause: 'violation',
        proposalId: 'p-1',
        reason: 'executed without a verdict',
      },
    }
    const history = [
      registered,
      ...climbedTo('staging', 'simulate'),
      requested('r-exec', 'staging', 'simulate', 'execute'),
      requested('r-prod', 'production', 'observe', 'recommend'),
      demoted,
    ]
    spec(agent).given(history).when(approve('r-exec')).thenThrows('not-found')
    spec(agent)
      .given(history)
      .when(approve('r-prod'))
      .then([promoted('r-prod', 'production', 'observe', 'recommend')])
    // the ladder is climbed again from where the demotion left it
    spec(agent)
      .given(history)
      .when(request('r-again', 'staging', 'simulate'))
      .then([requested('r-again', 'staging', 'recommend', 'simulate')])
  })
})

describe('the authority ladder', () => {
  test('the next rung is one up, and there is none above execute', () => {
    assert.equal(nextRung('observe'), 'recommend')
    assert.equal(nextRung('simulate'), 'execute')
    assert.equal(nextRung('execute'), null)
  })

  test('a demotion lands one rung down, and observe stays observe', () => {
    assert.equal(rungBelow('execute'), 'simulate')
    assert.equal(rungBelow('recommend'), 'observe')
    assert.equal(rungBelow('observe'), 'observe')
  })

  test('an environment never promoted in is observe', () => {
    assert.equal(levelIn({ staging: 'execute' }, 'staging'), 'execute')
    assert.equal(levelIn({ staging: 'execute' }, 'production'), 'observe')
  })
})
