// Actions in flight, by state and age, kept live by the verdict stream, with filters.
import { allPages } from '../api.js'
import { age, h, link, replace, time } from '../dom.js'
import type { Page } from '../main.js'
import { followVerdicts, type StreamState, type VerdictEvent } from '../stream.js'
import type { OpenAction, OpenState } from '../types.js'

const STATES: readonly OpenState[] = ['awaiting-evidence', 'blocked', 'allowed', 'executing', 'failed']
const AGES: ReadonlyArray<[string, number]> = [
  ['any age', 0],
  ['over 1 minute', 60],
  ['over 1 hour', 3600],
  ['over 1 day', 86_400],
]

export const openActionsPage: Page = async ({ main }) => {
  let { items: actions, asOf } = await allPages<OpenAction, 'actions'>('/v1/open-actions', 'actions')
  let loadedAt = Date.now()
  const fresh = new Set<string>()

  const field = (id: string, label: string, control: HTMLElement) =>
    h('div', { class: 'field' }, h('label', { for: id }, label), control)
  const stateFilter = h(
    'select',
    { id: 'filter-state' },
    h('option', { value: '' }, 'every state'),
    STATES.map((s) => h('option', { value: s }, s)),
  )
  const agentFilter = h('input', { id: 'filter-agent', type: 'search', autocomplete: 'off' })
  const toolFilter = h('input', { id: 'filter-tool', type: 'search', autocomplete: 'off' })
  const environmentFilter = h('input', { id: 'filter-environment', type: 'search', autocomplete: 'off' })
  const ageFilter = h(
    'select',
    { id: 'filter-age' },
    AGES.map(([label, min]) => h('option', { value: String(min) }, label)),
  )
  const counts = h('dl', { class: 'stats' })
  const body = h('tbody', {})
  const shown = h('p', { class: 'note', role: 'status' })
  const live = h('p', { class: 'live', 'data-live': 'connecting' }, 'connecting to the verdict stream…')
  const recent = h(
    'ol',
    { class: 'recent', 'aria-label': 'Latest verdict events' },
    h('li', { class: 'note' }, 'none since this page opened'),
  )

  const ageOf = (a: OpenAction) => a.ageSeconds + Math.floor((Date.now() - loadedAt) / 1000)

  const draw = () => {
    replace(
      counts,
      STATES.map((s) =>
        h(
          'div',
          { class: 'stat' },
          h('dt', {}, s),
          h('dd', { 'data-state-count': s }, actions.filter((a) => a.state === s).length),
        ),
      ),
    )
    const minAge = Number(ageFilter.value)
    const contains = (value: string, filter: HTMLInputElement) =>
      value.toLowerCase().includes(filter.value.trim().toLowerCase())
    const matching = actions
      .filter(
        (a) =>
          (!stateFilter.value || a.state === stateFilter.value) &&
          contains(a.agentId, agentFilter) &&
          contains(`${a.tool}.${a.action}`, toolFilter) &&
          contains(a.environment, environmentFilter) &&
          ageOf(a) >= minAge,
      )
      .sort((a, b) => ageOf(b) - ageOf(a))
    replace(
      body,
      matching.length === 0
        ? h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'no open action matches'))
        : matching.map((a) =>
            h(
              'tr',
              { 'data-proposal': a.proposalId, class: fresh.has(a.proposalId) ? 'fresh' : false },
              h('td', {}, link(`#/action/${encodeURIComponent(a.proposalId)}`, a.proposalId)),
              h('td', {}, link(`#/agent/${encodeURIComponent(a.agentId)}`, a.agentId)),
              h('td', {}, `${a.tool}.${a.action}`, h('br'), h('span', { class: 'note' }, a.resource)),
              h('td', {}, a.environment),
              h('td', {}, a.impact),
              h('td', {}, h('span', { class: `badge ${a.state}` }, a.state)),
              h('td', { class: 'num' }, age(ageOf(a))),
              h('td', {}, a.verdict?.failedChecks.join(', ') || '—'),
            ),
          ),
    )
    shown.textContent = `${matching.length} of ${actions.length} open actions shown · ledger position ${asOf}`
  }

  for (const control of [stateFilter, ageFilter]) control.addEventListener('change', draw)
  for (const control of [agentFilter, toolFilter, environmentFilter]) control.addEventListener('input', draw)

  let reload: ReturnType<typeof setTimeout> | undefined
  const refresh = () => {
    clearTimeout(reload)
    reload = setTimeout(async () => {
      try {
        const page = await allPages<OpenAction, 'actions'>('/v1/open-actions', 'actions')
        actions = page.items
        asOf = page.asOf
        loadedAt = Date.now()
        draw()
      } catch {
        // the next event tries again; the stream state says whether the service answers
      }
    }, 150)
  }
  const onEvent = (event: VerdictEvent) => {
    const proposalId = event.data.proposalId
    if (proposalId) fresh.add(proposalId)
    recent.querySelector('li.note')?.remove()
    recent.prepend(
      h(
        'li',
        {},
        time(event.recordedAt),
        ' ',
        event.type,
        event.data.decision ? ` (${event.data.decision})` : '',
        proposalId ? [' ', link(`#/action/${encodeURIComponent(proposalId)}`, proposalId)] : '',
      ),
    )
    while (recent.children.length > 10) recent.lastElementChild?.remove()
    refresh()
  }
  const onState = (state: StreamState, detail?: string) => {
    live.setAttribute('data-live', state)
    live.textContent =
      state === 'live'
        ? 'live: new verdicts update this list'
        : state === 'retrying'
          ? `reconnecting to the verdict stream (${detail ?? ''})`
          : state === 'connecting'
            ? 'connecting to the verdict stream…'
            : 'not following the verdict stream'
  }

  replace(
    main,
    h('h1', {}, 'Open actions'),
    live,
    counts,
    h(
      'form',
      { class: 'filters', onsubmit: (e: Event) => e.preventDefault(), 'aria-label': 'Filters' },
      field('filter-state', 'State', stateFilter),
      field('filter-agent', 'Agent', agentFilter),
      field('filter-tool', 'Tool', toolFilter),
      field('filter-environment', 'Environment', environmentFilter),
      field('filter-age', 'Age in state', ageFilter),
    ),
    shown,
    h(
      'table',
      { 'data-open-actions': '' },
      h('caption', {}, 'Open actions, the oldest in its state first'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          [
            'proposal',
            'agent',
            'tool.action',
            'environment',
            'impact',
            'state',
            'age in state',
            'failing checks',
          ].map((name) => h('th', { scope: 'col' }, name)),
        ),
      ),
      body,
    ),
    h('h2', {}, 'Latest verdict events'),
    recent,
  )
  draw()
  const stop = followVerdicts(asOf, onEvent, onState)
  const tick = setInterval(draw, 30_000)
  return () => {
    stop()
    clearInterval(tick)
    clearTimeout(reload)
  }
}
