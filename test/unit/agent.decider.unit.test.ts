import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Actor } from '../../src/domain/actor.js'
import { levelIn, nextRung, rungBelow } from '../../src/domain/authority.js'
import type { AgentCommand, AgentEvent } from '../../src/domain/deciders/agent.js'
import * as agent from '../../src/domain/deciders/agent.js'
import { PROMOTION_ENDORSEMENTS, trackRecordShortfall } from '../../src/domain/deciders/agent.js'
import type { DomainErrorCode } from '../../src/domain/errors.js'
import type { AuthorityLevel, PromotionRequirement, TrackRecord } from '../../src/domain/events.js'
import { actorOf, actors, specificationRefusing } from '../support/actors.js'
import { spec } from '../support/decider-spec.js'

const { admin, secondAdmin, otherAgent, approver, observer } = actors
const self = actors.agent
const agentId = self.sub

/** what the policy in force asks of a promotion, and a record that meets it */
const requirement: PromotionRequirement = {
  windowDays: 30,
  minProposals: 10,
  minSimulationsPassed: 5,
  minSurvivalRate: 0.9,
  maxViolations: 0,
  maxFailedExecutions: 1,
}
const trackRecord: TrackRecord = {
  windowStart: '2025-01-01T00:00:00.000Z',
  windowEnd: '2025-01-31T00:00:00.000Z',
  proposals: 40,
  simulationsPassed: 38,
  simulationSurvivalRate: 0.95,
  violations: 0,
  failedExecutions: 1,
}
/** short of the requirement on every count */
const poorRecord: TrackRecord = {
  ...trackRecord,
  proposals: 3,
  simulationsPassed: 2,
  simulationSurvivalRate: 0.5,
  violations: 2,
  failedExecutions: 4,
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
  requestedBy = agentId,
  record = trackRecord,
): AgentEvent => ({
  type: 'PromotionRequested',
  data: { agentId, requestId, environment, from, to, trackRecord: record, requestedBy },
})
const approvedBy = (requestId: string, environment: string, by: string): AgentEvent => ({
  type: 'PromotionApproved',
  data: { agentId, requestId, environment, approvedBy: by },
})
const promoted = (
  requestId: string,
  environment: string,
  from: AuthorityLevel,
  to: AuthorityLevel,
  endorsedBy = [admin.sub, secondAdmin.sub],
): AgentEvent => ({
  type: 'AgentPromoted',
  data: {
    agentId,
    requestId,
    environment,
    from,
    to,
    approvedBy: endorsedBy[endorsedBy.length - 1] ?? admin.sub,
    endorsedBy,
  },
})
const promotionRefused = (
  requestId: string,
  environment: string,
  from: AuthorityLevel,
  to: AuthorityLevel,
  reason: string,
): AgentEvent => ({
  type: 'PromotionRefused',
  data: { agentId, requestId, environment, from, to, reason },
})

const request = (
  requestId: string,
  environment: string,
  to: AuthorityLevel,
  { actor = self as Actor, record = trackRecord, need = requirement as PromotionRequirement | null } = {},
): AgentCommand => ({
  type: 'RequestPromotion',
  actor,
  requestId,
  environment,
  to,
  trackRecord: record,
  context: { requirement: need },
})
const approve = (
  requestId: string,
  actor: Actor = admin,
  { record = trackRecord, need = requirement as PromotionRequirement | null } = {},
): AgentCommand => ({
  type: 'ApprovePromotion',
  actor,
  requestId,
  context: { requirement: need, trackRecord: record },
})
const refuse = (requestId: string, actor: Actor = admin): AgentCommand => ({
  type: 'RefusePromotion',
  actor,
  requestId,
  reason: 'too few proposals',
})
const register = (actor: Actor = admin): AgentCommand => ({
  type: 'RegisterAgent',
  actor,
  agentId,
  owner: 'platform-team',
  description: 'restarts stuck workers',
})

/** An agent-requested promotion approved by two distinct admins, event by event. */
const earned = (requestId: string, environment: string, from: AuthorityLevel, to: AuthorityLevel) => [
  requested(requestId, environment, from, to),
  approvedBy(requestId, environment, admin.sub),
  approvedBy(requestId, environment, secondAdmin.sub),
  promoted(requestId, environment, from, to),
]

/** The history of an agent promoted rung by rung up to a level in one environment. */
const climbedTo = (environment: string, top: AuthorityLevel): AgentEvent[] => {
  const ladder: AuthorityLevel[] = ['observe', 'recommend', 'simulate', 'execute']
  return ladder.slice(1, ladder.indexOf(top) + 1).flatMap((to, i) => {
    const from = ladder[i] ?? 'observe'
    return earned(`${environment}-${to}`, environment, from, to)
  })
}

/** Refused with the error code, the named specification, and a message that says why. */
const refuses = (
  given: AgentEvent[],
  command: AgentCommand,
  code: DomainErrorCode,
  specification: string,
  why: RegExp,
): void => {
  spec(agent).given(given).when(command).thenThrows(code, why)
  assert.equal(specificationRefusing(agent, given, command), specification)
}

describe('agent decider: registration', () => {
  test('an agent is registered once, by a policy admin', () => {
    spec(agent).given([]).when(register()).then([registered])
    spec(agent)
      .given([registered])
      .when({ ...register(), owner: 'someone-else', description: '' } as AgentCommand)
      .thenThrows('conflict', /already registered/)
  })

  test('adminGoverns: an agent registering itself is refused', () => {
    refuses([], register(self), 'forbidden', 'adminGoverns', /agent-7 holds no policy-admin role/)
    refuses([], register(approver), 'forbidden', 'adminGoverns', /approver-1 holds no policy-admin role/)
  })

  test('commands for an unknown agent are not found', () => {
    spec(agent)
      .given([])
      .when(request('r1', 'staging', 'recommend'))
      .thenThrows('not-found')
    spec(agent).given([]).when(approve('r1')).thenThrows('not-found')
    spec(agent).given([]).when(refuse('r1')).thenThrows('not-found')
  })
})

describe('agent decider: promotion requests', () => {
  test('agentOrAdminRequestsPromotion: the agent itself requests its promotion', () => {
    spec(agent)
      .given([registered])
      .when(request('r1', 'staging', 'recommend'))
      .then([requested('r1', 'staging', 'observe', 'recommend')])
  })

  test('agentOrAdminRequestsPromotion: a policy admin requests it for the agent', () => {
    spec(agent)
      .given([registered])
      .when(request('r1', 'staging', 'recommend', { actor: admin }))
      .then([requested('r1', 'staging', 'observe', 'recommend', admin.sub)])
  })

  test('agentOrAdminRequestsPromotion: a promotion requested by another agent is refused', () => {
    refuses(
      [registered],
      request('r1', 'staging', 'recommend', { actor: otherAgent }),
      'forbidden',
      'agentOrAdminRequestsPromotion',
      /only agent agent-7 itself or a policy admin may request its promotion/,
    )
    refuses(
      [registered],
      request('r1', 'staging', 'recommend', { actor: observer }),
      'forbidden',
      'agentOrAdminRequestsPromotion',
      /only agent agent-7 itself or a policy admin/,
    )
    // the agent's subject without the agent role is not the agent asking
    refuses(
      [registered],
      request('r1', 'staging', 'recommend', { actor: actorOf(agentId, ['approver']) }),
      'forbidden',
      'agentOrAdminRequestsPromotion',
      /only agent agent-7 itself/,
    )
  })

  test('a request that skips a rung is refused and recorded', () => {
    spec(agent)
      .given([registered])
      .when(request('r1', 'production', 'execute'))
      .then([
        promotionRefused(
          'r1',
          'production',
          'observe',
          'execute',
          'promotion is one rung at a time: from observe in production the next rung is recommend, not execute',
        ),
      ])
  })

  test('a request that does not go up is refused and recorded', () => {
    spec(agent)
      .given([registered, ...climbedTo('staging', 'simulate')])
      .when(request('r1', 'staging', 'recommend'))
      .then([
        promotionRefused(
          'r1',
          'staging',
          'simulate',
          'recommend',
          'promotion is one rung at a time: from simulate in staging the next rung is execute, not recommend',
        ),
      ])
    spec(agent)
      .given([registered, ...climbedTo('staging', 'execute')])
      .when(request('r2', 'staging', 'execute'))
      .then([
        promotionRefused(
          'r2',
          'staging',
          'execute',
          'execute',
          'execute is the top rung in staging; there is nothing to promote to',
        ),
      ])
  })

  test('trackRecordShortfall: a record short of the requirement is refused and recorded with the numbers', () => {
    spec(agent)
      .given([registered])
      .when(request('r1', 'production', 'recommend', { record: poorRecord }))
      .then([
        promotionRefused(
          'r1',
          'production',
          'observe',
          'recommend',
          'the track record in production over the last 30 days does not earn recommend: ' +
            '3 proposals of 10 required; 2 simulations passed of 5 required; a survival rate of 0.5 below 0.9; ' +
            '2 violations (at most 0); 4 failed executions (at most 1)',
        ),
      ])
  })

  test('trackRecordShortfall: a policy admin asking does not make a short record enough', () => {
    const short = { ...trackRecord, violations: 1 }
    spec(agent)
      .given([registered])
      .when(request('r1', 'production', 'recommend', { actor: admin, record: short }))
      .then([
        promotionRefused(
          'r1',
          'production',
          'observe',
          'recommend',
          'the track record in production over the last 30 days does not earn recommend: 1 violations (at most 0)',
        ),
      ])
  })

  test('trackRecordShortfall: the requirement met exactly is enough', () => {
    const exact: TrackRecord = {
      ...trackRecord,
      proposals: 10,
      simulationsPassed: 5,
      simulationSurvivalRate: 0.9,
      violations: 0,
      failedExecutions: 1,
    }
    assert.deepEqual(trackRecordShortfall(exact, requirement), [])
    spec(agent)
      .given([registered])
      .when(request('r1', 'production', 'recommend', { record: exact }))
      .then([requested('r1', 'production', 'observe', 'recommend', agentId, exact)])
  })

  test('trackRecordShortfall lists every count short, in numbers', () => {
    assert.deepEqual(trackRecordShortfall(poorRecord, requirement), [
      '3 proposals of 10 required',
      '2 simulations passed of 5 required',
      'a survival rate of 0.5 below 0.9',
      '2 violations (at most 0)',
      '4 failed executions (at most 1)',
    ])
  })

  test('with no policy in force every request is refused: fail closed', () => {
    for (const actor of [self, admin]) {
      spec(agent)
        .given([registered])
        .when(request('r1', 'production', 'recommend', { actor, need: null }))
        .then([
          promotionRefused(
            'r1',
            'production',
            'observe',
            'recommend',
            'the track record in production does not earn recommend: no policy is in force, so no track record can be judged: fail closed',
          ),
        ])
    }
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
})

describe('agent decider: two distinct policy admins stand behind a promotion', () => {
  const pending = [registered, requested('r1', 'staging', 'observe', 'recommend')]

  test('it takes two distinct admins', () => {
    assert.equal(PROMOTION_ENDORSEMENTS, 2)
  })

  test('secondDistinctAdmin: the first admin approval records PromotionApproved only', () => {
    spec(agent)
      .given(pending)
      .when(approve('r1', admin))
      .then([approvedBy('r1', 'staging', admin.sub)])
    const state = [...pending, approvedBy('r1', 'staging', admin.sub)].reduce(
      agent.evolve,
      agent.initialState(),
    )
    assert.deepEqual(state.status === 'registered' && state.levels, {})
  })

  test('secondDistinctAdmin: a second, distinct admin promotes the agent, endorsed by both', () => {
    spec(agent)
      .given([...pending, approvedBy('r1', 'staging', admin.sub)])
      .when(approve('r1', secondAdmin))
      .then([
        approvedBy('r1', 'staging', secondAdmin.sub),
        promoted('r1', 'staging', 'observe', 'recommend', [admin.sub, secondAdmin.sub]),
      ])
  })

  test('an approval judges the record again: one that no longer earns the rung, or no policy, is refused', () => {
    const given = [...pending, approvedBy('r1', 'staging', admin.sub)]
    const events = given.reduce(agent.evolve, agent.initialState())
    const [worse] = agent.decide(approve('r1', secondAdmin, { record: poorRecord }), events)
    assert.equal(worse?.type, 'PromotionRefused')
    assert.match(worse?.type === 'PromotionRefused' ? worse.data.reason : '', /does not earn recommend/)
    const [noPolicy] = agent.decide(approve('r1', secondAdmin, { need: null }), events)
    assert.equal(noPolicy?.type, 'PromotionRefused')
    assert.match(noPolicy?.type === 'PromotionRefused' ? noPolicy.data.reason : '', /no policy is in force/)
  })

  test('secondDistinctAdmin: the same admin approving twice is refused', () => {
    refuses(
      [...pending, approvedBy('r1', 'staging', admin.sub)],
      approve('r1', admin),
      'forbidden',
      'secondDistinctAdmin',
      /admin-1 already stands behind this promotion: a second, distinct policy admin must approve it/,
    )
  })

  test('secondDistinctAdmin: the agent approving its own promotion is refused, even holding policy-admin', () => {
    refuses(
      pending,
      approve('r1', actorOf(agentId, ['agent', 'policy-admin'])),
      'forbidden',
      'secondDistinctAdmin',
      /nobody approves their own promotion/,
    )
    refuses(
      pending,
      approve('r1', self),
      'forbidden',
      'secondDistinctAdmin',
      /agent-7 holds no policy-admin role/,
    )
  })

  test('secondDistinctAdmin: an approver who is not a policy admin is refused', () => {
    refuses(
      pending,
      approve('r1', approver),
      'forbidden',
      'secondDistinctAdmin',
      /approver-1 holds no policy-admin/,
    )
  })

  test('secondDistinctAdmin: an admin-requested promotion needs just one more admin', () => {
    const byAdmin = [registered, requested('r1', 'staging', 'observe', 'recommend', admin.sub)]
    spec(agent)
      .given(byAdmin)
      .when(approve('r1', secondAdmin))
      .then([
        approvedBy('r1', 'staging', secondAdmin.sub),
        promoted('r1', 'staging', 'observe', 'recommend', [admin.sub, secondAdmin.sub]),
      ])
    // the requesting admin approving its own request is not a second admin
    refuses(
      byAdmin,
      approve('r1', admin),
      'forbidden',
      'secondDistinctAdmin',
      /admin-1 already stands behind this promotion/,
    )
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
        .when(approve(id, admin))
        .then([approvedBy(id, 'staging', admin.sub)])
      history.push(approvedBy(id, 'staging', admin.sub))
      spec(agent)
        .given(history)
        .when(approve(id, secondAdmin))
        .then([approvedBy(id, 'staging', secondAdmin.sub), promoted(id, 'staging', from, to)])
      history.push(approvedBy(id, 'staging', secondAdmin.sub), promoted(id, 'staging', from, to))
    }
    const state = history.reduce(agent.evolve, agent.initialState())
    assert.deepEqual(state.status === 'registered' && state.levels, { staging: 'execute' })
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
      .given([...pending, promoted('older', 'staging', 'observe', 'recommend')])
      .when(approve('r1'))
      .then([
        promotionRefused(
          'r1',
          'staging',
          'observe',
          'recommend',
          'the level in staging changed from observe to recommend since the request',
        ),
      ])
  })

  test('adminGoverns: a policy admin may refuse a promotion', () => {
    const refusal = promotionRefused('r1', 'staging', 'observe', 'recommend', 'too few proposals')
    spec(agent).given(pending).when(refuse('r1')).then([refusal])
    spec(agent)
      .given([...pending, refusal])
      .when(approve('r1'))
      .thenThrows('not-found')
  })

  test('adminGoverns: an agent or an approver may not refuse one', () => {
    refuses(
      pending,
      refuse('r1', otherAgent),
      'forbidden',
      'adminGoverns',
      /agent-8 holds no policy-admin role/,
    )
    refuses(pending, refuse('r1', approver), 'forbidden', 'adminGoverns', /approver-1 holds no policy-admin/)
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
      requested('r-prod', 'production', 'observe', 'recommend', admin.sub),
      demoted,
    ]
    spec(agent).given(history).when(approve('r-exec', secondAdmin)).thenThrows('not-found')
    spec(agent)
      .given(history)
      .when(approve('r-prod', secondAdmin))
      .then([
        approvedBy('r-prod', 'production', secondAdmin.sub),
        promoted('r-prod', 'production', 'observe', 'recommend'),
      ])
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
