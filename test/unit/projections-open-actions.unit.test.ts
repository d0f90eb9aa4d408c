import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ageSeconds, type OpenActionDoc, openActions } from '../../projections/open-actions.js'
import type { LedgerEvent } from '../../src/domain/events.js'
import {
  actionDigestFor,
  LedgerBuilder,
  proposalData,
  type VerdictFacts,
  verdictData,
  verdictIdOf,
} from '../support/ledger-events.js'
import { given } from '../support/projection-spec.js'

const P = { proposalId: 'p-1', expectedImpact: 'medium' } as const
const T0 = '2024-05-01T10:00:00.000Z'

/** The ledger of one proposal: submitted at T0, then the steps a test adds, one minute apart. */
const story = () => {
  const l = new LedgerBuilder(T0)
  const events: LedgerEvent[] = [l.event('ProposalSubmitted', proposalData(P))]
  const at = () => new Date(Date.parse(T0) + events.length * 60_000).toISOString()
  const steps = {
    verdict: (facts: Omit<VerdictFacts, 'decidedAt'>) =>
      events.push(l.at(at()).event('VerdictIssued', verdictData(P, { ...facts, decidedAt: at() }))),
    event: (add: (l: LedgerBuilder) => LedgerEvent) => events.push(add(l.at(at()))),
    open: () => given(openActions, events).doc('open:p-1') as OpenActionDoc | undefined,
    events,
  }
  return steps
}

const submitted: OpenActionDoc = {
  proposalId: 'p-1',
  agentId: 'agent-1',
  tool: 'kubectl',
  action: 'scale',
  resource: 'deployment/web',
  environment: 'production',
  impact: 'medium',
  since: T0,
  submittedAt: T0,
  verdict: null,
  state: 'awaiting-evidence',
}

const started = (l: LedgerBuilder) =>
  l.event('ExecutionStarted', {
    proposalId: 'p-1',
    executionId: 'e-1',
    verdictId: verdictIdOf('p-1', 1),
    actionDigest: actionDigestFor(P),
    executor: 'executor-1',
  })
const refused = (l: LedgerBuilder) =>
  l.event('ExecutionRefused', {
    proposalId: 'p-1',
    executionId: 'e-0',
    verdictId: verdictIdOf('p-1', 1),
    actionDigest: actionDigestFor({ ...P, resource: 'database/payments-primary' }),
    executor: 'executor-1',
    reasons: [{ specification: 'citesThisAction', reason: 'another action' }],
  })
const failed = (l: LedgerBuilder) =>
  l.event('ExecutionFailed', {
    proposalId: 'p-1',
    executionId: 'e-1',
    error: 'pods crash-looping',
    resourceVersionAfter: 'v42',
  })

describe('open actions projection', () => {
  it('opens a submitted proposal as awaiting evidence', () => {
    const s = story()
    given(openActions, s.events).then({ 'open:p-1': submitted })
  })

  it('keeps waiting for evidence while only evidence checks fail, and since does not move', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'block', failed: ['freshState', 'rollback'] })
    assert.deepEqual(s.open(), {
      ...submitted,
      verdict: {
        verdictId: verdictIdOf('p-1', 1),
        decision: 'block',
        failedChecks: ['freshState', 'rollback'],
        expiresAt: '2024-05-01T10:16:00.000Z',
        ended: null,
      },
    })
  })

  it('is blocked when a gate fails, even beside missing evidence', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'block', failed: ['authority', 'survival'] })
    const open = s.open()
    assert.equal(open?.state, 'blocked')
    assert.equal(open?.since, '2024-05-01T10:01:00.000Z')
    assert.deepEqual(open?.verdict?.failedChecks, ['authority', 'survival'])
  })

  it('is allowed by the newest verdict, and takes its impact', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'block', failed: ['lineage'] })
    s.verdict({ revision: 2, decision: 'allow', impact: 'high' })
    const open = s.open()
    assert.equal(open?.state, 'allowed')
    assert.equal(open?.impact, 'high')
    assert.equal(open?.since, '2024-05-01T10:02:00.000Z')
    assert.equal(open?.verdict?.verdictId, verdictIdOf('p-1', 2))
  })

  it('waits for evidence again when its allow expires', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'allow' })
    s.event((l) =>
      l.event('VerdictExpired', {
        verdictId: verdictIdOf('p-1', 1),
        proposalId: 'p-1',
        expiresAt: '2024-05-01T10:02:00.000Z',
      }),
    )
    const open = s.open()
    assert.equal(open?.state, 'awaiting-evidence')
    assert.equal(open?.since, '2024-05-01T10:02:00.000Z')
    assert.equal(open?.verdict?.ended, 'expired')
  })

  it('is blocked when its allow is revoked by a kill switch', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'allow' })
    s.event((l) =>
      l.event('VerdictRevoked', {
        verdictId: verdictIdOf('p-1', 1),
        proposalId: 'p-1',
        reason: 'kill switch engaged',
        killSwitch: { scope: 'environment', target: 'production' },
      }),
    )
    const open = s.open()
    assert.equal(open?.state, 'blocked')
    assert.equal(open?.verdict?.ended, 'revoked')
  })

  it('ignores the end of a verdict that is no longer the current one', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'allow' })
    s.verdict({ revision: 2, decision: 'allow' })
    s.event((l) =>
      l.event('VerdictExpired', {
        verdictId: verdictIdOf('p-1', 1),
        proposalId: 'p-1',
        expiresAt: '2024-05-01T10:02:00.000Z',
      }),
    )
    assert.equal(s.open()?.state, 'allowed')
  })

  it('stays allowed when a start is refused at the gate: nothing runs', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'allow' })
    const before = s.open()
    s.event(refused)
    assert.deepEqual(s.open(), before)
    assert.equal(s.open()?.state, 'allowed')
  })

  it('is executing once started, and leaves when the execution succeeds', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'allow' })
    s.event(started)
    const open = s.open()
    assert.ok(open?.state === 'executing')
    assert.deepEqual(
      [open.since, open.executionId, open.startedAt],
      ['2024-05-01T10:02:00.000Z', 'e-1', '2024-05-01T10:02:00.000Z'],
    )
    s.verdict({ revision: 2, decision: 'block', failed: ['killSwitch'] })
    assert.equal(s.open()?.state, 'executing', 'a verdict after the start does not stop what runs')
    s.event((l) =>
      l.event('ExecutionSucceeded', { proposalId: 'p-1', executionId: 'e-1', resourceVersionAfter: 'v42' }),
    )
    given(openActions, s.events).then({ 'open:p-1': null })
  })

  it('stays open as failed through the rollback until it is recovered', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'allow' })
    s.event(started)
    s.event(failed)
    const failure: OpenActionDoc = {
      ...submitted,
      verdict: {
        verdictId: verdictIdOf('p-1', 1),
        decision: 'allow',
        failedChecks: [],
        expiresAt: '2024-05-01T10:16:00.000Z',
        ended: null,
      },
      state: 'failed',
      since: '2024-05-01T10:03:00.000Z',
      executionId: 'e-1',
      failedAt: '2024-05-01T10:03:00.000Z',
      error: 'pods crash-looping',
      rollback: 'none',
      recoveryOverdue: false,
    }
    assert.deepEqual(s.open(), failure)
    s.event((l) => l.event('RollbackStarted', { proposalId: 'p-1', rollbackId: 'r-1', executionId: 'e-1' }))
    assert.deepEqual(s.open(), { ...failure, rollback: 'running' })
    s.event((l) => l.event('RollbackFailed', { proposalId: 'p-1', rollbackId: 'r-1', error: 'image gone' }))
    s.event((l) =>
      l.event('RecoveryDeadlinePassed', {
        proposalId: 'p-1',
        executionId: 'e-1',
        failedAt: '2024-05-01T10:03:00.000Z',
        deadline: '2024-05-01T10:05:00.000Z',
      }),
    )
    assert.deepEqual(
      s.open(),
      { ...failure, rollback: 'failed', recoveryOverdue: true },
      'since stays at the failure',
    )
    s.event((l) => l.event('RollbackStarted', { proposalId: 'p-1', rollbackId: 'r-2', executionId: 'e-1' }))
    s.event((l) =>
      l.event('RollbackCompleted', { proposalId: 'p-1', rollbackId: 'r-2', resourceVersionAfter: 'v41' }),
    )
    given(openActions, s.events).then({ 'open:p-1': null })
  })

  it('leaves when the proposal is withdrawn', () => {
    const s = story()
    s.verdict({ revision: 1, decision: 'block', failed: ['policy'] })
    s.event((l) => l.event('ProposalWithdrawn', { proposalId: 'p-1', reason: 'no longer needed' }))
    given(openActions, s.events).then({ 'open:p-1': null })
  })

  it('ignores events about proposals it never saw', () => {
    const l = new LedgerBuilder()
    const spec = given(openActions, [
      l.event('ExecutionFailed', {
        proposalId: 'p-x',
        executionId: 'e-x',
        error: 'boom',
        resourceVersionAfter: null,
      }),
    ])
    assert.equal(spec.docs.size, 0)
  })

  it('gives the age in whole seconds since the action entered its state', () => {
    const doc = { since: '2024-05-01T10:00:00.000Z' }
    assert.equal(ageSeconds(doc, '2024-05-01T10:01:30.900Z'), 90)
    assert.equal(ageSeconds(doc, new Date('2024-05-01T12:00:00.000Z')), 7200)
    assert.equal(ageSeconds(doc, '2024-05-01T09:00:00.000Z'), 0, 'never negative')
  })
})
