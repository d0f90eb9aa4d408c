// The agents, and one agent: its ladder per environment over time, its track record, its promotions requested,
// refused and approved, its violations and demotions.
import { allPages, get } from '../api.js'
import { timeChart } from '../chart.js'
import { h, link, percent, replace, seconds, stat, table, time } from '../dom.js'
import type { Page } from '../main.js'
import {
  type ActionSummary,
  type Agent,
  type LadderEvent,
  LEVELS,
  type Level,
  type TrackRecord,
} from '../types.js'

const COLORS = ['#0b5cad', '#b3261e', '#6b4e00', '#1b6e3a', '#6a1b9a', '#00695c']

export const agentsPage: Page = async ({ main }) => {
  const { items: agents, asOf } = await allPages<Agent, 'agents'>('/v1/agents', 'agents')
  replace(
    main,
    h('h1', {}, 'Agents'),
    h('p', { class: 'note' }, `${agents.length} registered · ledger position ${asOf}`),
    table(
      'Registered agents and the level each holds per environment (observe where none is listed)',
      ['agent', 'owner', 'levels', 'pending promotions', 'refused promotions'],
      agents.map((a) => [
        link(`#/agent/${encodeURIComponent(a.agentId)}`, a.agentId),
        a.owner ?? '—',
        Object.entries(a.levels)
          .map(([env, held]) => `${env}: ${held.level}`)
          .join(', ') || 'observe everywhere',
        a.pendingPromotions.map((p) => `${p.environment}: ${p.from} → ${p.to}`).join(', ') || '—',
        a.refusedPromotions,
      ]),
      { 'data-agents': '' },
    ),
  )
  return undefined
}

/** The level held in each environment at each moment of the history (observe until the first promotion). */
const ladderOf = (events: readonly LadderEvent[], environments: readonly string[], until: string) => {
  const moves = events.filter((e) => e.type === 'AgentPromoted' || e.type === 'AgentDemoted')
  const start = events[0]?.recordedAt ?? until
  const times = [start, ...moves.map((e) => e.recordedAt), until]
  const held = new Map<string, Level>(environments.map((env) => [env, 'observe']))
  const values = new Map<string, number[]>(environments.map((env) => [env, [0]]))
  moves.forEach((move) => {
    if (move.environment && move.to) held.set(move.environment, move.to)
    for (const env of environments) values.get(env)?.push(LEVELS.indexOf(held.get(env) ?? 'observe'))
  })
  for (const env of environments) values.get(env)?.push(LEVELS.indexOf(held.get(env) ?? 'observe'))
  return { times, values }
}

export const agentPage: Page = async ({ main, param }) => {
  const id = encodeURIComponent(param)
  const [agent, history, proposals] = await Promise.all([
    get<Agent & { asOf: number }>(`/v1/agents/${id}`),
    get<{ events: LadderEvent[] }>(`/v1/agents/${id}/history`),
    allPages<ActionSummary, 'proposals'>(`/v1/audit/agents/${id}`, 'proposals'),
  ])
  const events = history.events
  const environments = [
    ...new Set([
      ...Object.keys(agent.levels),
      ...events.flatMap((e) => (e.environment ? [e.environment] : [])),
      ...proposals.items.map((p) => p.environment),
    ]),
  ].sort()
  const records = await Promise.all(
    environments.map(async (env) => ({
      env,
      record: await get<TrackRecord>(
        `/v1/agents/${id}/track-record?environment=${encodeURIComponent(env)}&days=30`,
      ),
    })),
  )
  const count = (type: LadderEvent['type']) => events.filter((e) => e.type === type).length
  const violations = proposals.items.filter((p) => p.violation)
  const demotions = events.filter((e) => e.type === 'AgentDemoted')
  const charts = h('div', { class: 'charts' })
  replace(
    main,
    h('h1', {}, 'Agent ', h('code', {}, agent.agentId)),
    h('p', { class: 'lead' }, `owned by ${agent.owner ?? '—'} · ledger position ${agent.asOf}`),
    h(
      'dl',
      { class: 'stats' },
      stat('Promotions requested', count('PromotionRequested'), 'promotionsRequested'),
      stat('Approvals given', count('PromotionApproved'), 'promotionsApproved', 'one per policy admin'),
      stat('Promotions granted', count('AgentPromoted'), 'promotionsGranted'),
      stat('Promotions refused', count('PromotionRefused'), 'promotionsRefused'),
      stat('Pending', agent.pendingPromotions.length, 'promotionsPending'),
      stat('Demotions', demotions.length, 'demotions'),
      stat('Violations', violations.length, 'violations', `of ${proposals.items.length} proposals`),
    ),
    h('h2', {}, 'Level per environment'),
    table(
      'The level held now in each environment',
      ['environment', 'level', 'since', 'how'],
      environments.map((env) => {
        const held = agent.levels[env]
        return [env, held?.level ?? 'observe', time(held?.since), held?.cause ?? 'never promoted']
      }),
      { 'data-levels': '' },
    ),
    charts,
  )
  if (environments.length > 0) {
    const ladder = ladderOf(events, environments, new Date().toISOString())
    timeChart(
      charts,
      'ladder',
      'The ladder over time, per environment (0 observe, 1 recommend, 2 simulate, 3 execute)',
      ladder.times,
      environments.map((env, i) => ({
        label: env,
        values: ladder.values.get(env) ?? [],
        color: COLORS[i % COLORS.length] ?? '#333',
        stepped: true,
      })),
      {
        yLabel: 'level',
        format: (v) => (v === null ? '—' : (LEVELS[v] ?? String(v))),
        yValues: (v) => (Number.isInteger(v) ? (LEVELS[v] ?? '') : ''),
      },
    )
  }
  main.append(
    h('h2', {}, 'Track record, last 30 days of ledger time'),
    table(
      'Track record per environment',
      ['environment', 'proposals', 'simulations passed', 'survival rate', 'violations', 'failed executions'],
      records.map(({ env, record }) => [
        env,
        record.proposals,
        record.simulationsPassed,
        percent(record.simulationSurvivalRate),
        record.violations,
        record.failedExecutions,
      ]),
      { 'data-track-record': '' },
    ),
    h('h2', {}, 'Promotions and demotions'),
    table(
      'The ladder events of the agent, in ledger order',
      ['recorded', 'event', 'environment', 'from → to', 'by', 'reason'],
      events.map((e) => [
        time(e.recordedAt),
        e.type,
        e.environment ?? '—',
        e.from && e.to ? `${e.from} → ${e.to}` : '—',
        e.actor,
        e.proposalId
          ? [e.reason ?? '', ' ', link(`#/action/${encodeURIComponent(e.proposalId)}`, e.proposalId)]
          : (e.reason ?? ''),
      ]),
      { 'data-ladder-events': '' },
    ),
    h('h2', {}, 'Violations'),
    table(
      'Proposals of the agent recorded as violations',
      ['proposal', 'tool.action', 'environment', 'outcome', 'time to recovery'],
      violations.map((p) => [
        link(`#/action/${encodeURIComponent(p.proposalId)}`, p.proposalId),
        `${p.tool}.${p.action}`,
        p.environment,
        p.outcome,
        seconds(p.timeToRecoverySeconds),
      ]),
    ),
    h('h2', {}, 'Proposals'),
    table(
      `The agent's proposals (${proposals.items.length}), in the order submitted`,
      ['proposal', 'submitted', 'tool.action', 'resource', 'environment', 'outcome', 'decision'],
      proposals.items.map((p) => [
        link(`#/action/${encodeURIComponent(p.proposalId)}`, p.proposalId),
        time(p.submittedAt),
        `${p.tool}.${p.action}`,
        p.resource,
        p.environment,
        p.outcome,
        p.latestDecision ?? '—',
      ]),
    ),
  )
  return undefined
}
