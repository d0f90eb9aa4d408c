import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type SurvivalDoc,
  type SurvivalTotalDoc,
  type SurvivalWindowDoc,
  survival,
  survivalKeys,
  zeroCounts,
} from '../../projections/survival.js'
import { presentCounts } from '../../projections/survival-summary.js'
import { branchSurvival, type SurvivalFilter } from '../../src/application/queries.js'
import { windowRange } from '../../src/application/windows.js'
import type { BranchKind } from '../../src/domain/events.js'
import { toolActionOf } from '../../src/domain/workflow.js'
import { actionDigestFor, LedgerBuilder, type ProposalFacts, proposalData } from '../support/ledger-events.js'
import { given, type ProjectionSpec } from '../support/projection-spec.js'

type Outcome = 'survived' | 'failed'

let simulations = 0

/** A proposal's submission and one simulation of it with these branches. */
const simulated = (
  l: LedgerBuilder,
  facts: ProposalFacts,
  branches: ReadonlyArray<[BranchKind, Outcome]>,
) => [l.event('ProposalSubmitted', proposalData(facts)), simulation(l, facts, branches)]

const simulation = (
  l: LedgerBuilder,
  facts: ProposalFacts,
  branches: ReadonlyArray<[BranchKind, Outcome]>,
) => {
  simulations += 1
  return l.event('SimulationRecorded', {
    proposalId: facts.proposalId,
    simulationId: `sim-${simulations}`,
    requestId: `simreq-${simulations}`,
    actionDigest: actionDigestFor(facts),
    simulatedBy: 'simulator-1',
    branches: branches.map(([kind, outcome], i) => ({
      name: `b${i}`,
      kind,
      counterfactual: `${kind} ${i}`,
      outcome,
    })),
  })
}

const counts = (
  byKind: Partial<Record<Exclude<BranchKind, 'baseline'>, [runs: number, survived: number]>>,
  runs: number,
  runsPassed: number,
) => {
  const zero = zeroCounts()
  const kinds = { ...zero.byKind }
  for (const [kind, [r, s]] of Object.entries(byKind))
    kinds[kind as keyof typeof kinds] = { runs: r, survived: s }
  const adversarial = Object.values(kinds).reduce((n, k) => n + k.runs, 0)
  const survived = Object.values(kinds).reduce((n, k) => n + k.survived, 0)
  return { runs, runsPassed, adversarial, survived, byKind: kinds }
}

const readerOf = (spec: ProjectionSpec<SurvivalDoc>) => ({
  list: (prefix: string) => [...spec.docs].filter(([key]) => key.startsWith(prefix)),
  checkpoint: () => 42,
})

const filter = (over: Partial<SurvivalFilter> = {}): SurvivalFilter => ({
  window: 'day',
  workflow: undefined,
  agentId: undefined,
  environment: undefined,
  ...over,
})

const startsOf = (window: 'hour' | 'day', from: string, to: string): readonly string[] => {
  const range = windowRange(window, from, to, new Date(to))
  assert.ok('starts' in range)
  return range.starts
}

describe('survival projection', () => {
  it('counts each run through runSurvival per workflow, environment and agent, in its hour and its day', () => {
    const l = new LedgerBuilder('2024-05-01T10:15:00.000Z')
    const facts = { proposalId: 'p-1', tool: 'kubectl', action: 'scale', agentId: 'agent-1' }
    const events = [
      ...simulated(l, facts, [
        ['baseline', 'failed'],
        ['dependency-down', 'survived'],
        ['stale-read', 'failed'],
        ['stale-read', 'survived'],
      ]),
      l.after(600).event('ProposalSubmitted', proposalData({ ...facts, proposalId: 'p-2' })),
      simulation(l, { ...facts, proposalId: 'p-2' }, [
        ['baseline', 'survived'],
        ['rollback-failure', 'survived'],
      ]),
      // a run with only the baseline ran no adversarial branch: it is counted, and has not passed
      simulation(l, { ...facts, proposalId: 'p-2' }, [['baseline', 'survived']]),
    ]
    const spec = given(survival, events)
    const expected = counts(
      { 'dependency-down': [1, 1], 'stale-read': [2, 1], 'rollback-failure': [1, 1] },
      3,
      1,
    )
    const who = { tool: 'kubectl', action: 'scale', environment: 'production', agentId: 'agent-1' }
    spec.then({
      'hour:2024-05-01T10:kubectl.scale:production:agent-1': {
        kind: 'window',
        window: 'hour',
        start: '2024-05-01T10:00:00.000Z',
        ...who,
        ...expected,
      },
      'day:2024-05-01:kubectl.scale:production:agent-1': {
        kind: 'window',
        window: 'day',
        start: '2024-05-01T00:00:00.000Z',
        ...who,
        ...expected,
      },
      'total:kubectl.scale': { kind: 'total', tool: 'kubectl', action: 'scale', ...expected },
      'proposal:p-1': { kind: 'proposal', ...who },
    })
  })

  it('keeps workflows, environments and agents apart, in separate documents per window', () => {
    const l = new LedgerBuilder('2024-05-01T23:30:00.000Z')
    const events = [
      ...simulated(l, { proposalId: 'p-1', tool: 'cache', action: 'flush' }, [['partial-failure', 'failed']]),
      ...simulated(l, { proposalId: 'p-2', tool: 'cache', action: 'flush2' }, [
        ['partial-failure', 'survived'],
      ]),
      ...simulated(l, { proposalId: 'p-3', tool: 'cache', action: 'flush', environment: 'staging' }, [
        ['partial-failure', 'survived'],
      ]),
      ...simulated(l, { proposalId: 'p-4', tool: 'cache', action: 'flush', agentId: 'team:agent' }, [
        ['concurrent-change', 'survived'],
      ]),
      // the next UTC day
      ...simulated(l.after(3600), { proposalId: 'p-5', tool: 'cache', action: 'flush' }, [
        ['partial-failure', 'survived'],
      ]),
    ]
    const spec = given(survival, events)
    const flush = { tool: 'cache', action: 'flush' }
    assert.deepEqual(
      spec.list(survivalKeys.window('day', '2024-05-01T00:00:00.000Z', flush)).map((d) => {
        const w = d as SurvivalWindowDoc
        return [w.environment, w.agentId, w.adversarial, w.survived]
      }),
      [
        ['production', 'agent-1', 1, 0],
        ['production', 'team:agent', 1, 1],
        ['staging', 'agent-1', 1, 1],
      ],
      'a workflow prefix holds no workflow whose name only starts the same (cache.flush2)',
    )
    assert.equal(spec.list(survivalKeys.window('day', '2024-05-02T00:00:00.000Z')).length, 1)
    assert.equal(spec.list('hour:2024-05-01T23:').length, 4)
    const total = spec.doc(survivalKeys.total(flush)) as SurvivalTotalDoc
    assert.deepEqual([total.runs, total.adversarial, total.survived], [4, 4, 3])
  })

  it('reports a registered workflow at zero from its registration, and keeps its counts when re-registered', () => {
    const l = new LedgerBuilder()
    const registered = (impact: 'low' | 'high') =>
      l.event('ToolActionRegistered', { tool: 'kubectl', action: 'scale', impact, reversible: true })
    const events = [
      registered('low'),
      ...simulated(l, { proposalId: 'p-1' }, [['stale-read', 'survived']]),
      registered('high'),
    ]
    assert.deepEqual(given(survival, events.slice(0, 1)).doc('total:kubectl.scale'), {
      kind: 'total',
      tool: 'kubectl',
      action: 'scale',
      ...zeroCounts(),
    })
    const total = given(survival, events).doc('total:kubectl.scale') as SurvivalTotalDoc
    assert.equal(total.survived, 1)
  })

  it('counts no simulation of a proposal it never saw submitted', () => {
    const l = new LedgerBuilder()
    const spec = given(survival, [simulation(l, { proposalId: 'p-unknown' }, [['stale-read', 'failed']])])
    assert.equal(spec.docs.size, 0)
  })
})

describe('branch survival, read over windows', () => {
  // two workflows, two agents, three days; survival computed by hand below
  const l = new LedgerBuilder('2024-05-01T09:00:00.000Z')
  const scale = (id: string, agentId: string) => ({
    proposalId: id,
    tool: 'kubectl',
    action: 'scale',
    agentId,
  })
  const flush = (id: string, agentId: string) => ({ proposalId: id, tool: 'cache', action: 'flush', agentId })
  const events = [
    // day 1: scale by agent-1: 3 of 4 survive (dependency-down fails); flush by agent-2: 2 of 2
    ...simulated(l, scale('s-1', 'agent-1'), [
      ['baseline', 'survived'],
      ['dependency-down', 'failed'],
      ['stale-read', 'survived'],
      ['partial-failure', 'survived'],
      ['rollback-failure', 'survived'],
    ]),
    ...simulated(l, flush('f-1', 'agent-2'), [
      ['concurrent-change', 'survived'],
      ['stale-read', 'survived'],
    ]),
    // day 2: nothing
    // day 3: scale by agent-2: 1 of 4 (dependency-down twice and rollback-failure fail); scale by agent-1: 2 of 2
    ...simulated(l.after(2 * 86_400), scale('s-2', 'agent-2'), [
      ['dependency-down', 'failed'],
      ['dependency-down', 'failed'],
      ['rollback-failure', 'failed'],
      ['stale-read', 'survived'],
    ]),
    ...simulated(l, scale('s-3', 'agent-1'), [
      ['dependency-down', 'survived'],
      ['partial-failure', 'survived'],
    ]),
  ]
  const spec = given(survival, events)
  const starts = startsOf('day', '2024-05-01T00:00:00Z', '2024-05-03T12:00:00Z')

  it('sums the range, each window, every kind and the kinds that fail most', () => {
    const report = branchSurvival(readerOf(spec), filter(), starts)
    assert.deepEqual(
      report.series.map((w) => [
        w.start.slice(0, 10),
        w.runs,
        w.runsPassed,
        w.adversarialBranches,
        w.survived,
      ]),
      [
        ['2024-05-01', 2, 1, 6, 5],
        ['2024-05-02', 0, 0, 0, 0],
        ['2024-05-03', 2, 1, 6, 3],
      ],
    )
    assert.equal(report.series[1]?.survivalRate, null, 'a window with no adversarial branch has no rate')
    const t = report.totals
    assert.deepEqual([t.runs, t.runsPassed, t.adversarialBranches, t.survived, t.failed], [4, 2, 12, 8, 4])
    assert.equal(t.survivalRate, 8 / 12)
    assert.deepEqual(t.byKind['dependency-down'], {
      branches: 4,
      survived: 1,
      failed: 3,
      survivalRate: 1 / 4,
    })
    assert.deepEqual(t.byKind['other-adversarial'], {
      branches: 0,
      survived: 0,
      failed: 0,
      survivalRate: null,
    })
    assert.deepEqual(
      t.mostFailed.map((k) => [k.kind, k.failed]),
      [
        ['dependency-down', 3],
        ['rollback-failure', 1],
      ],
    )
    assert.deepEqual(t.trend, {
      latest: { start: '2024-05-03T00:00:00.000Z', survivalRate: 3 / 6 },
      previous: { start: '2024-05-01T00:00:00.000Z', survivalRate: 5 / 6 },
      change: 3 / 6 - 5 / 6,
    })
    assert.equal(report.end, '2024-05-04T00:00:00.000Z')
    assert.equal(report.asOf, 42)
  })

  it('breaks the range down per workflow and per agent, each with its trend', () => {
    const report = branchSurvival(readerOf(spec), filter(), starts)
    assert.deepEqual(
      report.byWorkflow.map((w) => [w.workflow, w.runs, w.adversarialBranches, w.survived, w.trend.change]),
      [
        ['cache.flush', 1, 2, 2, null],
        ['kubectl.scale', 3, 10, 6, 3 / 6 - 3 / 4],
      ],
    )
    assert.deepEqual(
      report.byAgent.map((a) => [a.agentId, a.runs, a.runsPassed, a.adversarialBranches, a.survived]),
      [
        ['agent-1', 2, 1, 6, 5],
        ['agent-2', 2, 1, 6, 3],
      ],
    )
  })

  it('narrows to a workflow, an agent and an environment', () => {
    const scaleOnly = branchSurvival(
      readerOf(spec),
      filter({ workflow: toolActionOf('kubectl.scale') ?? undefined }),
      starts,
    )
    assert.equal(scaleOnly.workflow, 'kubectl.scale')
    assert.deepEqual([scaleOnly.totals.adversarialBranches, scaleOnly.totals.survived], [10, 6])
    const agent2 = branchSurvival(
      readerOf(spec),
      filter({ workflow: toolActionOf('kubectl.scale') ?? undefined, agentId: 'agent-2' }),
      starts,
    )
    assert.deepEqual(
      [agent2.totals.runs, agent2.totals.adversarialBranches, agent2.totals.survived],
      [1, 4, 1],
    )
    assert.deepEqual(agent2.totals.trend, {
      latest: { start: '2024-05-03T00:00:00.000Z', survivalRate: 1 / 4 },
      previous: null,
      change: null,
    })
    const staging = branchSurvival(readerOf(spec), filter({ environment: 'staging' }), starts)
    assert.equal(staging.totals.runs, 0)
    assert.deepEqual([staging.byWorkflow, staging.byAgent], [[], []])
  })

  it('reads hour windows from the same history', () => {
    const hours = startsOf('hour', '2024-05-03T08:00:00Z', '2024-05-03T10:00:00Z')
    const report = branchSurvival(readerOf(spec), filter({ window: 'hour' }), hours)
    assert.deepEqual(
      report.series.map((w) => [w.start.slice(11, 13), w.adversarialBranches]),
      [
        ['08', 0],
        ['09', 6],
        ['10', 0],
      ],
    )
  })
})

describe('survival figures', () => {
  it('have no rate where nothing adversarial ran, and list no kind that never failed', () => {
    const none = presentCounts(zeroCounts())
    assert.equal(none.survivalRate, null)
    assert.deepEqual(none.mostFailed, [])
  })

  it('rank the kinds that fail most by failures, then by the lower rate', () => {
    const figures = presentCounts(
      counts({ 'stale-read': [4, 2], 'partial-failure': [2, 0], 'dependency-down': [9, 8] }, 5, 0),
    )
    assert.deepEqual(
      figures.mostFailed.map((k) => k.kind),
      ['partial-failure', 'stale-read', 'dependency-down'],
    )
  })
})

describe('window range', () => {
  it('refuses a start after the end, which defaults to now', () => {
    assert.deepEqual(
      windowRange('day', '2030-01-01T00:00:00Z', undefined, new Date('2026-01-01T00:00:00Z')),
      {
        reversed: true,
      },
    )
  })
})
