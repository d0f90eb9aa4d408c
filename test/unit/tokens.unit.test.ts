import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto'
import { describe, test } from 'node:test'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, SignJWT } from 'jose'
import { RevokedTokens } from '../../src/auth/revocations.js'
import {
  CLOCK_TOLERANCE_SECONDS,
  createTokenVerifier,
  issueToken,
  tokenKeyJwk,
  verifierKeys,
} from '../../src/auth/tokens.js'
import { loadConfig } from '../../src/config.js'
import type { UnsignedVerdict } from '../../src/decision/decide.js'
import { createVerdictSigner } from '../../src/decision/signer.js'
import { VERDICT_ISSUER } from '../../src/domain/signing.js'
import { consoleCsp, consoleSignInOf } from '../../src/http/console.js'
import type { StoredEvent } from '../../src/store/port.js'

const config = loadConfig({})
const { privateKey } = generateKeyPairSync('ed25519')
const publicKey = createPublicKey(privateKey)

/** a verifier on a fake clock whose key lookup counts the signatures it checks */
const verifierAt = (start: number) => {
  let now = start
  let checks = 0
  const key = async () => {
    checks += 1
    return publicKey
  }
  const verifier = createTokenVerifier(config, { key, algorithms: ['EdDSA'] }, { clock: () => now })
  return {
    verifier,
    checks: () => checks,
    advance: (ms: number) => {
      now += ms
    },
  }
}

test('a token verified once is trusted again for at most a minute, and never past its expiry', async () => {
  const token = await issueToken(privateKey, config, { sub: 'agent-1', roles: ['agent'], expiresIn: '2h' })
  const at = verifierAt(Date.now())
  const principal = { sub: 'agent-1', roles: ['agent'], approvalRoles: [] }
  assert.deepEqual(await at.verifier.verify(token), principal)
  assert.deepEqual(await at.verifier.verify(token), principal)
  assert.equal(at.checks(), 1, 'the second call was not verified again')
  at.advance(60_001)
  assert.deepEqual(await at.verifier.verify(token), principal)
  assert.equal(at.checks(), 2, 'after a minute the signature is checked again')

  const short = await issueToken(privateKey, config, { sub: 'agent-2', roles: ['agent'], expiresIn: '30s' })
  const soon = verifierAt(Date.now())
  await soon.verifier.verify(short)
  soon.advance(31_000 + CLOCK_TOLERANCE_SECONDS * 1000)
  await assert.rejects(soon.verifier.verify(short), /the token has expired/)
})

test('a token that fails verification is never trusted', async () => {
  const token = await issueToken(privateKey, config, { sub: 'agent-1', roles: ['agent'] })
  const [header, payload] = token.split('.')
  const forged = `${header}.${payload}.${'A'.repeat(86)}`
  const at = verifierAt(Date.now())
  await assert.rejects(at.verifier.verify(forged), /invalid token/)
  await assert.rejects(at.verifier.verify(forged), /invalid token/)
  assert.equal(at.checks(), 2)
})

/** A token signed with the test key, with exactly the claims given (no defaults). */
const signed = (claims: Record<string, unknown>) =>
  new SignJWT({
    roles: ['agent'],
    sub: 'agent-1',
    iss: config.AUTH_ISSUER,
    aud: config.AUTH_AUDIENCE,
    ...claims,
  })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .sign(privateKey)

const nowSeconds = () => Math.floor(Date.now() / 1000)
const DAY = 24 * 3600

describe('what a token must carry', () => {
  const verifier = () => createTokenVerifier(config, { key: publicKey, algorithms: ['EdDSA'] })

  test('a token without exp is refused, naming the claim', async () => {
    const token = await signed({ iat: nowSeconds(), jti: randomUUID() })
    await assert.rejects(verifier().verify(token), /invalid token: missing required "exp" claim/)
  })

  test('a token that lives 30,000 years is refused, naming the maximum', async () => {
    const iat = nowSeconds()
    const token = await signed({ iat, exp: iat + 30_000 * 365 * DAY, jti: randomUUID() })
    await assert.rejects(verifier().verify(token), /a token lives at most 1d \(AUTH_MAX_TOKEN_LIFETIME\)/)
  })

  test('a token without iat is refused: its lifetime cannot be told', async () => {
    const token = await signed({ exp: nowSeconds() + 3600, jti: randomUUID() })
    await assert.rejects(verifier().verify(token), /missing required "iat" claim/)
  })

  test('a token issued in the future is refused, however short its stated lifetime', async () => {
    const iat = nowSeconds() + 300 * 365 * DAY
    const token = await signed({ iat, exp: iat + 3600, jti: randomUUID() })
    await assert.rejects(verifier().verify(token), /"iat" claim timestamp check failed/)
    const beyond = nowSeconds() + CLOCK_TOLERANCE_SECONDS + 5
    const ahead = await signed({ iat: beyond, exp: beyond + 3600, jti: randomUUID() })
    await assert.rejects(verifier().verify(ahead), /"iat" claim timestamp check failed/)
  })

  test(`an issuer's clock up to ${CLOCK_TOLERANCE_SECONDS} s ahead is tolerated`, async () => {
    const iat = nowSeconds() + CLOCK_TOLERANCE_SECONDS - 2
    const token = await signed({ iat, exp: iat + 3600, jti: randomUUID() })
    assert.equal((await verifier().verify(token)).sub.length > 0, true)
  })

  test('the maximum lifetime itself is accepted, one second more is not', async () => {
    const iat = nowSeconds()
    const exact = await signed({ iat, exp: iat + DAY, jti: randomUUID() })
    assert.equal((await verifier().verify(exact)).sub, 'agent-1')
    const over = await signed({ iat, exp: iat + DAY + 1, jti: randomUUID() })
    await assert.rejects(verifier().verify(over), /at most 1d/)
    const shorter = loadConfig({ AUTH_MAX_TOKEN_LIFETIME: '1h' })
    const strict = createTokenVerifier(shorter, { key: publicKey, algorithms: ['EdDSA'] })
    await assert.rejects(strict.verify(exact), /a token lives at most 1h/)
  })

  test('a token without jti could never be revoked: refused unless AUTH_REQUIRE_JTI=false', async () => {
    const iat = nowSeconds()
    const token = await signed({ iat, exp: iat + 3600 })
    await assert.rejects(verifier().verify(token), /missing required "jti" claim/)
    const lenient = loadConfig({ AUTH_REQUIRE_JTI: 'false' })
    const accepting = createTokenVerifier(lenient, { key: publicKey, algorithms: ['EdDSA'] })
    assert.equal((await accepting.verify(token)).sub, 'agent-1')
    const odd = await signed({ iat, exp: iat + 3600, jti: 42 })
    await assert.rejects(accepting.verify(odd), /token claims: jti/)
  })
})

describe('issued tokens', () => {
  test('every token the service issues carries its own jti, iat and a lifetime within the maximum', async () => {
    const a = decodeJwt(await issueToken(privateKey, config, { sub: 'a', roles: ['agent'] }))
    const b = decodeJwt(await issueToken(privateKey, config, { sub: 'a', roles: ['agent'] }))
    assert.ok(typeof a.jti === 'string' && a.jti.length > 0)
    assert.notEqual(a.jti, b.jti)
    assert.equal((a.exp ?? 0) - (a.iat ?? 0), config.AUTH_MAX_TOKEN_LIFETIME, 'the default is the maximum')
    await assert.rejects(
      issueToken(privateKey, config, { sub: 'a', roles: ['agent'], expiresIn: '999999w' }),
      /a token lives at most 1d/,
    )
    await assert.rejects(issueToken(privateKey, config, { sub: 'a', roles: ['agent'], expiresIn: '1y' }))
  })

  test('a token for another audience is refused by the API verifier and accepted by a verifier for that audience', async () => {
    const keys = { key: publicKey, algorithms: ['EdDSA'] }
    const other = await issueToken(privateKey, config, { sub: 'a', roles: ['agent'], audience: 'publishers' })
    const api = createTokenVerifier(config, keys)
    await assert.rejects(api.verify(other), /unexpected "aud" claim value/)
    const publishers = createTokenVerifier({ ...config, AUTH_AUDIENCE: 'publishers' }, keys)
    assert.equal((await publishers.verify(other)).sub, 'a')
    await assert.rejects(
      publishers.verify(await issueToken(privateKey, config, { sub: 'a', roles: ['agent'] })),
      /unexpected "aud" claim value/,
    )
  })
})

describe('keys and key ids', () => {
  test('a token the service issues names the token key by its kid; the embedded verifier takes no other kid', async () => {
    const token = await issueToken(privateKey, config, { sub: 'agent-1', roles: ['agent'] })
    const kid = tokenKeyJwk(privateKey).kid
    assert.match(String(kid), /^token-ed25519-[0-9a-f]{16}$/)
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'EdDSA', typ: 'JWT', kid })
    const embedded = createTokenVerifier(config, verifierKeys(config, privateKey))
    assert.equal((await embedded.verify(token)).sub, 'agent-1')
    // a token issued before tokens named their key still verifies; one naming another key does not
    assert.equal(
      (await embedded.verify(await signed({ exp: nowSeconds() + 60, iat: nowSeconds(), jti: 'j-1' }))).sub,
      'agent-1',
    )
    const elsewhere = await new SignJWT({
      roles: ['agent'],
      sub: 'agent-1',
      iss: config.AUTH_ISSUER,
      aud: config.AUTH_AUDIENCE,
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: 'ed25519-0123456789abcdef' })
      .setIssuedAt()
      .setExpirationTime('1m')
      .setJti('j-2')
      .sign(privateKey)
    await assert.rejects(embedded.verify(elsewhere), /invalid token: ERR_JWKS_NO_MATCHING_KEY/)
  })

  test('a verdict is never a token, even one signed by a key of the JWKS tokens are checked against', async () => {
    // the worst case: a verifier whose JWKS holds the verdict key, whose issuer and audience the verdict names
    const signer = createVerdictSigner(privateKey)
    const now = new Date()
    const verdict = {
      verdictId: '01890a5d-ac96-774b-bcce-b302099a8057',
      proposalId: 'agent-1',
      executingIdentity: config.AUTH_AUDIENCE,
      decidedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 600_000).toISOString(),
      checks: [],
    } as unknown as UnsignedVerdict
    const jws = await signer.sign(verdict)
    const lenient = { ...config, AUTH_ISSUER: VERDICT_ISSUER, AUTH_REQUIRE_JTI: false }
    const keys = { key: createLocalJWKSet(await signer.jwks()), algorithms: ['EdDSA'] }
    await assert.rejects(
      createTokenVerifier(lenient, keys).verify(jws),
      /invalid token: a verdict is not a token/,
    )
  })
})

describe('revocation', () => {
  test('a revoked token is refused on its next request, even while it is trusted from the cache', async () => {
    const token = await issueToken(privateKey, config, { sub: 'agent-1', roles: ['agent'], expiresIn: '2h' })
    const jti = String(decodeJwt(token).jti)
    const revoked = new RevokedTokens(config.AUTH_MAX_TOKEN_LIFETIME)
    let checks = 0
    const key = async () => {
      checks += 1
      return publicKey
    }
    const verifier = createTokenVerifier(config, { key, algorithms: ['EdDSA'] }, { revoked })
    await verifier.verify(token)
    await verifier.verify(token)
    assert.equal(checks, 1, 'the second request was served from the cache')
    revoked.revoke(jti, new Date().toISOString())
    await assert.rejects(verifier.verify(token), /the token has been revoked/)
    assert.equal(checks, 1, 'refused from the cache, without verifying again')
    const other = await issueToken(privateKey, config, { sub: 'agent-1', roles: ['agent'] })
    assert.equal(
      (await verifier.verify(other)).sub,
      'agent-1',
      'another token of the same subject still works',
    )
  })

  test('a revocation is forgotten once no token it could name is young enough to be accepted', () => {
    const revoked = new RevokedTokens(3600)
    const recordedAt = Date.parse('2026-01-05T08:00:00.000Z')
    revoked.record(
      [revocationEvent('jti-1', recordedAt), revocationEvent('jti-2', recordedAt + 7200_000)],
      recordedAt,
    )
    assert.equal(
      revoked.has('jti-1', recordedAt + 3600_000),
      true,
      'kept while a token issued before it may live',
    )
    assert.equal(revoked.has('jti-3', recordedAt), false)
    // an hour of lifetime and five minutes of clock margin later
    const later = recordedAt + 3600_000 + 5 * 60_000 + 1
    assert.equal(revoked.has('jti-1', later), false)
    revoked.record([revocationEvent('jti-4', later)], later)
    assert.deepEqual(
      ['jti-1', 'jti-2', 'jti-4'].map((jti) => revoked.has(jti, later)),
      [false, true, true],
    )
    // recording prunes what can no longer matter: at jti-2's end only the revocation just recorded is left
    const end = recordedAt + 7200_000 + 3600_000 + 5 * 60_000
    revoked.record([revocationEvent('jti-5', end)], end)
    assert.equal(revoked.size, 1)
    assert.equal(revoked.has('jti-5', end), true)
  })
})

const revocationEvent = (jti: string, at: number): StoredEvent => ({
  id: randomUUID(),
  type: 'TokenRevoked',
  stream: 'token-revocations',
  streamVersion: 1,
  position: 1,
  recordedAt: new Date(at).toISOString(),
  data: { jti, reason: 'leaked' },
  metadata: { actor: 'admin-1', correlationId: null, causationId: null, idempotencyKey: null },
  prevHash: '0'.repeat(64),
  hash: '0'.repeat(64),
})

describe('configuration', () => {
  const issues = (env: Record<string, string>) => {
    try {
      loadConfig(env)
      return ''
    } catch (error) {
      return String(error)
    }
  }

  test('a JWKS URL is https; plain http only in the jwks-development mode; file:// never', () => {
    const https = 'https://idp.example.org/.well-known/jwks.json'
    const http = 'http://idp.example.org/.well-known/jwks.json'
    assert.equal(issues({ AUTH_MODE: 'jwks', AUTH_JWKS_URL: https }), '')
    assert.match(
      issues({ AUTH_MODE: 'jwks', AUTH_JWKS_URL: http }),
      /AUTH_JWKS_URL: an https:\/\/ URL \(plain http only with AUTH_MODE=jwks-development\)/,
    )
    assert.equal(issues({ AUTH_MODE: 'jwks-development', AUTH_JWKS_URL: http }), '')
    for (const mode of ['jwks', 'jwks-development'])
      assert.match(
        issues({ AUTH_MODE: mode, AUTH_JWKS_URL: 'file:///etc/jwks.json' }),
        /AUTH_JWKS_URL: an https:\/\/ URL, not file:/,
      )
    assert.match(
      issues({ AUTH_MODE: 'jwks-development' }),
      /AUTH_JWKS_URL: required when AUTH_MODE=jwks-development/,
    )
  })

  test('the console signs in at the identity provider only in the jwks modes, with an issuer URL and openid among the scopes', () => {
    const idp = {
      AUTH_JWKS_URL: 'https://idp.example.org/jwks',
      AUTH_ISSUER: 'https://idp.example.org/realms/acme',
    }
    const client = { CONSOLE_OIDC_CLIENT_ID: 'governance-console' }
    for (const mode of ['embedded', 'key-file', 'hs256-development'])
      assert.match(
        issues({ AUTH_MODE: mode, ...client }),
        new RegExp(`CONSOLE_OIDC_CLIENT_ID: only with AUTH_MODE=jwks or jwks-development: with ${mode}`),
      )
    assert.match(
      issues({ AUTH_MODE: 'jwks', AUTH_JWKS_URL: idp.AUTH_JWKS_URL, ...client }),
      /AUTH_ISSUER: "governance-ledger" is not a URL: with CONSOLE_OIDC_CLIENT_ID the console finds/,
    )
    assert.match(
      issues({ AUTH_MODE: 'jwks', ...idp, AUTH_ISSUER: 'http://idp.example.org', ...client }),
      /AUTH_ISSUER: an https:\/\/ URL \(plain http only with AUTH_MODE=jwks-development\)/,
    )
    assert.match(
      issues({ AUTH_MODE: 'jwks', ...idp, AUTH_ISSUER: 'https://idp.example.org/?tenant=a', ...client }),
      /AUTH_ISSUER: a URL with no query, fragment, user name or password/,
    )
    assert.match(
      issues({ AUTH_MODE: 'jwks', ...idp, ...client, CONSOLE_OIDC_SCOPES: 'profile email' }),
      /CONSOLE_OIDC_SCOPES: must include openid/,
    )
    assert.match(
      issues({ AUTH_MODE: 'jwks', ...idp, ...client, CONSOLE_OIDC_SCOPES: 'openid "x"' }),
      /CONSOLE_OIDC_SCOPES: "\\"x\\"" is not a scope/,
    )
    assert.match(
      issues({ AUTH_MODE: 'jwks', ...idp, CONSOLE_OIDC_CLIENT_ID: 'a client' }),
      /CONSOLE_OIDC_CLIENT_ID: printable ASCII, no spaces/,
    )
    // an issuer that is no URL is fine while the console does not sign in there
    assert.equal(issues({ AUTH_MODE: 'jwks', AUTH_JWKS_URL: idp.AUTH_JWKS_URL }), '')

    const plain = loadConfig({ AUTH_MODE: 'jwks', ...idp })
    assert.deepEqual(consoleSignInOf(plain), { oidc: null })
    assert.match(consoleCsp(consoleSignInOf(plain)), /connect-src 'self';/)
    const config = loadConfig({ AUTH_MODE: 'jwks', ...idp, ...client })
    assert.deepEqual(consoleSignInOf(config), {
      oidc: { issuer: idp.AUTH_ISSUER, clientId: 'governance-console', scopes: ['openid'] },
    })
    // the issuer's origin, not its path: a Content-Security-Policy source names an origin
    assert.match(consoleCsp(consoleSignInOf(config)), /connect-src 'self' https:\/\/idp.example.org;/)
    const scoped = loadConfig({
      AUTH_MODE: 'jwks',
      ...idp,
      ...client,
      CONSOLE_OIDC_SCOPES: ' openid  governance-ledger ',
    })
    assert.deepEqual(scoped.CONSOLE_OIDC_SCOPES, ['openid', 'governance-ledger'])
    const development = { AUTH_MODE: 'jwks-development', AUTH_JWKS_URL: 'http://127.0.0.1:9/jwks' }
    assert.equal(issues({ ...development, AUTH_ISSUER: 'http://127.0.0.1:9', ...client }), '')
  })

  test(`AUTH_ISSUER is never ${VERDICT_ISSUER}, the issuer of verdicts`, () => {
    assert.match(
      issues({ AUTH_ISSUER: VERDICT_ISSUER }),
      /AUTH_ISSUER: must not be governance-ledger\/decision/,
    )
  })

  test('the maximum token lifetime is a lifetime between a minute and 30 days, 24 hours by default', () => {
    assert.equal(loadConfig({}).AUTH_MAX_TOKEN_LIFETIME, 24 * 3600)
    assert.equal(loadConfig({ AUTH_MAX_TOKEN_LIFETIME: '90m' }).AUTH_MAX_TOKEN_LIFETIME, 5400)
    assert.match(issues({ AUTH_MAX_TOKEN_LIFETIME: '30s' }), /AUTH_MAX_TOKEN_LIFETIME: at least 1m/)
    assert.match(issues({ AUTH_MAX_TOKEN_LIFETIME: '31d' }), /AUTH_MAX_TOKEN_LIFETIME: at most 30d/)
    assert.match(
      issues({ AUTH_MAX_TOKEN_LIFETIME: 'forever' }),
      /AUTH_MAX_TOKEN_LIFETIME: a number and s, m, h, d or w/,
    )
    assert.match(issues({ AUTH_REQUIRE_JTI: 'maybe' }), /AUTH_REQUIRE_JTI/)
  })
})

test('while revocations cannot be checked (their feed has stopped), no token is taken, cached or not', async () => {
  const revoked = new RevokedTokens(config.AUTH_MAX_TOKEN_LIFETIME)
  const verifier = createTokenVerifier(config, { key: publicKey, algorithms: ['EdDSA'] }, { revoked })
  const token = await issueToken(privateKey, config, { sub: 'admin-1', roles: ['policy-admin'] })
  assert.equal((await verifier.verify(token)).sub, 'admin-1')
  revoked.unsureBecause = () => 'ledger tail: stopped: the ledger does not answer'
  await assert.rejects(verifier.verify(token), {
    code: 'unavailable',
    message: /revocations cannot be checked/,
  })
  const fresh = await issueToken(privateKey, config, { sub: 'admin-2', roles: ['policy-admin'] })
  await assert.rejects(verifier.verify(fresh), { code: 'unavailable' })
  revoked.unsureBecause = () => null
  assert.equal((await verifier.verify(token)).sub, 'admin-1')
})
