// The console: sign-in with a bearer token (pasted, or from the identity provider where configured), a navigation
// bar, and one page per hash route (#/overview, ...).
import 'uplot/dist/uPlot.min.css'
import './app.css'
import { ApiFailure, get, whenUnauthenticated } from './api.js'
import { destroyCharts } from './chart.js'
import { errorBox, h, replace } from './dom.js'
import { beginSignIn, finishSignIn, type OidcSettings, oidcSettings, SignInError } from './oidc.js'
import { actionPage } from './pages/action.js'
import { agentPage, agentsPage } from './pages/agents.js'
import { killSwitchesPage } from './pages/kill-switches.js'
import { ledgerPage } from './pages/ledger.js'
import { openActionsPage } from './pages/open-actions.js'
import { overviewPage } from './pages/overview.js'
import { releasePage } from './pages/release.js'
import { expiresAt, forgetToken, keepToken, type Principal, storedToken } from './session.js'

/** What a page gets: where to draw, the route's parameter, who is signed in; it returns how to leave. */
export interface PageContext {
  readonly main: HTMLElement
  readonly param: string
  readonly principal: Principal
}
export type Page = (context: PageContext) => Promise<(() => void) | undefined>

const PAGES: ReadonlyArray<{ path: string; title: string; page: Page; nav: boolean }> = [
  { path: 'overview', title: 'Overview', page: overviewPage, nav: true },
  { path: 'open', title: 'Open actions', page: openActionsPage, nav: true },
  { path: 'agents', title: 'Agents', page: agentsPage, nav: true },
  { path: 'kill-switches', title: 'Kill switches', page: killSwitchesPage, nav: true },
  { path: 'release', title: 'Survival & release', page: releasePage, nav: true },
  { path: 'ledger', title: 'Ledger integrity', page: ledgerPage, nav: true },
  { path: 'action', title: 'Action', page: actionPage, nav: false },
  { path: 'agent', title: 'Agent', page: agentPage, nav: false },
]

const header = document.getElementById('top') as HTMLElement
const main = document.getElementById('main') as HTMLElement
let principal: Principal | null = null
let leave: (() => void) | undefined

const signOut = (message?: string) => {
  forgetToken()
  principal = null
  leave?.()
  leave = undefined
  location.hash = '#/'
  void render(message)
}
whenUnauthenticated((message) => signOut(`Signed out: the service refused the token (${message}).`))

/** After a paste or a return from the identity provider: keeps the token, asks the service who it stands for. */
const signInWith = async (token: string): Promise<string | null> => {
  keepToken(token)
  try {
    principal = await get<Principal>('/v1/principal')
  } catch (error) {
    forgetToken()
    return error instanceof ApiFailure ? `The service refused the token: ${error.message}` : String(error)
  }
  if (!location.hash || location.hash === '#/') location.hash = '#/overview'
  else void render()
  return null
}

const signInPage = (oidc: OidcSettings | null, message?: string) => {
  replace(header, h('p', { class: 'brand' }, 'Governance ledger console'))
  const input = h('textarea', {
    id: 'token',
    name: 'token',
    rows: 4,
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
  })
  const problem = h('p', { class: 'error', role: 'alert', hidden: !message }, message ?? '')
  const show = (text: string) => {
    problem.hidden = false
    problem.textContent = text
  }
  const provider =
    oidc === null
      ? null
      : h(
          'div',
          { class: 'provider' },
          h(
            'button',
            {
              type: 'button',
              id: 'sign-in-oidc',
              onclick: async (event: Event) => {
                const button = event.currentTarget as HTMLButtonElement
                button.disabled = true
                try {
                  await beginSignIn(oidc)
                } catch (error) {
                  button.disabled = false
                  show(`Not signed in: ${error instanceof SignInError ? error.message : String(error)}`)
                }
              },
            },
            `Sign in with ${oidc.issuer}`,
          ),
          h('p', {}, 'Or paste a bearer token:'),
        )
  const form = h(
    'form',
    {
      class: 'signin',
      onsubmit: async (event: Event) => {
        event.preventDefault()
        const token = input.value.trim()
        if (!token) return
        const refused = await signInWith(token)
        if (refused !== null) show(refused)
      },
    },
    h('h1', {}, 'Sign in'),
    h(
      'p',
      {},
      oidc === null
        ? 'Paste a bearer token the service accepts (an embedded token from the CLI, or one your identity provider issued). '
        : 'Sign in at your identity provider, or paste a bearer token the service accepts. ',
      'It is kept for this tab only and sent to this service only.',
    ),
    provider,
    h('label', { for: 'token' }, 'Bearer token'),
    input,
    problem,
    h('button', { type: 'submit' }, 'Sign in'),
  )
  replace(main, form)
  if (oidc === null) input.focus()
  else form.querySelector<HTMLButtonElement>('#sign-in-oidc')?.focus()
}

const navigation = (who: Principal, current: string) => {
  const token = storedToken() ?? ''
  const expiry = expiresAt(token)
  replace(
    header,
    h('p', { class: 'brand' }, h('a', { href: '#/overview' }, 'Governance ledger console')),
    h(
      'nav',
      { 'aria-label': 'Pages' },
      h(
        'ul',
        {},
        PAGES.filter((p) => p.nav).map((p) =>
          h(
            'li',
            {},
            h('a', { href: `#/${p.path}`, 'aria-current': p.path === current ? 'page' : false }, p.title),
          ),
        ),
      ),
    ),
    h(
      'div',
      { class: 'who' },
      h('span', { 'data-principal': who.sub }, who.sub),
      ' ',
      h('span', { class: 'roles', 'data-roles': who.roles.join(',') }, who.roles.join(', ')),
      expiry
        ? h('span', { class: 'note' }, ` until ${expiry.toISOString().slice(0, 16).replace('T', ' ')} UTC`)
        : null,
      ' ',
      h('button', { type: 'button', class: 'quiet', onclick: () => signOut() }, 'Sign out'),
    ),
  )
}

const render = async (message?: string): Promise<void> => {
  leave?.()
  leave = undefined
  destroyCharts()
  if (!storedToken()) {
    const oidc = await oidcSettings()
    // a sign-in completed meanwhile (or a page drawn by a later call): this page is not wanted
    if (storedToken()) return
    signInPage(oidc, message)
    return
  }
  if (!principal) {
    try {
      principal = await get<Principal>('/v1/principal')
    } catch (error) {
      if (!storedToken()) return
      replace(main, errorBox(error))
      return
    }
  }
  const [path = 'overview', ...rest] = location.hash.replace(/^#\/?/, '').split('/')
  const found = PAGES.find((p) => p.path === path) ?? PAGES[0]
  if (!found) return
  navigation(principal, found.path)
  document.title = `${found.title} · Governance ledger console`
  main.removeAttribute('data-page')
  replace(main, h('p', { class: 'loading', role: 'status' }, 'Loading…'))
  const route = location.hash
  try {
    const context: PageContext = { main, param: decodeURIComponent(rest.join('/')), principal }
    const cleanup = await found.page(context)
    if (location.hash !== route) cleanup?.()
    else leave = cleanup
    main.setAttribute('data-page', found.path)
  } catch (error) {
    if (location.hash === route) replace(main, h('h1', {}, found.title), errorBox(error))
  }
}

window.addEventListener('hashchange', () => {
  void render().then(() => main.focus({ preventScroll: true }))
})

/** The first render: after the identity provider's answer where this load is the return from it. */
const start = async () => {
  let token: string | null
  try {
    token = await finishSignIn()
  } catch (error) {
    void render(`Not signed in: ${error instanceof SignInError ? error.message : String(error)}`)
    return
  }
  const refused = token === null ? null : await signInWith(token)
  if (token === null || refused !== null) void render(refused ?? undefined)
}
void start()
