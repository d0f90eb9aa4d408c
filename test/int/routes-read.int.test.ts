// The read side over a small history driven through the API itself: a proposal blocked on stale state,
// one blocked on authority whose start the gate refused and which then ran anyway, outside the gate (a
// violation, written to the ledger as an executor's report would be), one allowed and executed, one that
// failed and was rolled back, and one that failed and is still unrecovered.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { currentVerdict } from '../../src/application/queries.js'
import type { Role } from '../../src/auth/tokens.js'
import { streams } from '../../src/domain/events.js'
import type { StoredEvent } from '../../src/store/port.js'
import { expectError, SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'
import { promtoolAccepts } from '../support/promtool.js'

const EXECUTOR = 'executor-1'
const RESOURCE = SEED.resource

interface Submitted {
  readonly proposalId: string
  readonly planHash: string
  readonly actionDigest: string
}

interface History {
  readonly staleBlocked: Submitted
  readonly authorityBlocked: Submitted
  readonly succeeded: Submitted
  readonly recovered: Submitted
  readonly unrecovered: Submitted
  /** the failure and the completed rollback of `recovered`, as the ledger recorded them */
  readonly recoveryFailedAt: string
  readonly recoveryCompletedAt: string
  readonly recoverySeconds: number
  readonly proposalsSubmitted: number
}

let api: TestApi
let history: History

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const created = async (what: string, response: Promise<{ statusCode: number; body: string }>) => {
  const r = await response
  assert.equal(r.statusCode, 201, `${what}: ${r.body}`)
  return JSON.parse(r.body) as Record<string, unknown> & { events: StoredEvent[] }
}

const propose = async (agentId: string, step: string, snapshotVersion = 'v1'): Promise<Submitted> => {
  const body = await created(
    `proposal ${step}`,
    api.as(agentId, 'agent').post('/v1/proposals', {
      agentId,
      executingIdentity: SEED.executingIdentity,
      tool: 'cache',
      action: 'flush',
      resource: RESOURCE,
      environment: 'production',
      plan: { step },
      expectedImpact: 'low',
      snapshot: { version: snapshotVersion },
    }),
  )
  const { proposalId, planHash, actionDigest } = body
  return { proposalId: String(proposalId), planHash: String(planHash), actionDigest: String(actionDigest) }
}

const verdictOf = async (proposalId: string) => {
  const r = await api.as('auditor-1', 'auditor').get(`/v1/proposals/${proposalId}/verdict?wait=5`)
  assert.equal(r.statusCode, 200, r.body)
  const { verdict } = r.json() as { verdict: { verdictId: string; decision: string } | null }
  assert.ok(verdict, `a verdict for ${proposalId}`)
  return verdict
}

const executor = () => api.as(EXECUTOR, 'executor')

const startExecution = async (p: Submitted, verdictId: string | null): Promise<string> => {
  const body = await created(
    'execution start',
    executor().post(`/v1/proposals/${p.proposalId}/executions`, { verdictId, actionDigest: p.actionDigest }),
  )
  return String(body.executionId)
}

/** An action that ran without a live allow, as it reaches the ledger: the gate never let it start. */
const ranWithoutAllow = async (p: Submitted) => {
  const refused = await executor().post(`/v1/proposals/${p.proposalId}/executions`, {
    verdictId: null,
    actionDigest: p.actionDigest,
  })
  assert.equal(refused.statusCode, 409, refused.body)
  const data = {
    proposalId: p.proposalId,
    executionId: `ran-anyway-${p.proposalId}`,
    verdictId: null,
    actionDigest: p.actionDigest,
    executor: EXECUTOR,
  }
  const stream = streams.proposal(p.proposalId)
  await api.runtime.store.append(
    stream,
    [{ type: 'ExecutionStarted', data, metadata: { actor: EXECUTOR } }],
    'any',
  )
}

const allowedAndStarted = async (step: string): Promise<{ p: Submitted; executionId: string }> => {
  const p = await propose('agent-1', step)
  const verdict = await verdictOf(p.proposalId)
  assert.equal(verdict.decision, 'allow', `${step} is allowed`)
  return { p, executionId: await startExecution(p, verdict.verdictId) }
}

const recordedAt = (body: { events: StoredEvent[] }, type: string): string => {
  const event = body.events.find((e) => e.type === type)
  assert.ok(event, `${type} was appended`)
  return event.recordedAt
}

before(async () => {
  api = await startTestApi()
  await seedWorld(api)

  const staleBlocked = await propose('agent-1', 'stale', 'v0')
  assert.equal((await verdictOf(staleBlocked.proposalId)).decision, 'block')
  const authorityBlocked = await propose('agent-2', 'unearned')
  assert.equal((await verdictOf(authorityBlocked.proposalId)).decision, 'block')
  await ranWithoutAllow(authorityBlocked)

  const unrecovered = await allowedAndStarted('left-broken')
  await created(
    'failure',
    executor().post(
      `/v1/proposals/${unrecovered.p.proposalId}/executions/${unrecovered.executionId}/failure`,
      {
        error: 'pods crash-looping',
        resourceVersionAfter: 'v1-broken',
      },
    ),
  )

  const succeeded = await allowedAndStarted('fine')
  await created(
    'success',
    executor().post(`/v1/proposals/${succeeded.p.proposalId}/executions/${succeeded.executionId}/success`, {
      resourceVersionAfter: 'v2',
    }),
  )

  const recovered = await allowedAndStarted('undone')
  const failed = await created(
    'failure',
    executor().post(`/v1/proposals/${recovered.p.proposalId}/executions/${recovered.executionId}/failure`, {
      error: 'latency doubled',
      resourceVersionAfter: 'v3-bad',
    }),
  )
  const rollback = await created(
    'rollback start',
    executor().post(`/v1/proposals/${recovered.p.proposalId}/rollbacks`, {
      executionId: recovered.executionId,
    }),
  )
  // a recovery that takes a measurable time, so its percentiles are not all zero
  await sleep(1100)
  const completed = await created(
    'rollback completion',
    executor().post(
      `/v1/proposals/${recovered.p.proposalId}/rollbacks/${String(rollback.rollbackId)}/completion`,
      {
        resourceVersionAfter: 'v3-restored',
      },
    ),
  )
  await api.settle()

  const recoveryFailedAt = recordedAt(failed, 'ExecutionFailed')
  const recoveryCompletedAt = recordedAt(completed, 'RollbackCompleted')
  history = {
    staleBlocked,
    authorityBlocked,
    succeeded: succeeded.p,
    recovered: recovered.p,
    unrecovered: unrecovered.p,
    recoveryFailedAt,
    recoveryCompletedAt,
    recoverySeconds: (Date.parse(recoveryCompletedAt) - Date.parse(recoveryFailedAt)) / 1000,
    proposalsSubmitted: 5,
  }
})

after(async () => {
  await api?.close()
})

const auditor = () => api.as('auditor-1', 'auditor')

const json = async (url: string, as = auditor()) => {
  const r = await as.get(url)
  assert.equal(r.statusCode, 200, `${url}: ${r.body}`)
  return r.json()
}

// ---------- open actions ----------

interface OpenAction {
  readonly proposalId: string
  readonly state: string
  readonly since: string
  readonly ageSeconds: number
  readonly verdict: { readonly failedChecks: readonly string[] } | null
  readonly error?: string
  readonly rollback?: string
}

test('open actions: what is still in flight, each in its state with an age', async () => {
  const { actions, next }: { actions: OpenAction[]; next: string | null } = await json(
    '/v1/open-actions',
    api.as('approver-1', 'approver'),
  )
  const byId = new Map(actions.map((a) => [a.proposalId, a]))
  assert.equal(actions.length, 3, 'the succeeded and the recovered actions have left')
  assert.equal(next, null)
  assert.equal(byId.has(history.succeeded.proposalId), false)
  assert.equal(byId.has(history.recovered.proposalId), false)
  assert.deepEqual(
    {
      stale: byId.get(history.staleBlocked.proposalId)?.state,
      violation: byId.get(history.authorityBlocked.proposalId)?.state,
      unrecovered: byId.get(history.unrecovered.proposalId)?.state,
    },
    { stale: 'awaiting-evidence', violation: 'executing', unrecovered: 'failed' },
  )
  assert.deepEqual(byId.get(history.staleBlocked.proposalId)?.verdict?.failedChecks, ['freshState'])
  const failed = byId.get(history.unrecovered.proposalId)
  assert.ok(failed)
  assert.equal(failed.error, 'pods crash-looping')
  assert.equal(failed.rollback, 'none')
  // it failed before the one-second rollback of another action, so it is at least a second old
  assert.ok(failed.ageSeconds >= 1, `age ${failed.ageSeconds}`)
  for (const a of actions) {
    assert.ok(Number.isInteger(a.ageSeconds) && a.ageSeconds >= 0)
    assert.ok(a.ageSeconds <= (Date.now() - Date.parse(a.since)) / 1000 + 1)
  }
})

test('open actions: filters by state, agent and environment', async () => {
  const ids = async (query: string) =>
    (await json(`/v1/open-actions?${query}`, api.as(EXECUTOR, 'executor'))).actions.map(
      (a: { proposalId: string }) => a.proposalId,
    )
  assert.deepEqual(await ids('state=failed'), [history.unrecovered.proposalId])
  assert.deepEqual(await ids('state=executing'), [history.authorityBlocked.proposalId])
  assert.deepEqual(await ids('agentId=agent-2'), [history.authorityBlocked.proposalId])
  assert.deepEqual(await ids('state=failed&agentId=agent-2'), [])
  assert.equal((await ids('environment=production')).length, 3)
  assert.deepEqual(await ids('environment=staging'), [])
})

test('open actions: pages follow one another without gaps or repeats', async () => {
  const all = (await json('/v1/open-actions')).actions.map((a: { proposalId: string }) => a.proposalId)
  const seen: string[] = []
  let cursor: string | null = null
  for (let pages = 0; pages < 10; pages += 1) {
    const page: { actions: Array<{ proposalId: string }>; next: string | null } = await json(
      `/v1/open-actions?limit=1${cursor === null ? '' : `&after=${cursor}`}`,
    )
    assert.ok(page.actions.length <= 1)
    seen.push(...page.actions.map((a) => a.proposalId))
    cursor = page.next
    if (cursor === null) break
  }
  assert.deepEqual(seen, all)
  assert.equal(seen.length, 3)
})

// ---------- headline metrics ----------

const hourAgo = () => new Date(Date.now() - 3_600_000).toISOString()

test('headline metrics: unsafe actions blocked, by how, agent, tool, environment and impact', async () => {
  const body = await json(`/v1/metrics/headline?window=hour&from=${hourAgo()}`)
  const { totals } = body
  // the start the gate refused is the one unsafe action blocked; the stale proposal is still open, awaiting evidence
  assert.deepEqual(totals.unsafeBlocked, {
    count: 1,
    byHow: { 'refused-at-gate': 1 },
    byEnd: {},
    byCheck: {},
    byAgent: { 'agent-2': 1 },
    byTool: { cache: 1 },
    byEnvironment: { production: 1 },
    byImpact: { low: 1 },
  })
  assert.deepEqual(body.awaitingEvidence, {
    count: 1,
    byCheck: { freshState: 1 },
    byEnvironment: { production: 1 },
  })
  assert.equal(totals.allowed, 3)
  assert.equal(totals.blockedVerdicts, 2)
  assert.equal(totals.verdicts, 5)
  // four executions (one outside the gate, after its refused start) and the refused start
  assert.deepEqual(totals.actionsEnded, { count: 5, byEnd: { executed: 4, 'refused-at-gate': 1 } })
  assert.equal(totals.unsafeRate, 1 / 5)
  assert.equal(totals.failedDespiteAllow, 2)
  assert.deepEqual(totals.violations, { count: 1, byKind: { 'no-verdict': 1 }, byAgent: { 'agent-2': 1 } })
  assert.deepEqual(totals.refusedAtGate, {
    count: 1,
    byRule: { citesLiveAllow: 1 },
    byAgent: { 'agent-2': 1 },
    byTool: { cache: 1 },
    byEnvironment: { production: 1 },
  })
  // from an hour ago to now: the previous hour window and this one, adding up to the totals
  assert.equal(body.series.length, 2)
  for (const w of body.series) assert.equal(Date.parse(w.end) - Date.parse(w.start), 3_600_000)
  const sum = (f: (w: { unsafeBlocked: { count: number }; verdicts: number }) => number) =>
    body.series.reduce((n: number, w: never) => n + f(w), 0)
  assert.equal(
    sum((w) => w.unsafeBlocked.count),
    1,
  )
  assert.equal(
    sum((w) => w.verdicts),
    5,
  )
})

test('headline metrics: time to recovery and the unrecovered failures with their age', async () => {
  const body = await json(`/v1/metrics/headline?window=day&from=${hourAgo()}`)
  const expected = {
    count: 1,
    p50: history.recoverySeconds,
    p90: history.recoverySeconds,
    max: history.recoverySeconds,
  }
  assert.ok(history.recoverySeconds >= 1.1, `recovery took ${history.recoverySeconds} s`)
  assert.deepEqual(body.totals.timeToRecovery.overall, expected)
  assert.deepEqual(body.totals.timeToRecovery.byAgent, { 'agent-1': expected })
  assert.deepEqual(body.totals.timeToRecovery.byTool, { cache: expected })
  assert.deepEqual(body.totals.timeToRecovery.byEnvironment, { production: expected })
  const [failure, ...others] = body.unrecoveredFailures
  assert.equal(others.length, 0)
  assert.equal(failure.proposalId, history.unrecovered.proposalId)
  assert.equal(failure.error, 'pods crash-looping')
  assert.equal(failure.recoveryOverdue, false)
  assert.ok(failure.ageSeconds >= 1, `age ${failure.ageSeconds}`)
  assert.equal(body.window, 'day')
  assert.equal(body.asOf, await api.head())
})

test('headline metrics: defaults to the last 24 hour windows and the last 30 days', async () => {
  const hours = await json('/v1/metrics/headline')
  assert.equal(hours.window, 'hour')
  assert.equal(hours.series.length, 24)
  assert.ok(Date.parse(hours.series.at(-1).end) > Date.now())
  assert.equal(hours.totals.unsafeBlocked.count, 1)
  const days = await json('/v1/metrics/headline?window=day', api.as('admin', 'policy-admin'))
  assert.equal(days.series.length, 30)
  assert.equal(days.totals.verdicts, 5)
})

test('headline metrics: a range before any event is all zeros, one window per hour', async () => {
  const body = await json('/v1/metrics/headline?from=2020-01-01T00:00:00Z&to=2020-01-01T05:30:00Z')
  assert.equal(body.series.length, 6)
  assert.equal(body.series[0].start, '2020-01-01T00:00:00.000Z')
  assert.equal(body.series[5].end, '2020-01-01T06:00:00.000Z')
  assert.equal(body.totals.verdicts, 0)
  assert.equal(body.totals.unsafeRate, null)
  assert.deepEqual(body.totals.timeToRecovery.overall, { count: 0, p50: null, p90: null, max: null })
})

// ---------- Prometheus ----------

/** `name{labels}` -> value, labels in the order printed; comments skipped. */
const parseExposition = (text: string): Map<string, number> => {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-z_:][a-z0-9_:]*(?:\{.*\})?) (\S+)$/i.exec(line)
    assert.ok(match?.[1] && match[2], `an exposition line: ${line}`)
    samples.set(match[1], Number(match[2]))
  }
  return samples
}

test('prometheus: the headline series and the ledger gauges', async () => {
  const r = await auditor().get('/metrics')
  assert.equal(r.statusCode, 200, r.body)
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  const s = parseExposition(r.body)
  const expected: Record<string, number> = {
    'governance_unsafe_actions_blocked_total{how="refused-at-gate"}': 1,
    'governance_unsafe_actions_blocked_total{how="ended-blocked"}': 0,
    'governance_unsafe_actions_blocked_by_agent_total{agent="agent-2"}': 1,
    'governance_unsafe_actions_blocked_by_tool_total{tool="cache"}': 1,
    'governance_unsafe_actions_blocked_by_environment_total{environment="production"}': 1,
    'governance_unsafe_actions_blocked_by_impact_total{impact="low"}': 1,
    'governance_unsafe_actions_blocked_by_impact_total{impact="high"}': 0,
    'governance_unsafe_actions_blocked_failed_checks_total{check="freshState"}': 0,
    'governance_actions_ended_total{end="executed"}': 4,
    'governance_actions_ended_total{end="refused-at-gate"}': 1,
    governance_actions_awaiting_evidence: 1,
    'governance_verdicts_total{decision="allow"}': 3,
    'governance_verdicts_total{decision="block"}': 2,
    'governance_violations_total{kind="no-verdict"}': 1,
    'governance_violations_total{kind="revoked"}': 0,
    governance_executions_refused_total: 1,
    'governance_execution_refusal_rules_total{rule="citesLiveAllow"}': 1,
    'governance_execution_refusal_rules_total{rule="noKillSwitchEngaged"}': 0,
    governance_executions_failed_despite_allow: 2,
    governance_time_to_recovery_seconds_sum: history.recoverySeconds,
    governance_time_to_recovery_seconds_count: 1,
    'governance_time_to_recovery_seconds_bucket{le="1"}': 0,
    'governance_time_to_recovery_seconds_bucket{le="86400"}': 1,
    'governance_time_to_recovery_seconds_bucket{le="+Inf"}': 1,
    governance_faults: 0,
    governance_unrecovered_failures: 1,
    governance_ledger_head_position: await api.head(),
    governance_decision_lag_events: 0,
    'governance_http_requests_total{method="POST",route="/v1/proposals",status="201"}':
      history.proposalsSubmitted,
    'governance_http_requests_total{method="POST",route="/v1/proposals/:proposalId/rollbacks",status="201"}': 1,
  }
  for (const [series, value] of Object.entries(expected)) {
    assert.equal(s.get(series), value, series)
  }
  assert.match(r.body, /# TYPE governance_http_requests_total counter/)
  assert.match(r.body, /# TYPE governance_unsafe_actions_blocked_total counter/)
  assert.match(r.body, /# TYPE governance_time_to_recovery_seconds histogram/)
  promtoolAccepts(r.body)
  // the process's own series, for the operator
  assert.ok((s.get('process_resident_memory_bytes') ?? 0) > 10 * 2 ** 20, 'resident memory is reported')
  assert.match(r.body, /# TYPE nodejs_heap_size_used_bytes gauge/)
})

// ---------- audit ----------

test('audit of an action: what changed, who, how fast it was undone, and the ledger timeline', async () => {
  const { proposalId, planHash, actionDigest } = history.recovered
  const body = await json(`/v1/audit/actions/${proposalId}`, api.as('admin', 'policy-admin'))
  assert.deepEqual(body.what, {
    tool: 'cache',
    action: 'flush',
    resource: RESOURCE,
    environment: 'production',
    plan: { step: 'undone' },
    planHash,
    actionDigest,
    resourceVersionBefore: 'v1',
    resourceVersionAfter: 'v3-restored',
  })
  assert.equal(body.who.agentId, 'agent-1')
  assert.equal(body.who.executingIdentity, SEED.executingIdentity)
  assert.equal(body.who.executor, EXECUTOR)
  assert.equal(body.who.policyVersion, 1)
  assert.equal(body.who.policyOwner, 'platform-risk', 'the accountable team the policy names')
  assert.deepEqual(body.howFast, {
    rollbackExpectedSeconds: null,
    failedAt: history.recoveryFailedAt,
    recoveredAt: history.recoveryCompletedAt,
    timeToRecoverySeconds: history.recoverySeconds,
  })
  assert.equal(body.currentVerdict.decision, 'allow')
  const checks = Object.fromEntries(
    body.currentVerdict.checks.map((c: { check: string; status: string }) => [c.check, c.status]),
  )
  assert.equal(checks.scopedPermission, 'pass')
  assert.equal(checks.freshState, 'pass')
  assert.equal(checks.rollback, 'not-required')
  for (const c of body.currentVerdict.checks) assert.ok(c.reason.length > 0)

  const ledger = await api.runtime.store.readStream(streams.proposal(proposalId))
  assert.deepEqual(
    body.timeline.map((e: { eventId: string; hash: string; position: number; type: string }) => [
      e.eventId,
      e.hash,
      e.position,
      e.type,
    ]),
    ledger.map((e) => [e.id, e.hash, e.position, e.type]),
  )
  assert.deepEqual(
    ledger.map((e) => e.type),
    [
      'ProposalSubmitted',
      'VerdictIssued',
      'ExecutionStarted',
      'ExecutionFailed',
      'RollbackStarted',
      'RollbackCompleted',
    ],
  )
})

test('audit of an action: its current verdict, read from the latest verdict on, is the one its whole stream tells', async () => {
  const submitted = (await api.runtime.store.readAll(0, 100_000)).filter(
    (e) => e.type === 'ProposalSubmitted',
  )
  assert.ok(submitted.length > 3)
  for (const { data } of submitted) {
    const { proposalId } = data as { proposalId: string }
    const body = await json(`/v1/audit/actions/${proposalId}`)
    const whole = await currentVerdict(api.runtime.store, proposalId)
    const seen = (v: { verdictId: string; revision: number; revoked: boolean; expired: boolean } | null) =>
      v && [v.verdictId, v.revision, v.revoked, v.expired]
    assert.deepEqual(seen(body.currentVerdict), seen(whole), proposalId)
  }
})

test('audit of an agent: its authority and its proposals, one line each', async () => {
  const agent1 = await json('/v1/audit/agents/agent-1')
  assert.equal(agent1.owner, 'platform-team')
  assert.equal(agent1.levels.production.level, 'execute')
  assert.equal(agent1.total, 4)
  assert.deepEqual(
    agent1.proposals.map((p: { proposalId: string; outcome: string }) => [p.proposalId, p.outcome]),
    [
      [history.staleBlocked.proposalId, 'blocked'],
      [history.unrecovered.proposalId, 'failed'],
      [history.succeeded.proposalId, 'succeeded'],
      [history.recovered.proposalId, 'recovered'],
    ],
  )
  const recovered = agent1.proposals[3]
  assert.equal(recovered.timeToRecoverySeconds, history.recoverySeconds)
  assert.equal(
    recovered.summary,
    `agent-1 cache.flush on ${RESOURCE} in production: recovered, recovered in ${history.recoverySeconds} s`,
  )

  const agent2 = await json('/v1/audit/agents/agent-2')
  // the violation demoted it one rung, from recommend
  assert.equal(agent2.levels.production.level, 'observe')
  assert.equal(agent2.levels.production.cause, 'demotion')
  assert.equal(agent2.levels.production.demotionCause, 'violation')
  assert.equal(agent2.proposals.length, 1)
  assert.equal(agent2.proposals[0].violation, true)
  assert.equal(agent2.proposals[0].outcome, 'executing')
  assert.match(agent2.proposals[0].summary, /\(violation\)/)
})

test('audit of an agent: proposals page with after and limit', async () => {
  const first = await json('/v1/audit/agents/agent-1?limit=3')
  assert.equal(first.proposals.length, 3)
  assert.equal(first.next, history.succeeded.proposalId)
  const rest = await json(`/v1/audit/agents/agent-1?limit=3&after=${first.next}`)
  assert.deepEqual(
    rest.proposals.map((p: { proposalId: string }) => p.proposalId),
    [history.recovered.proposalId],
  )
  assert.equal(rest.next, null)
})

test('audit of a resource: its last observation and every proposal that touched it', async () => {
  const body = await json(`/v1/audit/resources/production/${encodeURIComponent(RESOURCE)}`)
  assert.equal(body.resource, RESOURCE)
  assert.equal(body.lastObservation.version, 'v1')
  assert.equal(body.total, 5)
  assert.deepEqual(
    body.proposals.map((p: { outcome: string }) => p.outcome),
    ['blocked', 'executing', 'failed', 'succeeded', 'recovered'],
  )
  // one convention on every route: the resource is one percent-encoded segment, never a path of its own
  assert.match(RESOURCE, /\//)
  expectError(await auditor().get(`/v1/audit/resources/production/${RESOURCE}`), 404, 'not-found')
})

// ---------- ledger ----------

test('ledger: the chain verifies up to the head, and every consumer has caught up', async () => {
  const head = await api.runtime.store.head()
  const verify = await json('/v1/ledger/verify')
  assert.deepEqual(verify, { ok: true, checked: head.position, head, firstFault: null })
  const body = await json('/v1/ledger/head', api.as('admin', 'policy-admin'))
  assert.equal(body.position, head.position)
  assert.equal(body.hash, head.hash)
  assert.deepEqual(body.decision, { position: head.position, lag: 0 })
  assert.deepEqual(Object.keys(body.views).sort(), [
    'audit',
    'authority',
    'metrics',
    'open-actions',
    'survival',
  ])
  for (const view of Object.values(body.views)) assert.deepEqual(view, { position: head.position, lag: 0 })
  assert.deepEqual(body.tree, { position: head.position, lag: 0 })
})

// ---------- who may read, and bad input ----------

const READ_ROUTES: ReadonlyArray<{ url: string; allowed: readonly Role[]; denied: Role }> = [
  { url: '/v1/open-actions', allowed: ['auditor', 'policy-admin', 'approver', 'executor'], denied: 'agent' },
  { url: '/v1/metrics/headline', allowed: ['auditor', 'policy-admin'], denied: 'executor' },
  { url: '/v1/survival', allowed: ['auditor', 'policy-admin'], denied: 'simulator' },
  { url: '/v1/audit/actions/{proposal}', allowed: ['auditor', 'policy-admin'], denied: 'approver' },
  { url: '/v1/audit/agents/agent-1', allowed: ['auditor', 'policy-admin'], denied: 'agent' },
  {
    url: `/v1/audit/resources/production/${encodeURIComponent(RESOURCE)}`,
    allowed: ['auditor', 'policy-admin'],
    denied: 'observer',
  },
  { url: '/v1/ledger/verify', allowed: ['auditor', 'policy-admin'], denied: 'simulator' },
  { url: '/v1/ledger/head', allowed: ['auditor', 'policy-admin'], denied: 'executor' },
  { url: '/v1/ledger/tree', allowed: ['auditor', 'policy-admin'], denied: 'executor' },
  { url: '/v1/ledger/proofs/inclusion?position=1', allowed: ['auditor', 'policy-admin'], denied: 'agent' },
  { url: '/v1/ledger/proofs/consistency?from=1', allowed: ['auditor', 'policy-admin'], denied: 'approver' },
  { url: '/metrics', allowed: ['auditor', 'policy-admin'], denied: 'agent' },
  {
    url: '/v1/proposals/{proposal}',
    allowed: ['approver', 'simulator', 'executor', 'policy-admin', 'auditor'],
    denied: 'observer',
  },
  {
    url: '/v1/proposals/{proposal}/verdict',
    allowed: ['approver', 'simulator', 'executor', 'policy-admin', 'auditor'],
    denied: 'observer',
  },
  {
    url: `/v1/grants?identity=${SEED.executingIdentity}`,
    allowed: ['policy-admin', 'auditor'],
    denied: 'agent',
  },
  { url: '/v1/agents/agent-1', allowed: ['policy-admin', 'auditor'], denied: 'executor' },
  {
    url: '/v1/agents/agent-1/track-record?environment=production',
    allowed: ['policy-admin', 'auditor'],
    denied: 'approver',
  },
]

test('every read route: 401 without a token, 403 for a role it does not serve, 200 for each it does', async () => {
  for (const route of READ_ROUTES) {
    const url = route.url.replace('{proposal}', history.recovered.proposalId)
    const anonymous = await api.app.inject({ method: 'GET', url })
    assert.equal(anonymous.statusCode, 401, url)
    assert.equal(anonymous.json().error, 'unauthenticated')
    const denied = await api.as('someone', route.denied).get(url)
    assert.equal(denied.statusCode, 403, `${url} as ${route.denied}`)
    assert.equal(denied.json().error, 'forbidden')
    for (const role of route.allowed) {
      assert.equal((await api.as('someone', role).get(url)).statusCode, 200, `${url} as ${role}`)
    }
  }
})

test('a proposal is read by its own agent and the roles acting on it; another agent gets 403 and no plan', async () => {
  const { proposalId } = history.succeeded
  const urls = [
    `/v1/proposals/${proposalId}`,
    `/v1/proposals/${proposalId}/verdict`,
    `/v1/proposals/${proposalId}/verdict?wait=5&afterRevision=99`,
  ]
  for (const url of urls) {
    const own = await api.as('agent-1', 'agent').get(url)
    assert.equal(own.statusCode, 200, `${url}: ${own.body}`)
    const started = Date.now()
    const other = await api.as('agent-2', 'agent').get(url)
    const error = expectError(other, 403, 'forbidden')
    assert.match(error.message, /only its own proposals/)
    assert.doesNotMatch(other.body, /planHash|"step"|fine/, 'nothing of the proposal in the refusal')
    assert.ok(Date.now() - started < 2000, 'refused at once, not after the wait')
    // the same subject with a role that acts on proposals reads it
    for (const role of ['approver', 'simulator', 'executor', 'policy-admin', 'auditor'] as const) {
      const r = await api.as('agent-2', role).get(url.replace('wait=5', 'wait=0'))
      assert.equal(r.statusCode, 200, `${url} as ${role}: ${r.body}`)
    }
  }
  const read = await auditor().get(`/v1/proposals/${proposalId}`)
  assert.deepEqual(read.json().proposal.plan, { step: 'fine' })
  assert.equal(read.json().proposal.agentId, 'agent-1')
  // an unknown proposal is a 404 for its readers, another agent's a 403 whatever its state
  expectError(await auditor().get('/v1/proposals/no-such-proposal'), 404, 'not-found')
  expectError(
    await api.as('agent-2', 'agent').get(`/v1/proposals/${history.unrecovered.proposalId}`),
    403,
    'forbidden',
  )
})

test('an agent reads neither grants nor audit trails nor the ledger (403)', async () => {
  const agent = api.as('agent-1', 'agent')
  for (const url of [
    `/v1/grants?identity=${SEED.executingIdentity}`,
    `/v1/audit/actions/${history.succeeded.proposalId}`,
    '/v1/audit/agents/agent-1',
    `/v1/audit/resources/production/${encodeURIComponent(RESOURCE)}`,
    '/v1/ledger/verify',
    '/v1/ledger/head',
    '/v1/metrics/headline',
    '/v1/open-actions',
  ]) {
    expectError(await agent.get(url), 403, 'forbidden')
  }
})

test('unknown ids answer 404 in the one error shape', async () => {
  for (const url of [
    '/v1/audit/actions/no-such-proposal',
    '/v1/audit/agents/no-such-agent',
    '/v1/audit/resources/production/no%2Fsuch%2Fresource',
    '/v1/audit/resources/staging/deployment%2Fweb',
  ]) {
    const r = await auditor().get(url)
    assert.equal(r.statusCode, 404, url)
    assert.deepEqual(Object.keys(r.json()).sort(), ['details', 'error', 'message'])
    assert.equal(r.json().error, 'not-found')
  }
})

test('bad query values answer 400 naming the field, and append nothing', async () => {
  const headBefore = await api.head()
  const cases: ReadonlyArray<[string, string]> = [
    ['/v1/open-actions?state=sleeping', 'querystring.state'],
    ['/v1/open-actions?limit=0', 'querystring.limit'],
    ['/v1/open-actions?limit=1001', 'querystring.limit'],
    ['/v1/open-actions?limit=ten', 'querystring.limit'],
    ['/v1/open-actions?environment=Prod%20EU', 'querystring.environment'],
    ['/v1/open-actions?colour=red', 'querystring'],
    ['/v1/metrics/headline?window=week', 'querystring.window'],
    ['/v1/metrics/headline?from=yesterday', 'querystring.from'],
    ['/v1/metrics/headline?to=2026-13-01T00:00:00Z', 'querystring.to'],
    ['/v1/metrics/headline?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'querystring.from'],
    [
      '/v1/metrics/headline?window=hour&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z',
      'querystring.from',
    ],
    ['/v1/audit/agents/agent-1?after=not-one-of-its-proposals', 'querystring.after'],
    ['/v1/audit/agents/agent-1?limit=-1', 'querystring.limit'],
    ['/v1/audit/actions/%20bad%20id', 'params.proposalId'],
    ['/v1/audit/resources/PRODUCTION/deployment%2Fweb', 'params.environment'],
  ]
  for (const [url, field] of cases) {
    const r = await auditor().get(url)
    assert.equal(r.statusCode, 400, `${url}: ${r.body}`)
    const body = r.json()
    assert.equal(body.error, 'invalid', url)
    const fields = body.details.fields.map((f: { field: string }) => f.field)
    assert.ok(
      fields.some(
        (f: string) =>
          f === field || f.startsWith(`${field}.`) || (field === 'querystring' && f.startsWith(field)),
      ),
      `${url} names ${field}: ${fields.join(', ')}`,
    )
  }
  assert.equal(await api.head(), headBefore)
})
