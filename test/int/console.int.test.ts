// The console's static files at /console: served without a token, with strict headers, only the known files
// (no path leads out of the folder), and a clear 503 (never a crash) when the bundle was not built.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { type App, buildApp } from '../../src/http/app.js'
import { CONSOLE_CSP } from '../../src/http/console.js'
import { startTestApi, type TestApi } from '../support/api.js'

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
