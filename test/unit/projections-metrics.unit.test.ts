import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type AwaitingDoc,
  emptyUnsafeBlocked as emptyUnsafe,
  metrics,
  summarizeRecovery,
  unsafeRate,
  type WindowDoc,
} from '../../projections/metrics.js'
import { awaitingNow } from '../../projections/metrics-summary.js'
import type { LedgerEvent } from '../../src/domain/events.js'
import {
  actionDigestFor,
  LedgerBuilder,
  type ProposalFacts,
  proposalData,
  type VerdictFacts,
  verdictData,
  verdictIdOf,
} from '../support/ledger-events.js'
import { given } from '../support/projection-spec.js'

/** A ledger written in order; `at` sets the time of the next events. */
const ledger = (start: string) => {
  const l = new LedgerBuilder(start)
  const events: LedgerEvent[] = []
  return {
    events,
    at(time: string) {
      l.at(time)
      return this
    },
    submit(p: ProposalFacts) {
      events.push(l.event('ProposalSubmitted', proposalData(p)))
      return this
    },
    verdict(p: ProposalFacts, facts: Omit<VerdictFacts, 'decidedAt'>) {
      const decidedAt = new Date(Date.parse(start)).toISOString()
      events.push(l.event('VerdictIssued', verdictData(p, { ...facts, decidedAt })))
      return this
    },
    start(p: ProposalFacts, verdictId: string | null) {
      events.push(
        l.event('ExecutionStarted', {
          proposalId: p.proposalId,
          executionId: `e-${p.proposalId}`,
          verdictId,
          actionDigest: actionDigestFor(p),
          executor: 'executor-1',
        }),
      )
      return this
    },
    refuse(p: ProposalFacts, executionId: string, executor: string, rules: readonly string[]) {
      events.push(
        l.event('ExecutionRefused', {
          proposalId: p.proposalId,
          executionId,
          verdictId: null,
          actionDigest: actionDigestFor(p),
          executor,
          reasons: rules.map((specification) => ({ specification, reason: `${specification} broken` })),
        }),
      )
      return this
    },
    fail(p: ProposalFacts) {
      events.push(
        l.event('ExecutionFailed', {
          proposalId: p.proposalId,
          executionId: `e-${p.proposalId}`,
          error: 'health checks failed',
          resourceVersionAfter: null,
        }),
      )
      return this
    },
    violation(p: ProposalFacts, kind: 'no-verdict' | 'revoked', verdictId: string | null) {
      events.push(
        l.event('ViolationRecorded', {
          proposalId: p.proposalId,
          executionId: `e-${p.proposalId}`,
          agentId: p.agentId ?? 'agent-1',
          responsible: 'executor-1',
          verdictId,
          kind,
          reason: `violation: ${kind}`,
        }),
      )
      return this
    },
    recover(p: ProposalFacts) {
      events.push(
        l.event('RollbackCompleted', {
          proposalId: p.proposalId,
          rollbackId: `r-${p.proposalId}`,
          resourceVersionAfter: 'v41',
        }),
      )
      return this
    },
    revoke(p: ProposalFacts, revision: number) {
      events.push(
        l.event('VerdictRevoked', {
          proposalId: p.proposalId,
          verdictId: verdictIdOf(p.proposalId, revision),
          reason: 'global kill switch engaged: incident',
          killSwitch: { scope: 'global', target: null },
        }),
      )
      return this
    },
    withdraw(p: ProposalFacts, supersededBy?: string) {
      const reason = supersededBy ? 'replaced' : 'not worth the evidence'
      events.push(
        l.event('ProposalWithdrawn', {
          proposalId: p.proposalId,
          reason,
          ...(supersededBy ? { supersededBy } : {}),
        }),
      )
      return this
    },
    expire(p: ProposalFacts) {
      events.push(
        l.event('ProposalExpired', { proposalId: p.proposalId, submittedAt: start, deadline: start }),
      )
      return this
    },
    window(key: string) {
      return given(metrics, events).doc(key) as WindowDoc
    },
    awaiting() {
      return given(metrics, events).doc('awaiting') as AwaitingDoc | undefined
    },
  }
}

describe('metrics projection', () => {
  it('counts nothing as blocked in a history where every action is eventually allowed and executed', () => {
    const ps = [1, 2, 3].map((n) => ({ proposalId: `p-${n}`, agentId: `agent-${n}` }))
    const m = ledger('2024-05-01T10:00:00.000Z')
    for (const p of ps) {
      // every proposal's first verdict is a block: its evidence has not arrived yet
      m.submit(p).verdict(p, { revision: 1, decision: 'block', failed: ['freshState', 'rollback'] })
    }
    m.at('2024-05-01T10:40:00.000Z')
    for (const p of ps) m.verdict(p, { revision: 2, decision: 'allow' })
    m.at('2024-05-01T11:05:00.000Z')
    for (const p of ps) m.start(p, verdictIdOf(p.proposalId, 2))

    const day = m.window('day:2024-05-01')
    assert.equal(day.blockedVerdicts, 3, 'the blocks are verdicts, and counted as such')
    assert.deepEqual(day.unsafeBlocked, emptyUnsafe())
    assert.deepEqual(day.actionsEnded, { count: 3, byEnd: { executed: 3 } })
    assert.equal(unsafeRate(day), 0)
    assert.deepEqual(awaitingNow(m.awaiting()), { count: 0, byCheck: {}, byEnvironment: {} })
    assert.equal(
      m.window('hour:2024-05-01T10').actionsEnded.count,
      0,
      'nothing ended while they were blocked',
    )
  })

  it('counts a proposal that ends without executing while blocked once, when it ends, by how it ended and the checks its last verdict failed', () => {
    const withdrawn = { proposalId: 'p-1', agentId: 'agent-1', tool: 'kubectl', environment: 'production' }
    const superseded = { proposalId: 'p-2', agentId: 'agent-1', tool: 'terraform', environment: 'staging' }
    const expired = { proposalId: 'p-3', agentId: 'agent-2', expectedImpact: 'high' as const }
    const allowedThenWithdrawn = { proposalId: 'p-4', agentId: 'agent-2' }
    const stillOpen = { proposalId: 'p-5', agentId: 'agent-3', environment: 'staging' }
    const m = ledger('2024-05-01T10:00:00.000Z')
      .submit(withdrawn)
      .submit(superseded)
      .submit(expired)
      .submit(allowedThenWithdrawn)
      .submit(stillOpen)
      .verdict(withdrawn, { revision: 1, decision: 'block', failed: ['scopedPermission', 'freshState'] })
      .verdict(superseded, { revision: 1, decision: 'block', failed: ['survival'] })
      .verdict(expired, { revision: 1, decision: 'block', failed: ['rollback'], impact: 'critical' })
      .verdict(allowedThenWithdrawn, { revision: 1, decision: 'allow' })
      .verdict(stillOpen, { revision: 1, decision: 'block', failed: ['freshState'] })
      .at('2024-05-01T10:30:00.000Z')
      .verdict(withdrawn, { revision: 2, decision: 'block', failed: ['freshState'] })
      .at('2024-05-01T11:15:00.000Z')
      .withdraw(withdrawn)
      .withdraw(superseded, 'p-6')
      .withdraw(allowedThenWithdrawn)
      .at('2024-05-08T10:00:00.000Z')
      .expire(expired)

    const hour10 = m.window('hour:2024-05-01T10')
    assert.deepEqual(hour10.unsafeBlocked, emptyUnsafe(), 'a block is not yet an unsafe action blocked')
    assert.equal(hour10.actionsEnded.count, 0)
    assert.equal(unsafeRate(hour10), null, 'no action ended, so there is no rate')

    const hour11 = m.window('hour:2024-05-01T11')
    assert.deepEqual(hour11.unsafeBlocked, {
      count: 2,
      byHow: { 'ended-blocked': 2 },
      byEnd: { withdrawn: 1, superseded: 1 },
      byCheck: { freshState: 1, survival: 1 },
      byAgent: { 'agent-1': 2 },
      byTool: { kubectl: 1, terraform: 1 },
      byEnvironment: { production: 1, staging: 1 },
      byImpact: { high: 2 },
    })
    assert.deepEqual(hour11.actionsEnded, { count: 3, byEnd: { withdrawn: 2, superseded: 1 } })
    assert.equal(unsafeRate(hour11), 2 / 3, 'the allowed proposal withdrawn is in the base, not blocked')

    const week = m.window('day:2024-05-08')
    assert.deepEqual(
      [
        week.unsafeBlocked.count,
        week.unsafeBlocked.byEnd,
        week.unsafeBlocked.byImpact,
        week.unsafeBlocked.byCheck,
      ],
      [1, { expired: 1 }, { critical: 1 }, { rollback: 1 }],
    )
    assert.deepEqual(awaitingNow(m.awaiting()), {
      count: 1,
      byCheck: { freshState: 1 },
      byEnvironment: { staging: 1 },
    })
  })

  it('keeps the open, blocked proposals as awaiting evidence, and lets each leave once', () => {
    const p = { proposalId: 'p-1', environment: 'production' }
    const m = ledger('2024-05-01T10:00:00.000Z')
      .submit(p)
      .verdict(p, { revision: 1, decision: 'block', failed: ['freshState', 'rollback'] })
    assert.deepEqual(m.awaiting(), {
      kind: 'awaiting',
      count: 1,
      byCheck: { freshState: 1, rollback: 1 },
      byEnvironment: { production: 1 },
    })
    m.verdict(p, { revision: 2, decision: 'block', failed: ['rollback'] })
    assert.deepEqual(m.awaiting(), {
      kind: 'awaiting',
      count: 1,
      byCheck: { freshState: 0, rollback: 1 },
      byEnvironment: { production: 1 },
    })
    m.verdict(p, { revision: 3, decision: 'allow' })
    assert.equal(m.awaiting()?.count, 0, 'an allow is not awaiting evidence')
    m.verdict(p, { revision: 4, decision: 'block', failed: ['killSwitch'] }).withdraw(p)
    assert.equal(m.awaiting()?.count, 0, 'a withdrawn proposal awaits nothing')
    // an expiry noticed after the withdrawal, and a verdict after it, change nothing
    m.expire(p).verdict(p, { revision: 5, decision: 'block', failed: ['policy'] })
    const day = m.window('day:2024-05-01')
    assert.deepEqual([day.unsafeBlocked.count, day.actionsEnded.count], [1, 1])
    assert.deepEqual(day.unsafeBlocked.byCheck, { killSwitch: 1 })
    assert.equal(m.awaiting()?.count, 0)
  })

  it('takes an allow a kill switch revoked as a block on killSwitch; a revocation of an older verdict changes nothing', () => {
    const stopped = { proposalId: 'p-1' }
    const lapsed = { proposalId: 'p-2' }
    const m = ledger('2024-05-01T10:00:00.000Z')
      .submit(stopped)
      .submit(lapsed)
      .verdict(stopped, { revision: 1, decision: 'allow' })
      .verdict(lapsed, { revision: 1, decision: 'allow' })
      .verdict(lapsed, { revision: 2, decision: 'allow' })
      .revoke(stopped, 1)
      .revoke(lapsed, 1)
    assert.deepEqual(awaitingNow(m.awaiting()), {
      count: 1,
      byCheck: { killSwitch: 1 },
      byEnvironment: { production: 1 },
    })
    m.withdraw(stopped).withdraw(lapsed)
    const day = m.window('day:2024-05-01')
    assert.deepEqual([day.unsafeBlocked.count, day.unsafeBlocked.byCheck], [1, { killSwitch: 1 }])
    assert.deepEqual(day.actionsEnded, { count: 2, byEnd: { withdrawn: 2 } })
  })

  it('counts a start refused at the gate in refusedAtGate, by rule, agent, tool and environment, and not as an execution', () => {
    const p1 = { proposalId: 'p-1', agentId: 'agent-1', tool: 'kubectl', environment: 'production' } as const
    const p2 = { proposalId: 'p-2', agentId: 'agent-2', tool: 'terraform', environment: 'staging' } as const
    const m = ledger('2024-05-01T10:00:00.000Z')
      .submit(p1)
      .submit(p2)
      .verdict(p1, { revision: 1, decision: 'allow' })
      .at('2024-05-01T10:10:00.000Z')
      // an intruder cites nothing and holds no role: three rules broken, one refusal
      .refuse(p1, 'x-1', 'intruder', ['startedByExecutor', 'executorRunsAsIdentity', 'citesLiveAllow'])
      .refuse(p2, 'x-2', 'executor-1', ['citesLiveAllow'])
      .at('2024-05-01T11:05:00.000Z')
      .refuse(p2, 'x-3', 'executor-1', ['citesLiveAllow', 'citesLiveAllow', 'citesThisAction'])

    const hour10 = m.window('hour:2024-05-01T10')
    assert.deepEqual(hour10.refusedAtGate, {
      count: 2,
      byRule: { startedByExecutor: 1, executorRunsAsIdentity: 1, citesLiveAllow: 2 },
      byAgent: { 'agent-1': 1, 'agent-2': 1 },
      byTool: { kubectl: 1, terraform: 1 },
      byEnvironment: { production: 1, staging: 1 },
    })
    assert.deepEqual(
      [hour10.failedDespiteAllow, hour10.violations.count, hour10.recoveries.count],
      [0, 0, 0],
      'nothing ran: no execution, failure or violation is counted',
    )
    const hour11 = m.window('hour:2024-05-01T11')
    assert.deepEqual(hour11.refusedAtGate, {
      count: 1,
      byRule: { citesLiveAllow: 1, citesThisAction: 1 },
      byAgent: { 'agent-2': 1 },
      byTool: { terraform: 1 },
      byEnvironment: { staging: 1 },
    })
    const day = m.window('day:2024-05-01')
    assert.equal(day.refusedAtGate.count, 3)
    assert.deepEqual(day.refusedAtGate.byRule, {
      startedByExecutor: 1,
      executorRunsAsIdentity: 1,
      citesLiveAllow: 3,
      citesThisAction: 1,
    })
    assert.deepEqual(day.refusedAtGate.byAgent, { 'agent-1': 1, 'agent-2': 2 })
    assert.deepEqual(day.actionsEnded, { count: 3, byEnd: { 'refused-at-gate': 3 } })
    assert.deepEqual(
      [
        day.unsafeBlocked.count,
        day.unsafeBlocked.byHow,
        day.unsafeBlocked.byAgent,
        day.unsafeBlocked.byCheck,
      ],
      [3, { 'refused-at-gate': 3 }, { 'agent-1': 1, 'agent-2': 2 }, {}],
      'each refused start is an unsafe action blocked before execution; the rules broken are in refusedAtGate',
    )
  })

  it('counts a refusal for a proposal it never saw, with no agent, tool or environment', () => {
    const m = ledger('2024-05-01T10:00:00.000Z').refuse({ proposalId: 'p-unknown' }, 'x-1', 'e', [
      'proposalIsOpen',
    ])
    assert.deepEqual(m.window('hour:2024-05-01T10').refusedAtGate, {
      count: 1,
      byRule: { proposalIsOpen: 1 },
      byAgent: {},
      byTool: {},
      byEnvironment: {},
    })
  })

  it('has no unsafe rate for a window where no action ended', () => {
    assert.equal(unsafeRate({ actionsEnded: { count: 0, byEnd: {} }, unsafeBlocked: emptyUnsafe() }), null)
  })

  it('tells a failure despite an allow from a violation, even when the violation is recorded late', () => {
    const allowed = { proposalId: 'p-1' }
    const uncited = { proposalId: 'p-2', agentId: 'agent-2' }
    const revoked = { proposalId: 'p-3', agentId: 'agent-3' }
    const m = ledger('2024-05-01T10:00:00.000Z')
      .submit(allowed)
      .submit(uncited)
      .submit(revoked)
      .verdict(allowed, { revision: 1, decision: 'allow' })
      .verdict(revoked, { revision: 1, decision: 'allow' })
      .at('2024-05-01T10:10:00.000Z')
      .start(allowed, verdictIdOf('p-1', 1))
      .fail(allowed)
      .start(uncited, null)
      .fail(uncited)
      .violation(uncited, 'no-verdict', null)
      .start(revoked, verdictIdOf('p-3', 1))
      .fail(revoked)
      .at('2024-05-01T11:00:00.000Z')
      .violation(revoked, 'revoked', verdictIdOf('p-3', 1))

    const hour10 = m.window('hour:2024-05-01T10')
    assert.equal(
      hour10.failedDespiteAllow,
      1,
      'the revoked execution was taken back once its violation arrived',
    )
    assert.deepEqual(hour10.violations, { count: 1, byKind: { 'no-verdict': 1 }, byAgent: { 'agent-2': 1 } })
    const hour11 = m.window('hour:2024-05-01T11')
    assert.deepEqual(hour11.violations, { count: 1, byKind: { revoked: 1 }, byAgent: { 'agent-3': 1 } })
    assert.equal(hour11.failedDespiteAllow, 0)
    const day = m.window('day:2024-05-01')
    assert.equal(day.failedDespiteAllow, 1)
    assert.equal(day.violations.count, 2)
  })

  it('measures time to recovery from the failure to the completed rollback, by agent, tool and environment', () => {
    const m = ledger('2024-05-01T09:00:00.000Z')
    const durations = [30, 120, 60, 600, 90]
    const proposals = durations.map((_, i) => ({
      proposalId: `p-${i}`,
      agentId: i % 2 === 0 ? 'agent-even' : 'agent-odd',
      tool: i < 2 ? 'kubectl' : 'terraform',
      environment: 'production',
    }))
    for (const [i, p] of proposals.entries()) {
      m.at('2024-05-01T09:00:00.000Z').submit(p).verdict(p, { revision: 1, decision: 'allow' })
      m.at(`2024-05-01T10:0${i}:00.000Z`).start(p, verdictIdOf(p.proposalId, 1)).fail(p)
    }
    for (const [i, p] of proposals.entries()) {
      m.at(
        new Date(Date.parse(`2024-05-01T10:0${i}:00.000Z`) + (durations[i] ?? 0) * 1000).toISOString(),
      ).recover(p)
    }
    const hour10 = m.window('hour:2024-05-01T10')
    assert.deepEqual(hour10.recoveries, {
      count: 5,
      durationsSeconds: [30, 60, 90, 120, 600],
      byAgent: { 'agent-even': [30, 60, 90], 'agent-odd': [120, 600] },
      byTool: { kubectl: [30, 120], terraform: [60, 90, 600] },
      byEnvironment: { production: [30, 60, 90, 120, 600] },
    })
    assert.deepEqual(summarizeRecovery(hour10.recoveries.durationsSeconds), {
      count: 5,
      p50: 90,
      p90: 600,
      max: 600,
    })
    assert.deepEqual(m.window('day:2024-05-01').recoveries.durationsSeconds, [30, 60, 90, 120, 600])
  })

  it('does not count a rollback twice, nor one after an execution that did not fail', () => {
    const failedOne = { proposalId: 'p-1' }
    const succeeded = { proposalId: 'p-2' }
    const m = ledger('2024-05-01T10:00:00.000Z')
      .submit(failedOne)
      .submit(succeeded)
      .start(failedOne, null)
      .fail(failedOne)
      .at('2024-05-01T10:01:00.000Z')
      .recover(failedOne)
      .recover(failedOne)
      .start(succeeded, null)
      .recover(succeeded)
    assert.deepEqual(m.window('hour:2024-05-01T10').recoveries.durationsSeconds, [60])
  })

  it('summarises durations with nearest-rank percentiles', () => {
    assert.deepEqual(summarizeRecovery([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]), {
      count: 10,
      p50: 5,
      p90: 9,
      max: 10,
    })
    assert.deepEqual(summarizeRecovery([42]), { count: 1, p50: 42, p90: 42, max: 42 })
    assert.deepEqual(summarizeRecovery([]), { count: 0, p50: null, p90: null, max: null })
  })

  it('buckets by the UTC hour and day of the recorded time', () => {
    const p = { proposalId: 'p-1' }
    const m = ledger('2024-05-01T23:59:59.999Z').submit(p).verdict(p, { revision: 1, decision: 'allow' })
    m.at('2024-05-02T00:00:00.000Z').verdict(p, { revision: 2, decision: 'allow' })
    const spec = given(metrics, m.events)
    assert.deepEqual(
      spec.list('hour:').map((w) => [w.kind === 'window' && w.window, w.kind === 'window' && w.start]),
      [
        ['hour', '2024-05-01T23:00:00.000Z'],
        ['hour', '2024-05-02T00:00:00.000Z'],
      ],
    )
    assert.deepEqual(
      spec.list('day:').map((w) => w.kind === 'window' && [w.start, w.verdicts]),
      [
        ['2024-05-01T00:00:00.000Z', 1],
        ['2024-05-02T00:00:00.000Z', 1],
      ],
    )
  })
})
