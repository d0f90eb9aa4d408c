// The engaged kill switches; a policy admin engages one, or requests a release (a second admin approves it).
import { ApiFailure, get, post } from '../api.js'
import { h, replace, table, time } from '../dom.js'
import type { Page } from '../main.js'
import { holds } from '../session.js'
import type { KillSwitch } from '../types.js'

interface Governed {
  status?: string
  changeId?: string
  message?: string
}

const answerText = (answer: Governed | { events?: unknown[] }): string =>
  'status' in answer && answer.status === 'pending'
    ? `pending: a second policy admin must approve it${'changeId' in answer && answer.changeId ? ` (change ${answer.changeId})` : ''}`
    : 'recorded in the ledger'

export const killSwitchesPage: Page = async ({ main, principal }) => {
  const { killSwitches, asOf } = await get<{ killSwitches: KillSwitch[]; asOf: number }>('/v1/kill-switches')
  const mayWrite = holds(principal, 'policy-admin')
  const outcome = h('p', { role: 'status', class: 'note', 'data-outcome': '' })
  const reload = () => window.dispatchEvent(new HashChangeEvent('hashchange'))
  const report = (what: string, error: unknown) => {
    outcome.className = 'error'
    outcome.textContent = `${what}: ${error instanceof ApiFailure || error instanceof Error ? error.message : String(error)}`
  }

  const releaseForm = (k: KillSwitch, i: number) => {
    const reason = h('input', {
      id: `release-reason-${i}`,
      required: true,
      maxlength: 2000,
      autocomplete: 'off',
    })
    return h(
      'form',
      {
        class: 'inline',
        'data-write': 'release',
        onsubmit: async (event: Event) => {
          event.preventDefault()
          try {
            const answer = await post<Governed>('/v1/kill-switches/release', {
              scope: k.scope,
              target: k.target,
              reason: reason.value,
            })
            outcome.className = 'note'
            outcome.textContent = `Release of the ${k.scope} switch${k.target ? ` on ${k.target}` : ''}: ${answerText(answer)}`
          } catch (error) {
            report('The release was refused', error)
          }
        },
      },
      h('label', { for: `release-reason-${i}` }, 'Reason'),
      reason,
      h('button', { type: 'submit' }, 'Request release'),
    )
  }

  const scope = h(
    'select',
    { id: 'engage-scope', name: 'scope' },
    ['agent', 'tool', 'environment', 'global'].map((s) => h('option', { value: s }, s)),
  )
  const target = h('input', { id: 'engage-target', name: 'target', autocomplete: 'off' })
  const reason = h('input', {
    id: 'engage-reason',
    name: 'reason',
    required: true,
    maxlength: 2000,
    autocomplete: 'off',
  })
  scope.addEventListener('change', () => {
    target.disabled = scope.value === 'global'
  })
  const engageForm = h(
    'form',
    {
      class: 'panel',
      'data-write': 'engage',
      onsubmit: async (event: Event) => {
        event.preventDefault()
        if (
          !window.confirm(
            `Engage the ${scope.value} kill switch${target.value ? ` on ${target.value}` : ''}? Every verdict in its scope becomes block.`,
          )
        )
          return
        try {
          const answer = await post<Governed>('/v1/kill-switches', {
            scope: scope.value,
            target: scope.value === 'global' ? null : target.value,
            reason: reason.value,
          })
          outcome.textContent = `Engaged: ${answerText(answer)}`
          reload()
        } catch (error) {
          report('The switch was not engaged', error)
        }
      },
    },
    h('h2', {}, 'Engage a kill switch'),
    h('div', { class: 'field' }, h('label', { for: 'engage-scope' }, 'Scope'), scope),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'engage-target' }, 'Target (agent, tool or environment)'),
      target,
    ),
    h('div', { class: 'field' }, h('label', { for: 'engage-reason' }, 'Reason'), reason),
    h('button', { type: 'submit', class: 'danger' }, 'Engage'),
  )

  replace(
    main,
    h('h1', {}, 'Kill switches'),
    h(
      'p',
      { class: 'note' },
      `${killSwitches.length} engaged · as the decision service sees them at ledger position ${asOf}`,
    ),
    table(
      'Engaged kill switches',
      mayWrite
        ? ['scope', 'target', 'reason', 'engaged', 'by', 'release']
        : ['scope', 'target', 'reason', 'engaged', 'by'],
      killSwitches.map((k, i) => [
        k.scope,
        k.target ?? '(everything)',
        k.reason,
        time(k.engagedAt),
        k.engagedBy,
        ...(mayWrite ? [releaseForm(k, i)] : []),
      ]),
      { 'data-kill-switches': '' },
    ),
    outcome,
    mayWrite
      ? engageForm
      : h(
          'p',
          { class: 'note' },
          'Engaging and releasing kill switches takes the policy-admin role, which this token does not hold.',
        ),
  )
  return undefined
}
