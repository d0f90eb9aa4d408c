// The console's static files at /console: served without a token, with strict headers, only the known files
// (no path leads out of the folder), and a clear 503 (never a crash) when the bundle was not built; and its
// OpenID Connect sign-in, where configured, against a small provider in the test.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { type App, buildApp } from '../../src/http/app.js'
import { CONSOLE_CSP } from '../../src/http/console.js'
import { startTestApi, type TestApi } from '../support/api.js'
import { chromiumFor, chromiumFound, launchChromium } from '../support/browser.js'
import { type FakeProvider, startFakeProvider } from '../support/oidc-provider.js'

describe('the console at /console', () => {
  let api: TestApi
  let built: App
  let unbuilt: App
  const folder = mkdtempSync(join(tmpdir(), 'governance-console-'))

  before(async () => {
    api = await startTestApi()
    writeFileSync(join(folder, 'index.html'), '<!doctype html><title>console</title>')
    writeFileSync(join(folder, 'app.js'), 'export {}')
    writeFileSync(join(folder, 'app.css'), 'body{}')
    writeFileSync(join(folder, 'secret.txt'), 'not served')
    built = await buildApp(api.runtime, { logger: false, consoleDir: folder })
    unbuilt = await buildApp(api.runtime, { logger: false, consoleDir: join(folder, 'missing') })
  })
  after(async () => {
    await built?.close()
    await unbuilt?.close()
    await api?.close()
    rmSync(folder, { recursive: true, force: true })
  })

  test('serves its files without a token, each with its type and the strict headers', async () => {
    for (const [url, type] of [
      ['/console', 'text/html; charset=utf-8'],
      ['/console/', 'text/html; charset=utf-8'],
      ['/console/index.html', 'text/html; charset=utf-8'],
      ['/console/app.js', 'text/javascript; charset=utf-8'],
      ['/console/app.css', 'text/css; charset=utf-8'],
    ] as const) {
      const answer = await built.inject({ method: 'GET', url })
      assert.equal(answer.statusCode, 200, url)
      assert.equal(answer.headers['content-type'], type, url)
      assert.equal(answer.headers['content-security-policy'], CONSOLE_CSP)
      assert.match(CONSOLE_CSP, /default-src 'self'/)
      assert.match(CONSOLE_CSP, /frame-ancestors 'none'/)
      assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval/)
      assert.equal(answer.headers['x-content-type-options'], 'nosniff')
      assert.equal(answer.headers['x-frame-options'], 'DENY')
      assert.equal(answer.headers['referrer-policy'], 'no-referrer')
    }
    assert.equal((await built.inject({ method: 'GET', url: '/console/app.js' })).body, 'export {}')
    assert.equal((await built.inject({ method: 'HEAD', url: '/console/app.css' })).statusCode, 200)
  })

  test('without CONSOLE_OIDC_CLIENT_ID it signs in by paste only: config.json says so, connect-src is self alone', async () => {
    const answer = await built.inject({ method: 'GET', url: '/console/config.json' })
    assert.equal(answer.statusCode, 200)
    assert.deepEqual(answer.json(), { oidc: null })
    for (const url of ['/console', '/console/config.json']) {
      const csp = String((await built.inject({ method: 'GET', url })).headers['content-security-policy'])
      assert.deepEqual(
        csp.split('; ').filter((d) => d.startsWith('connect-src')),
        ["connect-src 'self'"],
      )
    }
  })

  test('serves nothing else: another file of the folder, a path out of it, a write', async () => {
    for (const url of [
      '/console/secret.txt',
      '/console/..%2Fpackage.json',
      '/console/%2e%2e%2f%2e%2e%2fpackage.json',
      '/console/..%5Cpackage.json',
      '/console/../package.json',
      '/console/a/app.js',
      '/console/app.js%00.css',
    ]) {
      const answer = await built.inject({ method: 'GET', url })
      assert.equal(answer.statusCode, 404, `${url}: ${answer.body}`)
      assert.doesNotMatch(answer.body, /not served|"name"/, url)
    }
    for (const method of ['POST', 'PUT', 'DELETE'] as const) {
      const answer = await built.inject({ method, url: '/console/app.js', payload: {} })
      assert.equal(answer.statusCode, 404, method)
    }
  })

  test('without a built bundle it answers 503 saying to run npm run build, and the API still serves', async () => {
    for (const url of ['/console', '/console/app.js']) {
      const answer = await unbuilt.inject({ method: 'GET', url })
      assert.equal(answer.statusCode, 503)
      assert.equal(answer.json().error, 'unavailable')
      assert.match(answer.json().message, /npm run build/)
    }
    assert.equal((await unbuilt.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  })
})

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
const CLIENT_ID = 'governance-console'
const SUB = 'auditor-from-idp'
const ROLES = ['auditor', 'observer']
const TOKEN_KEY = 'governance-console-token'
const PENDING_KEY = 'governance-console-oidc'

// Against a small provider in the test: /console/config.json says how to sign in, the Content-Security-Policy lets
// the console reach the provider's origin and no other, and in Chromium the sign-in button runs the authorization
// code flow with PKCE and lands signed in with the provider's roles, while an answer with another state, a refusal
// and a code the provider will not exchange each leave the user signed out with a clear message.
describe('the console signs in with OpenID Connect where configured', () => {
  let provider: FakeProvider
  let api: TestApi
  let app: App
  let url = ''
  const folder = mkdtempSync(join(tmpdir(), 'governance-console-oidc-'))
  const found = chromiumFound()
  let launching: Promise<Browser> | undefined
  let browser: Browser | undefined

  before(async () => {
    // Chromium starts while the provider, the service and the bundle are made ready
    launching = found ? launchChromium() : undefined
    provider = await startFakeProvider({
      clientId: CLIENT_ID,
      audience: 'governance-ledger',
      sub: SUB,
      roles: ROLES,
    })
    api = await startTestApi({
      AUTH_MODE: 'jwks-development',
      AUTH_JWKS_URL: `${provider.issuer}/jwks`,
      AUTH_ISSUER: provider.issuer,
      CONSOLE_OIDC_CLIENT_ID: CLIENT_ID,
    })
    // the console bundled into a folder of the test's own, served by an app that listens
    execFileSync(process.execPath, ['scripts/build-console.mjs', folder], { cwd: ROOT, stdio: 'inherit' })
    app = await buildApp(api.runtime, { logger: false, consoleDir: folder })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
    provider.consoleOrigin = url
    browser = await launching
  })
  after(async () => {
    // closed even when the set-up failed before it took the browser
    await (await launching?.catch(() => undefined))?.close()
    await app?.close()
    await api?.close()
    await provider?.close()
    rmSync(folder, { recursive: true, force: true })
  })

  test('/console/config.json names the issuer, the client and the scopes, without a token, and no secret', async () => {
    const answer = await app.inject({ method: 'GET', url: '/console/config.json' })
    assert.equal(answer.statusCode, 200)
    assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8')
    assert.deepEqual(answer.json(), {
      oidc: { issuer: provider.issuer, clientId: CLIENT_ID, scopes: ['openid'] },
    })
    const docs = await app.inject({ method: 'GET', url: '/docs/json' })
    assert.equal(Object.keys(docs.json().paths).filter((p) => p.startsWith('/console')).length, 0)
  })

  test("the console's policy lets it connect to the issuer's origin beside its own, and to nothing else", async () => {
    for (const path of ['/console', '/console/app.js', '/console/config.json']) {
      const csp = String((await app.inject({ method: 'GET', url: path })).headers['content-security-policy'])
      const connect = csp.split('; ').filter((d) => d.startsWith('connect-src'))
      assert.deepEqual(connect, [`connect-src 'self' ${provider.issuer}`], path)
      assert.match(csp, /default-src 'self'/)
      assert.match(csp, /form-action 'self'/)
    }
  })

  describe('in Chromium', () => {
    // one tab for every case, signed out after each refusal as a user would be: a page load is the cost here
    let page: Page | undefined
    const errors: string[] = []
    before(async () => {
      if (!browser) return
      page = await (await browser.newContext()).newPage()
      page.on('pageerror', (error) => errors.push(error.message))
      await page.goto(`${url}/console`)
    })

    const signInButton = (tab: Page) => tab.getByRole('button', { name: `Sign in with ${provider.issuer}` })
    const storage = (tab: Page, key: string) =>
      tab.evaluate(`sessionStorage.getItem(${JSON.stringify(key)})`) as Promise<string | null>

    /** Clicks the sign-in button; the console refuses the answer: the message, signed out, nothing kept, URL clean. */
    const refused = async (tab: Page, message: RegExp) => {
      // the answer is read on the next document, the one the provider redirects back to
      const loaded = tab.waitForEvent('load')
      await signInButton(tab).click()
      await loaded
      const alert = tab.getByRole('alert').filter({ hasText: 'Not signed in' })
      await alert.waitFor()
      assert.match((await alert.textContent()) ?? '', message)
      assert.equal(await tab.locator('[data-principal]').count(), 0)
      assert.ok(await tab.locator('textarea#token').isVisible(), 'the paste stays offered')
      assert.equal(await storage(tab, TOKEN_KEY), null)
      assert.equal(await storage(tab, PENDING_KEY), null)
      assert.equal(new URL(tab.url()).search, '')
    }

    test('an answer carrying another state is refused: no code is exchanged, the user stays signed out', async (t) => {
      if (!chromiumFor(t)) return
      assert.ok(page, 'the tab was opened')
      const before = provider.tokenRequests.length
      provider.next = 'tampered-state'
      await refused(page, /Not signed in: the answer does not carry the state this sign-in sent/)
      assert.equal(provider.tokenRequests.length, before, 'the token endpoint was not called')
    })

    test("the provider's refusal (error=) and a code it will not exchange each leave the user signed out, saying why", async (t) => {
      if (!chromiumFor(t)) return
      assert.ok(page, 'the tab was opened')
      provider.next = 'access-denied'
      await refused(page, /the identity provider refused the sign-in: access_denied: the user declined/)
      provider.next = 'bad-code'
      await refused(page, /the token endpoint refused the code: invalid_grant: the code is unknown or used/)
    })

    test('the sign-in button runs the code flow with PKCE and lands signed in with the roles the provider gave', async (t) => {
      if (!chromiumFor(t)) return
      assert.ok(page, 'the tab was opened')
      provider.problems.length = 0
      const requests = provider.tokenRequests.length
      await signInButton(page).click()
      await page.waitForSelector(`[data-principal="${SUB}"]`)
      assert.equal(await page.locator('.roles').getAttribute('data-roles'), ROLES.join(','))
      assert.deepEqual(provider.problems, [])
      assert.equal(provider.tokenRequests.length, requests + 1)
      // the provider's access token is the one kept, for this tab only; the verifier and state are gone
      assert.equal(await storage(page, TOKEN_KEY), provider.issued.at(-1))
      assert.equal(await storage(page, PENDING_KEY), null)
      // the code and state are out of the address bar
      const landed = new URL(page.url())
      assert.equal(`${landed.origin}${landed.pathname}${landed.search}`, `${url}/console`)
      assert.equal(landed.hash, '#/overview')
      assert.deepEqual(errors, [])
    })
  })
})
