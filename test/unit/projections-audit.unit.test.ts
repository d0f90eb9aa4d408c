import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type ActionDoc, actionStory, audit, auditKeys, nextOutcome } from '../../projections/audit.js'
import type { LedgerEvent } from '../../src/domain/events.js'
import {
  actionDigestFor,
  LedgerBuilder,
  planHash,
  policyData,
  proposalData,
  verdictData,
  verdictIdOf,
} from '../support/ledger-events.js'
import { given } from '../support/projection-spec.js'

const P = { proposalId: 'p-1', expectedImpact: 'critical' } as const
const DIGEST = actionDigestFor(P)
const production = { scope: 'environment', target: 'production' } as const

/** A critical action: approved twice, allowed, revoked by a kill switch, allowed again, failed and rolled back. */
const failedAndRolledBack = () => {
  const l = new LedgerBuilder('2024-05-01T10:00:00.000Z')
  const e = {
    policy: l.event('PolicyPublished', policyData(3, 'risk-office'), { actor: 'admin-1' }),
    observed: l.event('StateObserved', {
      environment: 'production',
      resource: 'deployment/web',
      version: 'v41',
      digest: 'sha256:abc',
      observedAt: '2024-05-01T09:59:00.000Z',
    }),
    submitted: l.after(60).event('ProposalSubmitted', proposalData(P)),
    tested: l.after(60).event('RollbackTested', {
      proposalId: 'p-1',
      actionDigest: DIGEST,
      testedBy: 'simulator-1',
      playbook: 'kubectl rollout undo deployment/web',
      testRunId: 'run-7',
      testedAt: '2024-05-01T09:30:00.000Z',
      outcome: 'passed',
      expectedRecoverySeconds: 300,
      killSwitch: production,
    }),
    approvedBySre: l.event('ApprovalGranted', {
      proposalId: 'p-1',
      actionDigest: DIGEST,
      approver: 'approver-1',
      role: 'sre',
    }),
    approvedBySecurity: l.event('ApprovalGranted', {
      proposalId: 'p-1',
      actionDigest: DIGEST,
      approver: 'approver-2',
      role: 'security',
    }),
    allowed: l.event(
      'VerdictIssued',
      verdictData(P, {
        revision: 1,
        decision: 'allow',
        policyVersion: 3,
        decidedAt: '2024-05-01T10:02:00.000Z',
      }),
    ),
    engaged: l
      .after(60)
      .event('KillSwitchEngaged', { ...production, reason: 'incident 42' }, { actor: 'admin-2' }),
    revoked: l.event('VerdictRevoked', {
      verdictId: verdictIdOf('p-1', 1),
      proposalId: 'p-1',
      reason: 'kill switch environment production engaged',
      killSwitch: production,
    }),
    released: l
      .after(600)
      .event('KillSwitchReleased', { ...production, reason: 'incident over' }, { actor: 'admin-3' }),
    allowedAgain: l.event(
      'VerdictIssued',
      verdictData(P, {
        revision: 2,
        decision: 'allow',
        policyVersion: 3,
        decidedAt: '2024-05-01T10:13:00.000Z',
      }),
    ),
    // an approver tries to run what it approved: refused at the gate, nothing runs
    refused: l.after(30).event('ExecutionRefused', {
      proposalId: 'p-1',
      executionId: 'e-0',
      verdictId: verdictIdOf('p-1', 2),
      actionDigest: DIGEST,
      executor: 'approver-1',
      reasons: [
        { specification: 'startedByExecutor', reason: 'approver-1 holds no executor role' },
        { specification: 'approverNeverExecutes', reason: 'approver-1 approved this proposal' },
      ],
    }),
    started: l.after(30).event('ExecutionStarted', {
      proposalId: 'p-1',
      executionId: 'e-1',
      verdictId: verdictIdOf('p-1', 2),
      actionDigest: DIGEST,
      executor: 'executor-1',
    }),
    failed: l.after(30).event('ExecutionFailed', {
      proposalId: 'p-1',
      executionId: 'e-1',
      error: 'pods crash-looping',
      resourceVersionAfter: 'v42',
    }),
    rollbackStarted: l
      .after(10)
      .event('RollbackStarted', { proposalId: 'p-1', rollbackId: 'r-1', executionId: 'e-1' }),
    rolledBack: l
      .after(230)
      .event('RollbackCompleted', { proposalId: 'p-1', rollbackId: 'r-1', resourceVersionAfter: 'v43' }),
  } satisfies Record<string, LedgerEvent>
  return e
}

const entry = (event: LedgerEvent) => ({
  position: event.position,
  eventId: event.id,
  type: event.type,
  recordedAt: event.recordedAt,
  actor: event.metadata.actor,
  hash: event.hash,
})

describe('audit projection', () => {
  it('answers what changed, who changed it and how fast it was undone, for a failed and rolled back action', () => {
    const e = failedAndRolledBack()
    const spec = given(audit, Object.values(e))
    const expected: ActionDoc = {
      kind: 'action',
      proposalId: 'p-1',
      submittedAt: '2024-05-01T10:01:00.000Z',
      submittedPosition: e.submitted.position,
      outcome: 'recovered',
      executed: true,
      violation: false,
      latestVerdict: {
        verdictId: verdictIdOf('p-1', 2),
        revision: 2,
        decision: 'allow',
        eventId: e.allowedAgain.id,
        streamVersion: e.allowedAgain.streamVersion,
      },
      what: {
        tool: 'kubectl',
        action: 'scale',
        resource: 'deployment/web',
        environment: 'production',
        planHash,
        actionDigest: DIGEST,
        resourceVersionBefore: 'v41',
        resourceVersionAfter: 'v43',
      },
      who: {
        agentId: 'agent-1',
        executingIdentity: 'svc-deployer',
        executor: 'executor-1',
        approvers: [
          { approver: 'approver-1', role: 'sre', actionDigest: DIGEST, eventId: e.approvedBySre.id },
          {
            approver: 'approver-2',
            role: 'security',
            actionDigest: DIGEST,
            eventId: e.approvedBySecurity.id,
          },
        ],
        policyVersion: 3,
        policyOwner: 'risk-office',
        killSwitchActors: [
          {
            actor: 'admin-2',
            scope: 'environment',
            target: 'production',
            action: 'engaged',
            eventId: e.engaged.id,
          },
          {
            actor: 'admin-3',
            scope: 'environment',
            target: 'production',
            action: 'released',
            eventId: e.released.id,
          },
        ],
      },
      howFast: {
        rollbackExpectedSeconds: 300,
        failedAt: '2024-05-01T10:14:30.000Z',
        recoveredAt: '2024-05-01T10:18:30.000Z',
        timeToRecoverySeconds: 240,
      },
    }
    spec.then({
      'action:p-1': expected,
      'policy:3': { kind: 'policy', version: 3, owner: 'risk-office' },
    })
    const { timeline, verdicts } = actionStory(spec.list(auditKeys.actionEvents('p-1')))
    assert.deepEqual(verdicts, [
      { verdictId: verdictIdOf('p-1', 1), revision: 1, decision: 'allow', eventId: e.allowed.id },
      { verdictId: verdictIdOf('p-1', 2), revision: 2, decision: 'allow', eventId: e.allowedAgain.id },
    ])
    assert.deepEqual(
      timeline,
      [
        e.submitted,
        e.tested,
        e.approvedBySre,
        e.approvedBySecurity,
        e.allowed,
        e.engaged,
        e.revoked,
        e.released,
        e.allowedAgain,
        e.refused,
        e.started,
        e.failed,
        e.rollbackStarted,
        e.rolledBack,
      ].map(entry),
      'every event of the action, the kill switch engaged and released included, in ledger order',
    )
    assert.deepEqual(
      timeline.map((t) => t.actor).filter((a, i, all) => all.indexOf(a) === i),
      [
        'agent-1',
        'simulator-1',
        'approver-1',
        'approver-2',
        'governance-service',
        'admin-2',
        'admin-3',
        'executor-1',
      ],
    )
  })

  it('shows a start refused at the gate on the timeline, and it neither executes the action nor names an executor', () => {
    const e = failedAndRolledBack()
    const upToRefusal = Object.values(e).slice(0, Object.keys(e).indexOf('refused') + 1)
    const spec = given(audit, upToRefusal)
    const doc = spec.doc('action:p-1') as ActionDoc
    assert.deepEqual([doc.outcome, doc.executed, doc.who.executor], ['allowed', false, null])
    const { timeline } = actionStory(spec.list(auditKeys.actionEvents('p-1')))
    assert.deepEqual(timeline.at(-1), entry(e.refused))
    assert.equal(timeline.at(-1)?.actor, 'approver-1')
  })

  it('keeps the timeline in ledger order when a kill switch engaged before the last step was revoking', () => {
    const l = new LedgerBuilder()
    const engaged = l.event(
      'KillSwitchEngaged',
      { scope: 'global', target: null, reason: 'stop everything' },
      { actor: 'admin-1' },
    )
    const submitted = l.event('ProposalSubmitted', proposalData(P))
    const allowed = l.event(
      'VerdictIssued',
      verdictData(P, { revision: 1, decision: 'allow', decidedAt: '2024-05-01T10:00:00.000Z' }),
    )
    const revoked = l.event('VerdictRevoked', {
      verdictId: verdictIdOf('p-1', 1),
      proposalId: 'p-1',
      reason: 'global kill switch',
      killSwitch: { scope: 'global', target: null },
    })
    const spec = given(audit, [engaged, submitted, allowed, revoked])
    const doc = spec.doc('action:p-1') as ActionDoc
    assert.deepEqual(
      actionStory(spec.list(auditKeys.actionEvents('p-1'))).timeline.map((t) => t.position),
      [1, 2, 3, 4],
      'the engagement at its own position, before the revocation',
    )
    assert.equal(doc.outcome, 'revoked')
    assert.deepEqual(doc.who.killSwitchActors, [
      { actor: 'admin-1', scope: 'global', target: null, action: 'engaged', eventId: engaged.id },
    ])
    assert.equal(doc.who.policyOwner, null, 'an unknown policy version has no owner to show')
  })

  it('keeps an action re-decided many times to one small document, each verdict a timeline document of its own', () => {
    const l = new LedgerBuilder()
    const submitted = l.event('ProposalSubmitted', proposalData(P))
    const verdicts = Array.from({ length: 300 }, (_, i) =>
      l.event(
        'VerdictIssued',
        verdictData(P, {
          revision: i + 1,
          decision: i === 299 ? 'allow' : 'block',
          decidedAt: '2024-05-01T10:00:00.000Z',
        }),
      ),
    )
    const headerAfter = (n: number) => given(audit, [submitted, ...verdicts.slice(0, n)]).doc('action:p-1')
    const first = headerAfter(1) as ActionDoc
    const last = headerAfter(300) as ActionDoc
    assert.equal(first.outcome, 'blocked')
    assert.deepEqual([last.outcome, last.latestVerdict?.revision], ['allowed', 300])
    assert.ok(
      JSON.stringify(last).length <= JSON.stringify(first).length + 10,
      'the action document does not grow with its verdicts',
    )
    const story = actionStory(given(audit, [submitted, ...verdicts]).list(auditKeys.actionEvents('p-1')))
    assert.equal(story.timeline.length, 301)
    assert.deepEqual(
      story.verdicts.map((v) => v.revision),
      verdicts.map((_, i) => i + 1),
    )
  })

  it('tells where an action stands from its events in order: verdicts after execution began change nothing', () => {
    const start = { outcome: 'submitted', executed: false } as const
    const after = (steps: ReadonlyArray<readonly [string, ('allow' | 'block')?]>) =>
      steps.reduce(
        (doc, [type, decision]) => nextOutcome(doc, type, decision),
        start as ReturnType<typeof nextOutcome>,
      )
    assert.equal(after([]).outcome, 'submitted')
    assert.equal(after([['VerdictIssued', 'block']]).outcome, 'blocked')
    assert.equal(after([['VerdictIssued', 'allow'], ['VerdictRevoked']]).outcome, 'revoked')
    assert.equal(after([['VerdictIssued', 'allow'], ['ApprovalGranted']]).outcome, 'allowed')
    assert.equal(
      after([
        ['VerdictIssued', 'allow'],
        ['ExecutionStarted'],
        ['VerdictExpired'],
        ['VerdictIssued', 'block'],
      ]).outcome,
      'executing',
    )
    assert.equal(
      after([
        ['VerdictIssued', 'allow'],
        ['ExecutionStarted'],
        ['ExecutionFailed'],
        ['RollbackStarted'],
        ['RollbackCompleted'],
      ]).outcome,
      'recovered',
    )
  })

  it('keeps an action that ended without executing ended: a verdict or a deadline noticed after it changes nothing', () => {
    const start = { outcome: 'submitted', executed: false } as const
    const after = (steps: ReadonlyArray<readonly [string, ('allow' | 'block')?]>) =>
      steps.reduce(
        (doc, [type, decision]) => nextOutcome(doc, type, decision),
        start as ReturnType<typeof nextOutcome>,
      )
    // the decision service answered an event it read before the withdrawal, after it
    assert.equal(
      after([['VerdictIssued', 'block'], ['ProposalWithdrawn'], ['VerdictIssued', 'allow']]).outcome,
      'withdrawn',
    )
    // the scheduler read its deadlines before the withdrawal or the expiry reached the decision service
    assert.equal(
      after([['VerdictIssued', 'allow'], ['ProposalWithdrawn'], ['VerdictExpired']]).outcome,
      'withdrawn',
    )
    assert.equal(
      after([['VerdictIssued', 'block'], ['ProposalWithdrawn'], ['ProposalExpired']]).outcome,
      'withdrawn',
    )
    assert.equal(
      after([['VerdictIssued', 'allow'], ['ProposalExpired'], ['VerdictRevoked']]).outcome,
      'lapsed',
    )
    // what ran is told, whatever came before
    assert.equal(after([['ProposalWithdrawn'], ['ExecutionStarted']]).outcome, 'executing')
  })

  it('indexes actions by agent and by resource, with the last observation', () => {
    const l = new LedgerBuilder()
    const events = [
      l.event('ProposalSubmitted', proposalData({ proposalId: 'p-1', agentId: 'agent-1' })),
      l.event('ProposalSubmitted', proposalData({ proposalId: 'p-2', agentId: 'agent-2' })),
      l.event(
        'ProposalSubmitted',
        proposalData({ proposalId: 'p-3', agentId: 'agent-1', resource: 'deployment/api' }),
      ),
      l.event(
        'ProposalSubmitted',
        proposalData({ proposalId: 'p-4', agentId: 'agent-1', environment: 'staging' }),
      ),
      l.event('StateObserved', {
        environment: 'production',
        resource: 'deployment/web',
        version: 'v41',
        digest: 'sha256:abc',
        observedAt: '2024-05-01T09:59:00.000Z',
      }),
    ]
    const observation = events[4] as LedgerEvent
    const spec = given(audit, events)
    spec.then({
      'agent:agent-1': { kind: 'agent', agentId: 'agent-1', proposalCount: 3 },
      'agent:agent-2': { kind: 'agent', agentId: 'agent-2', proposalCount: 1 },
      'resource:production:deployment/web': {
        kind: 'resource',
        environment: 'production',
        resource: 'deployment/web',
        proposalCount: 2,
        lastObservation: {
          version: 'v41',
          digest: 'sha256:abc',
          observedAt: '2024-05-01T09:59:00.000Z',
          eventId: observation.id,
        },
      },
      'resource:production:deployment/api': {
        kind: 'resource',
        environment: 'production',
        resource: 'deployment/api',
        proposalCount: 1,
        lastObservation: null,
      },
      'resource:staging:deployment/web': {
        kind: 'resource',
        environment: 'staging',
        resource: 'deployment/web',
        proposalCount: 1,
        lastObservation: null,
      },
    })
    // each index holds one entry per proposal, in the order submitted
    const ids = (prefix: string) => spec.list(prefix).map((d) => (d.kind === 'entry' ? d.proposalId : d.kind))
    assert.deepEqual(ids(auditKeys.agentEntries('agent-1')), ['p-1', 'p-3', 'p-4'])
    assert.deepEqual(ids(auditKeys.agentEntries('agent-2')), ['p-2'])
    assert.deepEqual(ids(auditKeys.resourceEntries('production', 'deployment/web')), ['p-1', 'p-2'])
    assert.deepEqual(ids(auditKeys.resourceEntries('production', 'deployment/api')), ['p-3'])
    assert.deepEqual(ids(auditKeys.resourceEntries('staging', 'deployment/web')), ['p-4'])
    // an id that is another's prefix, or that holds the separator, has an index of its own
    assert.notEqual(auditKeys.agentEntries('agent-1'), auditKeys.agentEntries('agent-10').slice(0, -1))
    assert.ok(!auditKeys.agentEntries('a:b').startsWith(auditKeys.agentEntries('a')))
  })

  it('records a resource observed before any proposal touches it', () => {
    const l = new LedgerBuilder()
    const spec = given(audit, [
      l.event('StateObserved', {
        environment: 'staging',
        resource: 'db/main',
        version: '7',
        digest: 'd7',
        observedAt: '2024-05-01T09:00:00.000Z',
      }),
    ])
    const doc = spec.doc('resource:staging:db/main')
    assert.ok(doc?.kind === 'resource')
    assert.deepEqual([doc.proposalCount, doc.lastObservation?.version], [0, '7'])
  })
})
