// Branch survival over time, on a small history whose numbers are worked out by hand: two workflows, two agents,
// two environments, four simulation runs. Recorded through the API, read back over HTTP, the CLI (--json) and
// the Prometheus series.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { main } from '../../src/cli/main.js'
import { expectError, promote, SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'
import { promtoolAccepts } from '../support/promtool.js'

let api: TestApi

type Outcome = 'survived' | 'failed'

/** An agent proposes a workflow in an environment, asks for a simulation, and the simulator records these branches. */
const run = async (
  agentId: string,
  environment: string,
  tool: string,
  action: string,
  branches: ReadonlyArray<[kind: string, outcome: Outcome]>,
) => {
  const agent = api.as(agentId, 'agent')
  const proposed = await agent.post('/v1/proposals', {
    agentId,
    executingIdentity: SEED.executingIdentity,
    tool,
    action,
    resource: SEED.resource,
    environment,
    plan: { step: `${tool}.${action} by ${agentId}`, at: Math.random() },
    expectedImpact: 'low',
    snapshot: { version: 'v1' },
  })
  assert.equal(proposed.statusCode, 201, proposed.body)
  const { proposalId, actionDigest } = proposed.json() as { proposalId: string; actionDigest: string }
  const requested = await agent.post(`/v1/proposals/${proposalId}/simulation-requests`, { actionDigest })
  assert.equal(requested.statusCode, 201, requested.body)
  const recorded = await api.as(SEED.simulator, 'simulator').post(`/v1/proposals/${proposalId}/simulations`, {
    requestId: requested.json().requestId,
    actionDigest,
    branches: branches.map(([kind, outcome], i) => ({
      name: `branch-${i}`,
      kind,
      counterfactual: `${kind} during the change`,
      outcome,
    })),
  })
  assert.equal(recorded.statusCode, 201, recorded.body)
}

const auditor = () => api.as('auditor-1', 'auditor')

const survival = async (query = '') => {
  await api.settle()
  const r = await auditor().get(`/v1/survival${query}`)
  assert.equal(r.statusCode, 200, r.body)
  return r.json()
}

before(async () => {
  api = await startTestApi()
  await seedWorld(api)
  // agent-2 may simulate its plans in staging
  await promote(api, 'agent-2', 'staging', 'simulate')
  // A: agent-1 kubectl.scale in production, 2 of 3 adversarial branches survive (the baseline never counts)
  await run('agent-1', 'production', 'kubectl', 'scale', [
    ['baseline', 'survived'],
    ['dependency-down', 'failed'],
    ['stale-read', 'survived'],
    ['partial-failure', 'survived'],
  ])
  // B: agent-1 kubectl.scale in production, 2 of 2: passed
  await run('agent-1', 'production', 'kubectl', 'scale', [
    ['dependency-down', 'survived'],
    ['concurrent-change', 'survived'],
  ])
  // C: agent-2 cache.flush in staging, 0 of 2
  await run('agent-2', 'staging', 'cache', 'flush', [
    ['baseline', 'survived'],
    ['rollback-failure', 'failed'],
    ['stale-read', 'failed'],
  ])
  // D: agent-2 kubectl.scale in staging, the baseline alone: a run, no adversarial branch, not passed
  await run('agent-2', 'staging', 'kubectl', 'scale', [['baseline', 'survived']])
  await api.settle()
})

after(async () => {
  await api?.close()
})

describe('branch survival over time', () => {
  it('sums the runs, branches survived, every kind and the kinds that fail most, over HTTP', async () => {
    const report = await survival()
    assert.equal(report.window, 'day')
    assert.equal(report.series.length, 30, 'the last 30 days by default, empty ones included')
    const t = report.totals
    assert.deepEqual(
      [t.runs, t.runsPassed, t.adversarialBranches, t.survived, t.failed, t.survivalRate],
      [4, 1, 7, 4, 3, 4 / 7],
    )
    assert.deepEqual(t.byKind['dependency-down'], { branches: 2, survived: 1, failed: 1, survivalRate: 0.5 })
    assert.deepEqual(t.byKind['other-adversarial'], {
      branches: 0,
      survived: 0,
      failed: 0,
      survivalRate: null,
    })
    assert.deepEqual(
      t.mostFailed.map((k: { kind: string }) => k.kind),
      ['rollback-failure', 'dependency-down', 'stale-read'],
      'one failure each: the lowest rate first, then the vocabulary’s order',
    )
    assert.deepEqual(t.trend.previous, null, 'every run fell in today: nothing to compare with')
    assert.equal(t.trend.latest.survivalRate, 4 / 7)
    const today = report.series.at(-1)
    assert.deepEqual([today.runs, today.adversarialBranches, today.survived], [4, 7, 4])
    assert.equal(report.series[0].survivalRate, null, 'a day with no run has no rate')

    assert.deepEqual(
      report.byWorkflow.map((w: Record<string, unknown>) => [
        w.workflow,
        w.runs,
        w.runsPassed,
        w.adversarialBranches,
        w.survived,
      ]),
      [
        ['cache.flush', 1, 0, 2, 0],
        ['kubectl.scale', 3, 1, 5, 4],
      ],
    )
    assert.deepEqual(
      report.byAgent.map((a: Record<string, unknown>) => [
        a.agentId,
        a.runs,
        a.runsPassed,
        a.adversarialBranches,
        a.survived,
      ]),
      [
        ['agent-1', 2, 1, 5, 4],
        ['agent-2', 2, 0, 2, 0],
      ],
    )
    assert.equal(report.asOf, await api.head())
  })

  it('narrows to a workflow, an agent and an environment, in hour windows too', async () => {
    const scale = await survival('?workflow=kubectl.scale&window=hour')
    assert.equal(scale.series.length, 24)
    assert.deepEqual([scale.totals.runs, scale.totals.adversarialBranches, scale.totals.survived], [3, 5, 4])
    const baselineOnly = await survival('?workflow=kubectl.scale&agentId=agent-2')
    assert.deepEqual(
      [baselineOnly.totals.runs, baselineOnly.totals.adversarialBranches, baselineOnly.totals.survivalRate],
      [1, 0, null],
    )
    const staging = await survival('?environment=staging')
    assert.deepEqual([staging.totals.runs, staging.totals.adversarialBranches], [2, 2])
    const past = await survival('?from=2020-01-01T00:00:00Z&to=2020-01-03T00:00:00Z')
    assert.equal(past.series.length, 3)
    assert.deepEqual([past.totals.runs, past.byWorkflow, past.byAgent], [0, [], []])
  })

  it('answers as of a past position: the runs recorded by then, over HTTP and on the command line', async () => {
    const simulations = (await api.runtime.store.readAll(0, 10_000)).filter(
      (e) => e.type === 'SimulationRecorded',
    )
    assert.equal(simulations.length, 4)
    const third = simulations[2]?.position ?? 0
    const asOf = async (position: number) => (await survival(`?asOf=${position}`)).totals.runs
    assert.deepEqual([await asOf(third - 1), await asOf(third), await asOf(0)], [2, 3, 0])
    let stdout = ''
    const io = {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
      env: { DATA_DIR: api.dataDir, AUTH_MODE: 'embedded', LOG_LEVEL: 'silent' },
    }
    assert.equal(await main(['survival', '--as-of', String(third), '--json'], io), 0, stdout)
    const report = JSON.parse(stdout)
    assert.deepEqual([report.totals.runs, report.asOf], [3, third])
    expectError(await api.as('auditor-1', 'auditor').get('/v1/survival?asOf=99999999'), 400, 'invalid')
  })

  it('answers a bad filter 400 naming the field, an unauthenticated caller 401 and an agent 403', async () => {
    for (const [query, field] of [
      ['?workflow=kubectl', 'querystring.workflow'],
      ['?workflow=kubectl.scale.now', 'querystring.workflow'],
      // no tool name is that long: not a filter to drop, which would answer every workflow's figures
      [`?workflow=${'k'.repeat(101)}.scale`, 'querystring.workflow'],
      ['?agentId=has%20space', 'querystring.agentId'],
      ['?environment=Prod', 'querystring.environment'],
      ['?window=week', 'querystring.window'],
      ['?from=yesterday', 'querystring.from'],
      ['?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'querystring.from'],
      ['?window=hour&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'querystring.from'],
      ['?colour=red', 'querystring'],
    ] as const) {
      const body = expectError(await auditor().get(`/v1/survival${query}`), 400, 'invalid')
      assert.match(JSON.stringify(body), new RegExp(field.replace('.', '\\.')), query)
    }
    assert.equal((await api.as('admin', 'policy-admin').get('/v1/survival')).statusCode, 200)
    assert.equal((await api.app.inject({ method: 'GET', url: '/v1/survival' })).statusCode, 401)
    expectError(await api.as('agent-1', 'agent').get('/v1/survival'), 403, 'forbidden')
  })

  it('tells the command line the same figures (--json), offline on the data folder', async () => {
    await api.settle()
    let stdout = ''
    const io = {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: () => true },
      env: { DATA_DIR: api.dataDir, AUTH_MODE: 'embedded', LOG_LEVEL: 'silent' },
    }
    const code = await main(['survival', '--workflow', 'kubectl.scale', '--agent', 'agent-1', '--json'], io)
    assert.equal(code, 0, stdout)
    const report = JSON.parse(stdout)
    assert.equal(report.workflow, 'kubectl.scale')
    assert.equal(report.agentId, 'agent-1')
    assert.deepEqual(
      [
        report.totals.runs,
        report.totals.runsPassed,
        report.totals.adversarialBranches,
        report.totals.survived,
      ],
      [2, 1, 5, 4],
    )
    assert.deepEqual(report.totals, (await survival('?workflow=kubectl.scale&agentId=agent-1')).totals)

    stdout = ''
    assert.equal(await main(['survival', '--window', 'hour'], io), 0)
    assert.match(stdout, /adversarial branches\s+4 of 7 survived \(57\.1%\)/)
    assert.match(stdout, /failed most\s+rollback-failure 1 of 1, dependency-down 1 of 2, stale-read 1 of 2/)
    assert.equal(await main(['survival', '--workflow', 'kubectl'], io), 2, 'a bad workflow is a usage error')
    const tooLong = `${'k'.repeat(101)}.scale`
    assert.equal(await main(['survival', '--workflow', tooLong], io), 2, 'so is one no tool action can be')
  })

  it('exports runs and branches per workflow, kind and outcome to Prometheus, every kind and outcome at zero', async () => {
    await api.settle()
    const r = await auditor().get('/metrics')
    assert.equal(r.statusCode, 200, r.body)
    const samples = new Map<string, number>()
    for (const [, series, value] of r.body.matchAll(/^(governance_simulation_\S+) (\S+)$/gm))
      samples.set(String(series), Number(value))
    const expected: Record<string, number> = {
      'governance_simulation_runs_total{tool="kubectl",action="scale"}': 3,
      'governance_simulation_runs_total{tool="cache",action="flush"}': 1,
      // registered, never simulated: at zero from its registration
      'governance_simulation_runs_total{tool="db",action="migrate"}': 0,
      'governance_simulation_runs_passed_total{tool="kubectl",action="scale"}': 1,
      'governance_simulation_branches_total{tool="kubectl",action="scale",kind="dependency-down",outcome="failed"}': 1,
      'governance_simulation_branches_total{tool="kubectl",action="scale",kind="dependency-down",outcome="survived"}': 1,
      'governance_simulation_branches_total{tool="cache",action="flush",kind="rollback-failure",outcome="failed"}': 1,
      'governance_simulation_branches_total{tool="db",action="migrate",kind="other-adversarial",outcome="survived"}': 0,
      'governance_simulation_branches_by_workflow_total{tool="kubectl",action="scale",outcome="survived"}': 4,
      'governance_simulation_branches_by_workflow_total{tool="kubectl",action="scale",outcome="failed"}': 1,
      'governance_simulation_branches_by_kind_total{kind="stale-read",outcome="failed"}': 1,
      'governance_simulation_branches_by_kind_total{kind="other-adversarial",outcome="failed"}': 0,
    }
    for (const [series, value] of Object.entries(expected)) assert.equal(samples.get(series), value, series)
    const sum = (family: string) =>
      [...samples].filter(([s]) => s.startsWith(`${family}{`)).reduce((n, [, v]) => n + v, 0)
    for (const family of [
      'governance_simulation_branches_total',
      'governance_simulation_branches_by_workflow_total',
      'governance_simulation_branches_by_kind_total',
    ])
      assert.equal(sum(family), 7, `${family} sums to the adversarial branches`)
    assert.match(r.body, /# TYPE governance_simulation_branches_total counter/)
    promtoolAccepts(r.body)
  })
})
