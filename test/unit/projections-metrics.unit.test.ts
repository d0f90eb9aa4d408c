import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { metrics, summarizeRecovery, unsafeRate, type WindowDoc } from '../../projections/metrics.js'
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
    window(key: string) {
      return given(metrics, events).doc(key) as WindowDoc
    },
  }
}

describe('metrics projection', () => {
  it('counts a proposal blocked three times once as unsafe, with the checks of its first block', () => {
    const p1 = {
      proposalId: 'p-1',
      agentId: 'agent-1',
      tool: 'kubectl',
      environment: 'production',
      expectedImpact: 'high',
    } as const
    const p2 = { proposalId: 'p-2', agentId: 'agent-2', tool: 'terraform', environment: 'staging' } as const
    const m = ledger('2024-05-01T10:00:00.000Z')
      .submit(p1)
      .submit(p2)
      .at('2024-05-01T10:05:00.000Z')
      .verdict(p1, {
        revision: 1,
        decision: 'block',
        failed: ['scopedPermission', 'freshState'],
        impact: 'critical',
      })
      .at('2024-05-01T10:20:00.000Z')
      .verdict(p1, { revision: 2, decision: 'block', failed: ['freshState'] })
      .verdict(p2, { revision: 1, decision: 'allow' })
      .at('2024-05-01T11:10:00.000Z')
      .verdict(p1, { revision: 3, decision: 'block', failed: ['survival'] })

    const hour10 = m.window('hour:2024-05-01T10')
    assert.deepEqual(
      {
        verdicts: hour10.verdicts,
        allowed: hour10.allowed,
        blockedVerdicts: hour10.blockedVerdicts,
        proposalsDecided: hour10.proposalsDecided,
        unsafeBlocked: hour10.unsafeBlocked,
      },
      {
        verdicts: 3,
        allowed: 1,
        blockedVerdicts: 2,
        proposalsDecided: 2,
        unsafeBlocked: {
          count: 1,
          byCheck: { scopedPermission: 1, freshState: 1 },
          byAgent: { 'agent-1': 1 },
          byTool: { kubectl: 1 },
          byEnvironment: { production: 1 },
          byImpact: { critical: 1 },
        },
      },
    )
    assert.equal(unsafeRate(hour10), 0.5)

    const hour11 = m.window('hour:2024-05-01T11')
    assert.deepEqual(
      [hour11.verdicts, hour11.blockedVerdicts, hour11.proposalsDecided, hour11.unsafeBlocked.count],
      [1, 1, 1, 0],
      'a later block of the same proposal is a block verdict, not another unsafe action',
    )
    assert.equal(unsafeRate(hour11), 0)

    const day = m.window('day:2024-05-01')
    assert.deepEqual(
      [day.verdicts, day.blockedVerdicts, day.proposalsDecided, day.unsafeBlocked.count],
      [4, 3, 2, 1],
    )
    assert.deepEqual(day.unsafeBlocked.byCheck, { scopedPermission: 1, freshState: 1 })
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

  it('has no unsafe rate for a window that decided nothing', () => {
    assert.equal(
      unsafeRate({ proposalsDecided: 0, unsafeBlocked: { count: 0 } as WindowDoc['unsafeBlocked'] }),
      null,
    )
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
