import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { decodeJwt } from 'jose'
import { ConfigSchema, loadConfig } from '../../src/config.js'
import { openRuntime } from '../../src/runtime.js'

const BIN = fileURLToPath(new URL('../../bin/governance-ledger.mjs', import.meta.url))
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'cli-token-'))
after(() => rmSync(root, { recursive: true, force: true }))

/** The environment of the test run without any of the service's variables. */
const cleanEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const clean = { ...process.env }
  for (const key of Object.keys(ConfigSchema.shape)) delete clean[key]
  return { ...clean, ...env }
}

const start = (args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess =>
  spawn(process.execPath, [...args], { env: cleanEnv(env) })

const cli = (args: readonly string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = start([BIN, ...args], env)
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })

/** A data folder as the service leaves it after its first start: ledger, derived state, keys. */
const preparedFolder = async (name: string) => {
  const dir = join(root, name)
  const config = loadConfig({ DATA_DIR: dir, AUTH_MODE: 'embedded' })
  const runtime = await openRuntime(config)
  await runtime.closeStores()
  return { dir, config }
}

describe('cli token issue', () => {
  it('issues a token the service verifies, with the sub and roles asked for', async () => {
    const { dir, config } = await preparedFolder('keys')
    const run = await cli(
      ['token', 'issue', '--sub', 'agent-7', '--role', 'agent', '--role', 'observer', '--expires', '30m'],
      { DATA_DIR: dir },
    )
    assert.equal(run.code, 0, run.stderr)
    const token = run.stdout.trim()
    assert.equal(run.stdout, `${token}\n`, 'the token alone, on one line')
    const runtime = await openRuntime(config)
    try {
      assert.deepEqual(await runtime.verifier.verify(token), {
        sub: 'agent-7',
        roles: ['agent', 'observer'],
        approvalRoles: [],
      })
    } finally {
      await runtime.closeStores()
    }
    const claims = decodeJwt(token)
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 30 * 60)
  })

  it("issues an approver's token with the roles it may approve in, 'approver' always among them", async () => {
    const { dir, config } = await preparedFolder('approver')
    const run = await cli(
      ['token', 'issue', '--sub', 'cab-1', '--role', 'approver', '--approval-role', 'change-board'],
      { DATA_DIR: dir },
    )
    assert.equal(run.code, 0, run.stderr)
    const runtime = await openRuntime(config)
    try {
      assert.deepEqual(await runtime.verifier.verify(run.stdout.trim()), {
        sub: 'cab-1',
        roles: ['approver'],
        approvalRoles: ['approver', 'change-board'],
      })
    } finally {
      await runtime.closeStores()
    }
    const refused = await cli(
      ['token', 'issue', '--sub', 'a', '--role', 'agent', '--approval-role', 'change-board'],
      { DATA_DIR: dir },
    )
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /--approval-role is for a token with --role approver/)
  })

  it('--json gives the token with its claims', async () => {
    const { dir, config } = await preparedFolder('json')
    const run = await cli(['token', 'issue', '--sub', 'auditor-1', '--role', 'auditor', '--json'], {
      DATA_DIR: dir,
    })
    assert.equal(run.code, 0, run.stderr)
    const json = JSON.parse(run.stdout)
    assert.equal(json.sub, 'auditor-1')
    assert.deepEqual(json.roles, ['auditor'])
    assert.equal(json.issuer, config.AUTH_ISSUER)
    assert.equal(json.expiresAt, new Date((decodeJwt(json.token).exp ?? 0) * 1000).toISOString())
    // the default lifetime is 24 hours
    const claims = decodeJwt(json.token)
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 24 * 3600)
  })

  it('refuses a lifetime beyond AUTH_MAX_TOKEN_LIFETIME, naming it, and issues up to it', async () => {
    const { dir } = await preparedFolder('lifetime')
    for (const expires of ['999999w', '25h']) {
      const run = await cli(['token', 'issue', '--sub', 'a', '--role', 'agent', '--expires', expires], {
        DATA_DIR: dir,
      })
      assert.equal(run.code, 2, run.stderr)
      assert.equal(run.stdout, '')
      assert.match(
        run.stderr,
        new RegExp(`--expires ${expires}: a token lives at most 1d \\(AUTH_MAX_TOKEN_LIFETIME\\)`),
      )
    }
    const longer = await cli(['token', 'issue', '--sub', 'a', '--role', 'agent', '--expires', '2d'], {
      DATA_DIR: dir,
      AUTH_MAX_TOKEN_LIFETIME: '7d',
    })
    assert.equal(longer.code, 0, longer.stderr)
    const claims = decodeJwt(longer.stdout.trim())
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 2 * 24 * 3600)
    const shorter = await cli(['token', 'issue', '--sub', 'a', '--role', 'agent'], {
      DATA_DIR: dir,
      AUTH_MAX_TOKEN_LIFETIME: '1h',
    })
    const short = decodeJwt(shorter.stdout.trim())
    assert.equal((short.exp ?? 0) - (short.iat ?? 0), 3600, 'without --expires: the maximum')
  })

  it('--audience issues a token for another audience, which the HTTP verifier refuses', async () => {
    const { dir, config } = await preparedFolder('audience')
    const run = await cli(
      [
        'token',
        'issue',
        '--sub',
        'publisher-1',
        '--role',
        'agent',
        '--audience',
        'kafka-publishers',
        '--json',
      ],
      { DATA_DIR: dir },
    )
    assert.equal(run.code, 0, run.stderr)
    const json = JSON.parse(run.stdout)
    assert.equal(json.audience, 'kafka-publishers')
    assert.equal(decodeJwt(json.token).aud, 'kafka-publishers')
    assert.equal(json.jti, decodeJwt(json.token).jti)
    const runtime = await openRuntime(config)
    try {
      await assert.rejects(runtime.verifier.verify(json.token), /unexpected "aud" claim value/)
    } finally {
      await runtime.closeStores()
    }
  })

  it('refuses when the key is missing, without creating one', async () => {
    const dir = mkdtempSync(join(root, 'no-key-'))
    const run = await cli(['token', 'issue', '--sub', 'a', '--role', 'agent'], { DATA_DIR: dir })
    assert.equal(run.code, 1)
    assert.equal(run.stdout, '')
    assert.match(
      run.stderr,
      /^governance-ledger: no token signing key at .*token-signing\.pem: start the service once/,
    )
    assert.equal(existsSync(join(dir, 'keys')), false)
  })

  it('refuses outside embedded auth', async () => {
    const { dir } = await preparedFolder('hs256')
    const run = await cli(['token', 'issue', '--sub', 'a', '--role', 'agent'], {
      DATA_DIR: dir,
      AUTH_MODE: 'hs256-development',
      AUTH_HS256_SECRET: 'x'.repeat(32),
    })
    assert.equal(run.code, 1)
    assert.match(run.stderr, /AUTH_MODE is hs256-development/)
  })

  it('exits 2 on a role that does not exist', async () => {
    const { dir } = await preparedFolder('bad-role')
    const run = await cli(['token', 'issue', '--sub', 'a', '--role', 'root'], { DATA_DIR: dir })
    assert.equal(run.code, 2)
    assert.match(run.stderr, /^governance-ledger: --role root: /)
  })
})

/** Starts the service, reads the URL it prints once and the bootstrap token it writes, checks it answers, stops it. */
const serveOnce = async (args: readonly string[], name: string) => {
  const dir = join(root, name)
  const child = start(args, { DATA_DIR: dir, PORT: '0', LOG_LEVEL: 'silent' })
  let stdout = ''
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const printed = await new Promise<{ url: string; path: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 30 s: ${stderr}`)), 30_000)
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const url = /URL:\s+(\S+)/.exec(stdout)?.[1]
      const path = /readable by this user only:\s+(\S+)/.exec(stdout)?.[1]
      if (url && path) {
        clearTimeout(timer)
        resolve({ url, path })
      }
    })
    child.on('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  const token = readFileSync(printed.path, 'utf8').trim()
  const health = await fetch(`${printed.url}/health`)
  const head = await fetch(`${printed.url}/v1/ledger/head`, { headers: { authorization: `Bearer ${token}` } })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  return {
    ...printed,
    dir,
    token,
    stdout,
    mode: statSync(printed.path).mode & 0o777,
    health: health.status,
    head: head.status,
    code: await exited,
    stderr,
  }
}

describe('cli serve', () => {
  // what npm start and the image run: the sources compiled by npm run build
  before(() => execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' }))

  for (const [how, args] of [
    ['governance-ledger serve', [BIN, 'serve']],
    ['the sources through tsx (src/main.ts)', ['--import', 'tsx', MAIN]],
    ['npm start (npm run build, then dist/src/main.js)', [join(ROOT, 'dist/src/main.js')]],
    [
      'the compiled command line in the image (dist/src/cli/run.js serve)',
      [join(ROOT, 'dist/src/cli/run.js'), 'serve'],
    ],
  ] as const) {
    it(`${how}: serves, writes the bootstrap token to a 0600 file it names, and exits 0 on SIGTERM`, async () => {
      const served = await serveOnce(args, how.replace(/\W+/g, '-'))
      assert.equal(served.health, 200)
      assert.match(served.stderr, /SIGTERM: draining requests and saving checkpoints/)
      assert.equal(served.code, 0)
      assert.equal(served.path, join(served.dir, 'bootstrap-admin.token'))
      assert.equal(served.mode, 0o600)
      assert.equal(served.head, 200, 'the token is a working admin token')
      assert.ok(!served.stdout.includes(served.token), 'the token itself is never printed')
      const claims = decodeJwt(served.token)
      assert.equal(claims.sub, 'bootstrap-admin')
      assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 24 * 3600, 'it lives the maximum lifetime')
      assert.equal(typeof claims.jti, 'string', 'so it can be revoked')
    })
  }

  it('writes the bootstrap token once: never over a file already there, never on a later start', async () => {
    /** runs the service from the sources until it serves, stops it; resolves all it printed on stdout */
    const startAndStop = async (dir: string) => {
      const child = start(['--import', 'tsx', MAIN], { DATA_DIR: dir, PORT: '0', LOG_LEVEL: 'info' })
      let stdout = ''
      const closed = new Promise((resolve) => child.on('close', resolve))
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no start within 30 s: ${stdout}`)), 30_000)
        child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk
          const serving = /"url":"([^"]+)"[^\n]*"msg":"governance-ledger is serving"/.exec(stdout)?.[1]
          if (serving) {
            clearTimeout(timer)
            resolve(serving)
          }
        })
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${stdout}`)))
      })
      // once it has answered a request, the start (banner and signal handlers) is complete
      assert.equal((await fetch(`${url}/health`)).status, 200)
      child.kill('SIGTERM')
      await closed
      return stdout
    }
    const planted = join(root, 'planted')
    mkdirSync(planted, { recursive: true })
    writeFileSync(join(planted, 'bootstrap-admin.token'), 'planted\n')
    const first = await startAndStop(planted)
    assert.match(
      first,
      /No bootstrap admin token: .*bootstrap-admin\.token already exists and was left as it is/,
    )
    assert.equal(readFileSync(join(planted, 'bootstrap-admin.token'), 'utf8'), 'planted\n')

    const fresh = join(root, 'twice')
    assert.match(await startAndStop(fresh), /readable by this user only/)
    const token = readFileSync(join(fresh, 'bootstrap-admin.token'), 'utf8')
    const second = await startAndStop(fresh)
    assert.doesNotMatch(second, /First start|bootstrap/i)
    assert.equal(
      readFileSync(join(fresh, 'bootstrap-admin.token'), 'utf8'),
      token,
      'the same file, untouched',
    )
  })
})
