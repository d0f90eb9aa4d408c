// The headline metric means what it says: a proposal blocked until its evidence arrives and then executed is
// no unsafe action blocked; one that ends without executing while blocked is, and so is a start the gate
// refused. Driven through the API, read back through the HTTP answer, the Prometheus series and the CLI.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { metricsCommand } from '../../src/cli/commands/metrics.js'
import { appendDueNotices } from '../../src/decision/scheduler.js'
import { AgentClient } from '../../src/sdk/index.js'
import { SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'
import { promtoolFound } from '../support/promtool.js'

let api: TestApi

const agent = () => api.as('agent-1', 'agent')
const executor = () => api.as(SEED.executor, 'executor')

interface Submitted {
  readonly proposalId: string
  readonly actionDigest: string
}

const propose = async (step: string, snapshot: string, agentId = 'agent-1'): Promise<Submitted> => {
  const r = await api.as(agentId, 'agent').post('/v1/proposals', {
    agentId,
    executingIdentity: SEED.executingIdentity,
    tool: 'cache',
    action: 'flush',
    resource: SEED.resource,
    environment: 'production',
    plan: { step },
    expectedImpact: 'low',
    snapshot: { version: snapshot },
  })
  assert.equal(r.statusCode, 201, r.body)
  return r.json()
}

const verdictOf = async (p: Submitted) => {
  await api.settle()
  const r = await api.as('auditor-1', 'auditor').get(`/v1/proposals/${p.proposalId}/verdict`)
  assert.equal(r.statusCode, 200, r.body)
  return (r.json() as { verdict: { verdictId: string; decision: string } }).verdict
}

const observe = async (version: string) => {
  const r = await api.as(SEED.observer, 'observer').post('/v1/observations', {
    environment: 'production',
    resource: SEED.resource,
    version,
    digest: `sha256:web-${version}`,
    observedAt: new Date().toISOString(),
  })
  assert.equal(r.statusCode, 201, r.body)
}

interface Headline {
  totals: {
    blockedVerdicts: number
    failedDespiteAllow: number
    actionsEnded: { count: number; byEnd: Record<string, number> }
    unsafeBlocked: {
      count: number
      byHow: Record<string, number>
      byEnd: Record<string, number>
      byCheck: Record<string, number>
      byAgent: Record<string, number>
    }
    unsafeRate: number | null
  }
  awaitingEvidence: { count: number; byCheck: Record<string, number> }
}

const headline = async (): Promise<Headline> => {
  await api.settle()
  const r = await api.as('auditor-1', 'auditor').get('/v1/metrics/headline?window=day')
  assert.equal(r.statusCode, 200, r.body)
  return r.json()
}

const scrapeText = async (): Promise<string> => {
  await api.settle()
  const r = await api.as('auditor-1', 'auditor').get('/metrics')
  assert.equal(r.statusCode, 200, r.body)
  return r.body
}

/** `name{labels}` -> value of one scrape. */
const scrape = async (): Promise<Map<string, number>> => {
  const samples = new Map<string, number>()
  for (const line of (await scrapeText()).split('\n')) {
    const match = /^([a-z_:][a-z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line)
    if (match?.[1] && match[2]) samples.set(match[1], Number(match[2]))
  }
  return samples
}

const sumOf = (samples: Map<string, number>, family: string): number =>
  [...samples].filter(([name]) => name.split('{')[0] === family).reduce((n, [, v]) => n + v, 0)

const cliTotals = async () => {
  const outcome = await metricsCommand(
    api.runtime.config,
    { window: 'day', from: undefined, to: undefined },
    { env: {}, stderr: process.stderr, now: () => new Date() },
  )
  return outcome
}

before(async () => {
  api = await startTestApi()
  await seedWorld(api)
})

after(async () => {
  await api?.close()
})

describe('headline metrics', () => {
  it('counts 0 unsafe actions blocked when every action is blocked until its evidence arrives, then allowed and executed', async () => {
    // the proposals name a version of the resource nobody has observed yet: each is blocked on fresh state
    const proposals = [await propose('a', 'v2'), await propose('b', 'v2'), await propose('c', 'v2')]
    for (const p of proposals) assert.equal((await verdictOf(p)).decision, 'block')
    assert.equal((await headline()).awaitingEvidence.count, 3, 'blocked and open: awaiting evidence')
    assert.equal((await headline()).totals.unsafeBlocked.count, 0, 'awaiting evidence is not blocked')

    await observe('v2')
    for (const p of proposals) {
      const verdict = await verdictOf(p)
      assert.equal(verdict.decision, 'allow', 'the evidence arrived')
      const r = await executor().post(`/v1/proposals/${p.proposalId}/executions`, {
        verdictId: verdict.verdictId,
        actionDigest: p.actionDigest,
      })
      assert.equal(r.statusCode, 201, r.body)
    }

    const { totals, awaitingEvidence } = await headline()
    assert.equal(totals.blockedVerdicts, 3, 'the blocks are verdicts, counted as such')
    assert.equal(totals.unsafeBlocked.count, 0)
    assert.deepEqual(totals.actionsEnded, { count: 3, byEnd: { executed: 3 } })
    assert.equal(totals.unsafeRate, 0)
    assert.equal(awaitingEvidence.count, 0)

    const s = await scrape()
    assert.equal(sumOf(s, 'governance_unsafe_actions_blocked_total'), 0)
    assert.equal(
      s.get('governance_unsafe_actions_blocked_total{how="refused-at-gate"}'),
      0,
      'zero is a sample',
    )
    assert.equal(s.get('governance_unsafe_actions_blocked_total{how="ended-blocked"}'), 0)
    assert.equal(s.get('governance_actions_ended_total{end="executed"}'), 3)
    assert.equal(s.get('governance_verdicts_total{decision="block"}'), 3)
    assert.equal(s.get('governance_actions_awaiting_evidence'), 0)

    const cli = await cliTotals()
    assert.match(cli.text, /unsafe actions blocked\s+0 of 3 ended \(0(\.0)?%\)/)
  })

  it('refuses to call a withdrawal superseded by another agent’s proposal, an unknown one or itself', async () => {
    const mine = await propose('d', 'v3')
    const theirs = await propose('e', 'v3', 'agent-2')
    const refusals: string[] = []
    for (const [supersededBy, message] of [
      [theirs.proposalId, `proposal ${theirs.proposalId} is not a proposal of agent-1`],
      ['no-such-proposal', 'proposal no-such-proposal is not a proposal of agent-1'],
      [mine.proposalId, 'a proposal cannot supersede itself'],
    ] as const) {
      const r = await agent().post(`/v1/proposals/${mine.proposalId}/withdrawal`, {
        reason: 'replaced',
        supersededBy,
      })
      assert.equal(r.statusCode, 409, r.body)
      refusals.push(r.json().message)
      assert.ok(r.json().message.endsWith(message), r.body)
    }
    // another agent's proposal is told apart from none at all by nothing but its id
    assert.doesNotMatch(refusals.join('\n'), /agent-2/)
    // both stay open, and are withdrawn plainly for the next test's count
    for (const [p, who] of [
      [mine, 'agent-1'],
      [theirs, 'agent-2'],
    ] as const) {
      const r = await api
        .as(who, 'agent')
        .post(`/v1/proposals/${p.proposalId}/withdrawal`, { reason: 'tidy' })
      assert.equal(r.statusCode, 201, r.body)
    }
    const { totals } = await headline()
    assert.deepEqual(totals.unsafeBlocked.byEnd, { withdrawn: 2 }, 'both were blocked when they ended')
  })

  it('counts proposals that end blocked (superseded, expired) and starts refused at the gate, by how', async () => {
    const before = (await headline()).totals
    const replaced = await propose('f', 'v4')
    const replacement = await propose('g', 'v4')
    const abandoned = await propose('h', 'v4')
    assert.equal((await verdictOf(replaced)).decision, 'block')
    // through the SDK, as an agent would
    const sdk = new AgentClient({
      baseUrl: 'http://service.test',
      agentId: 'agent-1',
      token: await api.tokenFor('agent-1', 'agent'),
      fetch: api.fetch,
    })
    await sdk.withdraw(replaced.proposalId, 'a better plan', { supersededBy: replacement.proposalId })
    assert.equal((await headline()).awaitingEvidence.count, 2)

    // the policy's time limit on open proposals passes: the scheduler's notices, a week ahead
    const weekAhead = new Date(Date.now() + 8 * 86_400_000)
    const deadlines = api.runtime.decision.world().deadlines(weekAhead.toISOString())
    assert.deepEqual(
      Object.keys(deadlines.proposals).sort(),
      [replacement.proposalId, abandoned.proposalId].sort(),
    )
    assert.equal(await appendDueNotices(api.runtime.store, deadlines, weekAhead), 2)
    assert.equal(await appendDueNotices(api.runtime.store, deadlines, weekAhead), 0, 'each notice once')

    // a start on an expired proposal is refused at the gate, and recorded
    const verdict = await verdictOf(abandoned)
    const refused = await executor().post(`/v1/proposals/${abandoned.proposalId}/executions`, {
      verdictId: verdict.verdictId,
      actionDigest: abandoned.actionDigest,
    })
    assert.equal(refused.statusCode, 409, refused.body)

    const { totals, awaitingEvidence } = await headline()
    assert.equal(awaitingEvidence.count, 0)
    const u = totals.unsafeBlocked
    assert.equal(u.count - before.unsafeBlocked.count, 4)
    assert.deepEqual(u.byHow, { 'ended-blocked': 5, 'refused-at-gate': 1 })
    assert.deepEqual(u.byEnd, { withdrawn: 2, superseded: 1, expired: 2 })
    assert.equal(u.byCheck.freshState, 5, 'each ended blocked on fresh state')
    assert.deepEqual(totals.actionsEnded.byEnd, {
      executed: 3,
      withdrawn: 2,
      superseded: 1,
      expired: 2,
      'refused-at-gate': 1,
    })
    assert.equal(totals.unsafeRate, 6 / 9)

    const s = await scrape()
    assert.equal(sumOf(s, 'governance_unsafe_actions_blocked_total'), 6)
    for (const by of ['agent', 'tool', 'environment', 'impact']) {
      assert.equal(
        sumOf(s, `governance_unsafe_actions_blocked_by_${by}_total`),
        6,
        `by ${by} sums to the total`,
      )
    }
    assert.equal(sumOf(s, 'governance_actions_ended_total'), 9)
    assert.equal(s.get('governance_actions_ended_total{end="expired"}'), 2)

    const proposal = await api.as('auditor-1', 'auditor').get(`/v1/proposals/${replacement.proposalId}`)
    assert.match(proposal.body, /"status":"expired"/)
  })

  it('the Grafana dashboard asks only for series the service exports, with their labels, in valid PromQL', async () => {
    const dashboard = JSON.parse(readFileSync('dashboards/governance-ledger.json', 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>
    }
    const queries = dashboard.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
    )
    assert.ok(queries.length >= 15, `${queries.length} queries`)

    const exposition = await scrapeText()
    // every family the service declares (with a histogram's own series), and the labels its samples carry
    const labelsOf = new Map<string, Set<string>>()
    for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : ['']
      for (const suffix of suffixes) labelsOf.set(`${name}${suffix}`, new Set())
    }
    for (const line of exposition.split('\n')) {
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line)
      if (!sample?.[1]) continue
      const labels = labelsOf.get(sample[1]) ?? new Set<string>()
      for (const [, name] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g))
        labels.add(String(name))
      labelsOf.set(sample[1], labels)
    }
    const KEYWORDS = new Set([
      'by',
      'without',
      'on',
      'ignoring',
      'group_left',
      'group_right',
      'bool',
      'and',
      'or',
      'unless',
      'offset',
    ])
    for (const { panel, expr } of queries) {
      // strip ranges and strings; what is left names series, functions, keywords, grouping and matched labels
      const bare = expr.replace(/\[[^\]]*\]/g, '').replace(/"[^"]*"/g, '""')
      const grouping = [...bare.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
        String(m[1])
          .split(',')
          .map((l) => l.trim()),
      )
      const matched = [...bare.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
        [...String(m[1]).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => String(l[1])),
      )
      const names = [
        ...bare
          .replace(/\b(?:by|without)\s*\([^)]*\)/g, '')
          .replace(/\{[^}]*\}/g, '{}')
          .matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(|\{)?/g),
      ]
        .filter((m) => m[2] !== '(' && !KEYWORDS.has(String(m[1])))
        .map((m) => String(m[1]))
      assert.ok(names.length > 0, `${panel}: ${expr} names a series`)
      for (const name of names) {
        const labels = labelsOf.get(name)
        assert.ok(labels, `${panel}: ${name} is a series the service exports`)
        // the labels it groups by, where the history gave the family samples to read them from
        if (labels.size === 0) continue
        for (const label of [...grouping, ...matched])
          assert.ok(labels.has(label), `${panel}: ${name} has the label ${label}`)
      }
    }

    // several instances serve one ledger, each exporting the whole ledger's figures: summed across instances
    // they would count every action once per instance (only the process's own series add up)
    const ownPerProcess = /governance_(http_requests_total|faults|decision_lag_events|ledger_head_position)\b/
    for (const { panel, expr } of queries) {
      if (!/governance_/.test(expr) || ownPerProcess.test(expr)) continue
      assert.doesNotMatch(expr, /\bsum\b/, `${panel}: ${expr} takes the ledger's figures once, with max`)
    }

    // every query parses as PromQL: promtool checks them as recording rules
    if (!promtoolFound()) return
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-'))
    const rules = queries
      // Grafana puts a duration in place of its range variables before Prometheus reads the query
      .map(({ expr }) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1d'))
      .map((expr, i) => `      - record: dashboard_query_${i}\n        expr: ${JSON.stringify(expr)}`)
      .join('\n')
    writeFileSync(join(dir, 'rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}\n`)
    const checked = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8' })
    assert.equal(checked.status, 0, `${checked.stdout}${checked.stderr}`)
  })
})

describe('headline metrics under pressure', () => {
  it('calls a withdrawal superseded only by a standing proposal of its agent, and names no other agent', async () => {
    const mine = await propose('i', 'v5')
    const theirs = await propose('j', 'v5', 'agent-2')
    const abandoned = await propose('k', 'v5')
    const tidy = await agent().post(`/v1/proposals/${abandoned.proposalId}/withdrawal`, { reason: 'tidy' })
    assert.equal(tidy.statusCode, 201, tidy.body)

    // another agent's proposal: refused without telling who proposed it (an agent reads only its own)
    const other = await agent().post(`/v1/proposals/${mine.proposalId}/withdrawal`, {
      reason: 'replaced',
      supersededBy: theirs.proposalId,
    })
    assert.equal(other.statusCode, 409, other.body)
    assert.doesNotMatch(other.body, /agent-2/)
    // a replacement that was itself withdrawn replaces nothing
    const gone = await agent().post(`/v1/proposals/${mine.proposalId}/withdrawal`, {
      reason: 'replaced',
      supersededBy: abandoned.proposalId,
    })
    assert.equal(gone.statusCode, 409, gone.body)
    assert.match(gone.body, /withdrawn/)

    for (const [p, who] of [
      [mine, 'agent-1'],
      [theirs, 'agent-2'],
    ] as const) {
      const r = await api
        .as(who, 'agent')
        .post(`/v1/proposals/${p.proposalId}/withdrawal`, { reason: 'tidy' })
      assert.equal(r.statusCode, 201, r.body)
    }
  })

  it('leaves an action withdrawn when its expiry is noticed after the withdrawal', async () => {
    const p = await propose('l', 'v6')
    await api.settle()
    // the scheduler read its deadlines before the decision service saw the withdrawal
    const weekAhead = new Date(Date.now() + 8 * 86_400_000)
    const due = api.runtime.decision.world().deadlines(weekAhead.toISOString()).proposals[p.proposalId]
    assert.ok(due, 'the proposal has a deadline')
    const withdrawn = await agent().post(`/v1/proposals/${p.proposalId}/withdrawal`, { reason: 'tidy' })
    assert.equal(withdrawn.statusCode, 201, withdrawn.body)
    const notices = { verdicts: {}, recoveries: {}, proposals: { [p.proposalId]: due } }
    assert.equal(await appendDueNotices(api.runtime.store, notices, weekAhead), 1)
    await api.settle()

    const auditor = api.as('auditor-1', 'auditor')
    const proposal = await auditor.get(`/v1/proposals/${p.proposalId}`)
    assert.match(proposal.body, /"status":"withdrawn"/)
    const audit = await auditor.get(`/v1/audit/actions/${p.proposalId}`)
    assert.equal(audit.statusCode, 200, audit.body)
    assert.equal(audit.json().outcome, 'withdrawn', 'the story ended with the withdrawal')
  })

  it('never lowers a series typed counter: a failure despite an allow taken back by a late violation', async () => {
    const p = await propose('m', 'v2')
    const verdict = await verdictOf(p)
    assert.equal(verdict.decision, 'allow')
    const started = await executor().post(`/v1/proposals/${p.proposalId}/executions`, {
      verdictId: verdict.verdictId,
      actionDigest: p.actionDigest,
    })
    assert.equal(started.statusCode, 201, started.body)
    const { executionId } = started.json() as { executionId: string }
    const failed = await executor().post(`/v1/proposals/${p.proposalId}/executions/${executionId}/failure`, {
      error: 'pods crash-looping',
      resourceVersionAfter: 'v2-broken',
    })
    assert.equal(failed.statusCode, 201, failed.body)

    const counters = (text: string) =>
      new Set([...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => String(m[1])))
    const beforeText = await scrapeText()
    const before = await scrape()
    // the decision service's judgement of the start, appended after the failure was reported (a race the
    // projection handles by taking the failure back)
    await api.runtime.store.append(
      `proposal-${p.proposalId}`,
      [
        {
          type: 'ViolationRecorded',
          data: {
            proposalId: p.proposalId,
            executionId,
            agentId: 'agent-1',
            responsible: SEED.executor,
            verdictId: verdict.verdictId,
            kind: 'expired',
            reason: `verdict ${verdict.verdictId} expired`,
          },
          metadata: { actor: 'governance-ledger/decision' },
        },
      ],
      'any',
    )
    const afterText = await scrapeText()
    const after = await scrape()
    for (const family of counters(beforeText)) {
      if (!counters(afterText).has(family)) continue
      for (const [series, value] of before) {
        if (series.split('{')[0] !== family) continue
        assert.ok((after.get(series) ?? 0) >= value, `${series} went from ${value} to ${after.get(series)}`)
      }
    }
    assert.equal((await headline()).totals.failedDespiteAllow, 0, 'the failure was taken back')
    assert.equal(after.get('governance_executions_failed_despite_allow'), 0, 'and the gauge says so')
    assert.equal(before.get('governance_executions_failed_despite_allow'), 1)
  })
})
