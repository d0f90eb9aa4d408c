// Branch survival and the release gate per workflow, and counterfactual replay: what a policy draft would flip.
import { ApiFailure, get, post } from '../api.js'
import { timeChart } from '../chart.js'
import { errorBox, h, percent, replace, stat, table } from '../dom.js'
import type { Page } from '../main.js'

interface Figures {
  runs: number
  runsPassed: number
  adversarialBranches: number
  survived: number
  failed: number
  survivalRate: number | null
}
interface Survival {
  window: 'hour' | 'day'
  series: Array<Figures & { start: string }>
  totals: Figures & { trend: { change: number | null } }
  byWorkflow: Array<Figures & { workflow: string; trend: { change: number | null } }>
  asOf: number
}
interface GateAnswer {
  workflow: string
  passed: boolean
  policyVersion: number | null
  reason: string
  gates: Array<{ agentId: string | null; passed: boolean; reason: string }>
}
interface Flip {
  proposalId: string
  agentId: string
  tool: string
  action: string
  environment: string
  recorded: string
  counterfactual: string
  changedChecks: Array<{ check: string; recorded: string | null; counterfactual: string | null }>
}
interface Counterfactual {
  from: number
  to: number
  compared: number
  allowToBlock: number
  blockToAllow: number
  flips: Flip[]
}

export const releasePage: Page = async ({ main }) => {
  const survival = await get<Survival>('/v1/survival?window=day')
  const workflows = survival.byWorkflow.map((w) => w.workflow)
  const gates = await Promise.all(
    workflows.map((w) =>
      get<GateAnswer>(`/v1/release-gates/${encodeURIComponent(w)}`).catch((e: unknown) => e),
    ),
  )
  const current = await get<Record<string, unknown>>('/v1/policies/current').catch(() => null)
  const charts = h('div', { class: 'charts' })
  replace(
    main,
    h('h1', {}, 'Branch survival and release gates'),
    h(
      'dl',
      { class: 'stats' },
      stat('Simulation runs, 30 days', survival.totals.runs, 'survival.runs'),
      stat('Runs passed', survival.totals.runsPassed, 'survival.runsPassed'),
      stat('Adversarial branches', survival.totals.adversarialBranches, 'survival.branches'),
      stat('Survival rate', percent(survival.totals.survivalRate), 'survival.rate'),
    ),
    charts,
  )
  timeChart(
    charts,
    'survival',
    'Adversarial branches survived and failed, per day',
    survival.series.map((w) => w.start),
    [
      { label: 'survived', values: survival.series.map((w) => w.survived), color: '#1b6e3a' },
      { label: 'failed', values: survival.series.map((w) => w.failed), color: '#b3261e' },
    ],
    { yLabel: 'branches' },
  )
  main.append(
    table(
      'Per workflow: survival over 30 days and the release gate under the policy in force',
      ['workflow', 'runs', 'survival rate', 'release gate', 'why'],
      survival.byWorkflow.map((w, i) => {
        const gate = gates[i]
        const answer = gate && typeof gate === 'object' && 'passed' in gate ? (gate as GateAnswer) : null
        return [
          w.workflow,
          w.runs,
          percent(w.survivalRate),
          answer
            ? h(
                'span',
                { class: `badge ${answer.passed ? 'pass' : 'fail'}`, 'data-gate': w.workflow },
                answer.passed ? 'PASS' : 'FAIL',
              )
            : '—',
          answer ? answer.reason : gate instanceof Error ? gate.message : '—',
        ]
      }),
      { 'data-workflows': '' },
    ),
  )

  // counterfactual replay: a draft (the policy in force, to be edited) or a published version
  const draft = current ? { ...current } : {}
  for (const key of ['publishedBy', 'approvedBy', 'publishedAt', 'eventId']) delete draft[key]
  const text = h(
    'textarea',
    { id: 'cf-policy', rows: 12, spellcheck: 'false' },
    JSON.stringify(draft, null, 2),
  )
  const from = h('input', {
    id: 'cf-from',
    inputmode: 'numeric',
    autocomplete: 'off',
    placeholder: 'the start of the ledger',
  })
  const result = h('div', { 'data-counterfactual': '' })
  const form = h(
    'form',
    {
      class: 'panel',
      onsubmit: async (event: Event) => {
        event.preventDefault()
        let policy: unknown
        try {
          policy = JSON.parse(text.value)
        } catch (error) {
          replace(
            result,
            errorBox(`The policy draft is not JSON: ${error instanceof Error ? error.message : ''}`),
          )
          return
        }
        const body: Record<string, unknown> = { policy }
        if (from.value.trim())
          body.from = /^\d+$/.test(from.value.trim()) ? Number(from.value.trim()) : from.value.trim()
        replace(result, h('p', { role: 'status' }, 'Replaying…'))
        try {
          const report = await post<Counterfactual>('/v1/policies/counterfactual', body)
          replace(
            result,
            h(
              'p',
              { role: 'status' },
              `Positions ${report.from} to ${report.to}: ${report.compared} verdicts compared, `,
              h('strong', { 'data-flips': String(report.flips.length) }, `${report.flips.length} would flip`),
              ` (${report.allowToBlock} allow → block, ${report.blockToAllow} block → allow).`,
            ),
            table(
              'Verdicts that would flip under the draft',
              [
                'proposal',
                'agent',
                'tool.action',
                'environment',
                'recorded',
                'under the draft',
                'checks that changed',
              ],
              report.flips.map((f) => [
                h('a', { href: `#/action/${encodeURIComponent(f.proposalId)}` }, f.proposalId),
                f.agentId,
                `${f.tool}.${f.action}`,
                f.environment,
                f.recorded,
                f.counterfactual,
                f.changedChecks
                  .map((c) => `${c.check}: ${c.recorded ?? '—'} → ${c.counterfactual ?? '—'}`)
                  .join('; '),
              ]),
            ),
          )
        } catch (error) {
          replace(result, errorBox(error instanceof ApiFailure ? error.message : error))
        }
      },
    },
    h('h2', {}, 'Counterfactual replay'),
    h(
      'p',
      { class: 'note' },
      'Re-decides the ledger in memory under a policy draft and lists every verdict that would flip. Nothing is written.',
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'cf-policy' }, 'Policy draft (JSON), the policy in force to start from'),
      text,
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'cf-from' }, 'In force from (ledger position or UTC time)'),
      from,
    ),
    h('button', { type: 'submit' }, 'Replay'),
    result,
  )
  main.append(form)
  return undefined
}
