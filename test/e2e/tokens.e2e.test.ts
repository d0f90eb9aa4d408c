import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { chmodSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { decodeJwt, SignJWT } from 'jose'
import { loadPrivateKey } from '../../src/auth/tokens.js'
import { AdminClient } from '../../src/sdk/index.js'
import { eventually, type RunningService, startService } from '../support/service.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const DAY = 24 * 3600

describe('tokens against the running service', () => {
  let svc: RunningService
  const get = (token: string, path = '/v1/kill-switches') =>
    fetch(`${svc.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
  const revoke = (token: string, jti: string, reason = 'leaked') =>
    fetch(`${svc.url}/v1/token-revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jti, reason }),
    })
  const head = async () =>
    ((await (await get(svc.bootstrapToken, '/v1/ledger/head')).json()) as { position: number }).position
  /** a token signed with the service's own key, with exactly these claims */
  const signed = (claims: Record<string, unknown>) =>
    new SignJWT({
      sub: 'agent-x',
      roles: ['agent'],
      iss: 'governance-ledger',
      aud: 'governance-ledger',
      ...claims,
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
      .sign(loadPrivateKey(join(svc.dataDir, 'keys', 'token-signing.pem')))

  before(async () => {
    svc = await startService()
  })
  after(() => svc?.close())

  it('refuses a token without exp, or one that lives 30,000 years, with 401 and the reason', async () => {
    const iat = Math.floor(Date.now() / 1000)
    for (const [claims, reason] of [
      [{ iat, jti: randomUUID() }, /missing required "exp" claim/],
      [
        { iat, exp: iat + 30_000 * 365 * DAY, jti: randomUUID() },
        /a token lives at most 1d \(AUTH_MAX_TOKEN_LIFETIME\)/,
      ],
      [{ iat, exp: iat + 3600 }, /missing required "jti" claim/],
    ] as const) {
      const r = await get(await signed(claims))
      const body = (await r.json()) as { error: string; message: string }
      assert.equal(r.status, 401)
      assert.equal(body.error, 'unauthenticated')
      assert.match(body.message, reason)
    }
  })

  it('refuses a revoked token from its next request on; a revoked admin can revoke nothing in turn', async () => {
    const agent = await svc.tokenFor('agent-y', 'agent')
    assert.equal((await get(agent)).status, 200, 'verified, and trusted from the cache for a minute')
    const sent = Date.now()
    const admin = new AdminClient({ baseUrl: svc.url, token: svc.bootstrapToken })
    const answer = await admin.revokeToken({ jti: String(decodeJwt(agent).jti), reason: 'laptop lost' })
    assert.deepEqual(
      answer.events.map((e) => e.type),
      ['TokenRevoked'],
    )
    const refused = await eventually(
      'the revoked token refused',
      async () => ((await get(agent)).status === 401 ? Date.now() - sent : undefined),
      60_000,
    )
    console.log(`e2e: a revoked token was refused ${refused} ms after the revocation was sent`)

    const rogue = await svc.tokenFor('admin-rogue', 'policy-admin')
    const other = await svc.tokenFor('admin-other', 'policy-admin')
    assert.equal((await revoke(svc.bootstrapToken, String(decodeJwt(rogue).jti), 'rogue')).status, 201)
    await eventually('the rogue admin refused', async () =>
      (await get(rogue)).status === 401 ? true : undefined,
    )
    const before = await head()
    assert.equal((await revoke(rogue, String(decodeJwt(other).jti), 'revenge')).status, 401)
    assert.equal((await get(other)).status, 200)
    assert.equal(await head(), before, 'nothing appended')
  })

  it('an agent or an observer cannot revoke a token: 403, nothing appended', async () => {
    const victim = String(decodeJwt(await svc.tokenFor('admin-victim', 'policy-admin')).jti)
    const before = await head()
    for (const [sub, role] of [
      ['agent-z', 'agent'],
      ['observer-z', 'observer'],
    ] as const) {
      const r = await revoke(await svc.tokenFor(sub, role), victim)
      assert.equal(r.status, 403)
    }
    assert.equal(await head(), before)
  })

  it('keeps the data folder 0700 and its files 0600, and tightens a loosened one at the next start', async () => {
    const mode = (name: string) => statSync(join(svc.dataDir, name)).mode & 0o777
    assert.deepEqual(
      ['.', 'ledger.db', 'bootstrap-admin.token', 'keys'].map(mode),
      [0o700, 0o600, 0o600, 0o700],
    )
    chmodSync(svc.dataDir, 0o755)
    chmodSync(join(svc.dataDir, 'ledger.db'), 0o644)
    await svc.restart()
    assert.deepEqual(['.', 'ledger.db'].map(mode), [0o700, 0o600])
  })
})

describe('a JWKS over plain http', () => {
  it('stops the service at start, naming the variable, outside the jwks-development mode', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: join(tmpdir(), `never-created-${randomUUID()}`),
        AUTH_MODE: 'jwks',
        AUTH_JWKS_URL: 'http://idp.example.org/.well-known/jwks.json',
      },
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const code = await new Promise<number | null>((done) => child.on('exit', done))
    assert.equal(code, 2, stderr)
    assert.match(
      stderr,
      /AUTH_JWKS_URL: an https:\/\/ URL \(plain http only with AUTH_MODE=jwks-development\)/,
    )
  })
})
