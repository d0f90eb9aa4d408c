// The two headline metrics over time: unsafe actions blocked before execution (with awaiting-evidence beside
// it, never counted as blocked) and time to recovery, in hour or day windows, with their breakdowns.
import { get } from '../api.js'
import { timeChart } from '../chart.js'
import { byCount, h, link, percent, replace, seconds, stat, table, time } from '../dom.js'
import type { Page } from '../main.js'
import type { Counts, Headline, Recovery } from '../types.js'

let chosen: 'hour' | 'day' = 'hour'

const countTable = (caption: string, what: string, counts: Counts, key: string) =>
  table(
    caption,
    [what, 'count'],
    byCount(counts).map(([name, n]) => [name, n]),
    { 'data-breakdown': key },
  )

const recoveryTable = (caption: string, what: string, rows: Record<string, Recovery>, key: string) =>
  table(
    caption,
    [what, 'p50', 'p90', 'max', 'recoveries'],
    Object.entries(rows).map(([name, r]) => [name, seconds(r.p50), seconds(r.p90), seconds(r.max), r.count]),
    { 'data-breakdown': key },
  )

export const overviewPage: Page = async ({ main }) => {
  const data = await get<Headline>(`/v1/metrics/headline?window=${chosen}`)
  const { totals, awaitingEvidence: awaiting } = data
  const ttr = totals.timeToRecovery.overall
  const windowButton = (w: 'hour' | 'day', label: string) =>
    h(
      'button',
      {
        type: 'button',
        'aria-pressed': chosen === w ? 'true' : 'false',
        onclick: () => {
          chosen = w
          window.dispatchEvent(new HashChangeEvent('hashchange'))
        },
      },
      label,
    )
  const charts = h('div', { class: 'charts' })
  const first = data.series[0]?.start
  const last = data.series.at(-1)?.end
  replace(
    main,
    h('h1', {}, 'Overview'),
    h(
      'div',
      { class: 'toolbar', role: 'group', 'aria-label': 'Window' },
      windowButton('hour', 'Hourly, last 24 hours'),
      windowButton('day', 'Daily, last 30 days'),
      h(
        'span',
        { class: 'note' },
        'from ',
        time(first),
        ' to ',
        time(last),
        ` · ledger position ${data.asOf}`,
      ),
    ),
    h(
      'dl',
      { class: 'stats' },
      stat(
        'Unsafe actions blocked before execution',
        totals.unsafeBlocked.count,
        'unsafeBlocked',
        `of ${totals.actionsEnded.count} actions ended (${percent(totals.unsafeRate)})`,
      ),
      stat(
        'Awaiting evidence now',
        awaiting.count,
        'awaitingEvidence',
        'open and blocked: never counted as blocked',
      ),
      stat('Actions ended', totals.actionsEnded.count, 'actionsEnded'),
      stat('Starts refused at the gate', totals.refusedAtGate.count, 'refusedAtGate'),
      stat('Failed despite an allow', totals.failedDespiteAllow, 'failedDespiteAllow'),
      stat('Violations', totals.violations.count, 'violations'),
      stat('Time to recovery p50', seconds(ttr.p50), 'ttr.p50', `${ttr.count} recoveries`),
      stat('p90', seconds(ttr.p90), 'ttr.p90'),
      stat('max', seconds(ttr.max), 'ttr.max'),
    ),
    charts,
  )
  const times = data.series.map((w) => w.start)
  timeChart(
    charts,
    'unsafe-blocked',
    `Unsafe actions blocked before execution, per ${data.window}`,
    times,
    [
      {
        label: 'unsafe actions blocked',
        values: data.series.map((w) => w.unsafeBlocked.count),
        color: '#b3261e',
      },
      { label: 'actions ended', values: data.series.map((w) => w.actionsEnded.count), color: '#0b5cad' },
      {
        label: 'starts refused at the gate',
        values: data.series.map((w) => w.refusedAtGate.count),
        color: '#6b4e00',
      },
    ],
    { yLabel: 'actions' },
  )
  timeChart(
    charts,
    'time-to-recovery',
    `Time to recovery (seconds), per ${data.window}`,
    times,
    [
      { label: 'p50', values: data.series.map((w) => w.timeToRecovery.overall.p50), color: '#0b5cad' },
      { label: 'p90', values: data.series.map((w) => w.timeToRecovery.overall.p90), color: '#6b4e00' },
      { label: 'max', values: data.series.map((w) => w.timeToRecovery.overall.max), color: '#b3261e' },
    ],
    { yLabel: 'seconds' },
  )
  const u = totals.unsafeBlocked
  main.append(
    h('h2', {}, 'Unsafe actions blocked, and awaiting evidence beside them'),
    h(
      'div',
      { class: 'grid' },
      countTable('Blocked, by failed check', 'check', u.byCheck, 'unsafe.byCheck'),
      countTable('Awaiting evidence now, by failing check', 'check', awaiting.byCheck, 'awaiting.byCheck'),
      countTable('Blocked, by agent', 'agent', u.byAgent, 'unsafe.byAgent'),
      countTable('Blocked, by tool', 'tool', u.byTool, 'unsafe.byTool'),
      countTable('Blocked, by environment', 'environment', u.byEnvironment, 'unsafe.byEnvironment'),
      countTable(
        'Awaiting evidence now, by environment',
        'environment',
        awaiting.byEnvironment,
        'awaiting.byEnvironment',
      ),
      countTable('Blocked, by impact', 'impact', u.byImpact, 'unsafe.byImpact'),
      countTable('Blocked, by how', 'how', u.byHow, 'unsafe.byHow'),
      countTable('Actions ended, by end', 'end', totals.actionsEnded.byEnd, 'ended.byEnd'),
    ),
    h('h2', {}, 'Time to recovery'),
    h(
      'div',
      { class: 'grid' },
      recoveryTable('By agent', 'agent', totals.timeToRecovery.byAgent, 'ttr.byAgent'),
      recoveryTable('By tool', 'tool', totals.timeToRecovery.byTool, 'ttr.byTool'),
      recoveryTable(
        'By environment',
        'environment',
        totals.timeToRecovery.byEnvironment,
        'ttr.byEnvironment',
      ),
    ),
    h('h2', {}, 'Failed executions not yet recovered'),
    table(
      'Failed executions without a completed rollback, now',
      ['proposal', 'agent', 'tool.action', 'environment', 'failed at', 'rollback', 'age'],
      data.unrecoveredFailures.map((f) => [
        link(`#/action/${encodeURIComponent(f.proposalId)}`, f.proposalId),
        link(`#/agent/${encodeURIComponent(f.agentId)}`, f.agentId),
        `${f.tool}.${f.action}`,
        f.environment,
        time(f.failedAt),
        f.recoveryOverdue ? `${f.rollback} (overdue)` : f.rollback,
        seconds(f.ageSeconds),
      ]),
    ),
  )
  return undefined
}
