// A verdict and a token from the real service, checked with a standard JOSE library (fast-jwt, not the library
// the service signs with) against the keys its JWKS route publishes, as an integrator's executor would.
import assert from 'node:assert/strict'
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { createVerifier, type TokenError, type VerifierOptions } from 'fast-jwt'
import { verifyVerdictSignature } from '../../src/sdk/index.js'
import type { Verdict } from '../../src/sdk/types.js'
import { SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'

type Jwk = JsonWebKey & { kid: string; alg: string; use: string }

/** The registered claims every verdict carries, and the issuer they name. */
const CLAIMS = ['iss', 'sub', 'aud', 'iat', 'exp', 'jti']
const ISSUER = 'governance-ledger/decision'

const codeOf = (run: () => unknown): string => {
  try {
    run()
    return 'accepted'
  } catch (error) {
    return (error as TokenError).code
  }
}

describe('a verdict and a token, verified with a standard library against the JWKS', () => {
  let api: TestApi
  let jwks: Jwk[]
  let verdict: Verdict
  let token: string
  /** the PEM of the JWKS key a JWS names by its kid */
  const keyFor = (kid: unknown): string => {
    const jwk = jwks.find((k) => k.kid === kid)
    if (!jwk) throw new Error(`no key ${String(kid)} in the JWKS`)
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
  }
  const kidOf = (jws: string): unknown =>
    JSON.parse(Buffer.from(jws.split('.')[0] ?? '', 'base64url').toString('utf8')).kid
  /** what an executor running as the verdict's identity checks, with the key its kid names */
  const verdictVerifier = (options: Partial<VerifierOptions & { key: string }> = {}) => {
    const verify = createVerifier({
      key: keyFor(kidOf(verdict.signature)),
      algorithms: ['EdDSA'],
      checkTyp: 'verdict+jwt',
      allowedIss: ISSUER,
      allowedAud: verdict.executingIdentity,
      allowedSub: verdict.proposalId,
      requiredClaims: CLAIMS,
      ...options,
    })
    return (jws: string) => verify(jws) as Record<string, unknown>
  }

  before(async () => {
    api = await startTestApi()
    await seedWorld(api)
    const proposed = await api.as('agent-1', 'agent').post('/v1/proposals', {
      agentId: 'agent-1',
      executingIdentity: SEED.executingIdentity,
      tool: 'cache',
      action: 'flush',
      resource: SEED.resource,
      environment: 'production',
      plan: { flush: 'all' },
      expectedImpact: 'low',
      snapshot: { version: 'v1' },
    })
    assert.equal(proposed.statusCode, 201, proposed.body)
    await api.settle()
    const read = await api
      .as(SEED.executor, 'executor')
      .get(`/v1/proposals/${proposed.json().proposalId}/verdict`)
    assert.equal(read.statusCode, 200, read.body)
    verdict = read.json().verdict
    assert.equal(verdict.decision, 'allow')
    jwks = (await api.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys
    token = await api.tokenFor(SEED.executor, 'executor')
  })
  after(() => api.close())

  it('publishes the verdict key and the token key, each with its kid, alg and use, and no private part', () => {
    assert.deepEqual(
      jwks.map((k) => ({ kty: k.kty, crv: k.crv, alg: k.alg, use: k.use, kid: k.kid })),
      [
        { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: api.runtime.verdictSigner.keyId },
        { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: kidOf(token) },
      ],
    )
    assert.match(String(kidOf(token)), /^token-ed25519-/)
    assert.ok(jwks.every((k) => k.d === undefined))
  })

  it('verifies the verdict, whose payload is its fields and the registered claims they give', () => {
    const payload = verdictVerifier()(verdict.signature)
    const { iss, sub, aud, iat, exp, jti, ...fields } = payload
    assert.deepEqual(
      { iss, sub, aud, iat, exp, jti },
      {
        iss: ISSUER,
        sub: verdict.proposalId,
        aud: SEED.executingIdentity,
        iat: Math.floor(Date.parse(verdict.decidedAt) / 1000),
        exp: Math.floor(Date.parse(verdict.expiresAt) / 1000),
        jti: verdict.verdictId,
      },
    )
    const {
      signature: _signature,
      position: _position,
      revoked: _revoked,
      expired: _expired,
      ...signed
    } = verdict as Verdict & { position?: number; revoked?: boolean; expired?: boolean }
    assert.deepEqual(fields, signed, 'every field of the verdict is signed, and nothing else')
    assert.equal('revoked' in fields || 'expired' in fields || 'position' in fields, false)
  })

  it('expires it at exp, which is never after the expiresAt of the verdict', () => {
    const exp = Math.floor(Date.parse(verdict.expiresAt) / 1000)
    assert.ok(exp * 1000 <= Date.parse(verdict.expiresAt))
    // fast-jwt takes the instant exp itself as the last it accepts
    assert.equal(
      codeOf(() => verdictVerifier({ clockTimestamp: exp * 1000 })(verdict.signature)),
      'accepted',
    )
    assert.equal(
      codeOf(() => verdictVerifier({ clockTimestamp: exp * 1000 + 1 })(verdict.signature)),
      'FAST_JWT_EXPIRED',
    )
  })

  it('refuses it for another identity, another issuer or another proposal', () => {
    for (const options of [
      { allowedAud: 'svc-someone-else' },
      { allowedIss: 'governance-ledger' },
      { allowedSub: 'proposal-2' },
    ]) {
      assert.equal(
        codeOf(() => verdictVerifier(options)(verdict.signature)),
        'FAST_JWT_INVALID_CLAIM_VALUE',
        JSON.stringify(options),
      )
    }
  })

  it('refuses a verdict with its payload changed', () => {
    const [header, payload, signature] = verdict.signature.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    for (const change of [{ exp: claims.exp + 3600 }, { resource: 'database/payments-primary' }]) {
      const forged = Buffer.from(JSON.stringify({ ...claims, ...change })).toString('base64url')
      assert.equal(
        codeOf(() => verdictVerifier()(`${header}.${forged}.${signature}`)),
        'FAST_JWT_INVALID_SIGNATURE',
      )
    }
  })

  it('verifies a token the service issued against the key its kid names, as a token', () => {
    const verify = createVerifier({
      key: keyFor(kidOf(token)),
      algorithms: ['EdDSA'],
      checkTyp: 'JWT',
      allowedIss: api.config.AUTH_ISSUER,
      allowedAud: api.config.AUTH_AUDIENCE,
      requiredClaims: ['exp', 'iat', 'jti'],
    })
    assert.equal((verify(token) as { sub: string }).sub, SEED.executor)
    // a verdict is no token: its typ, its key, its issuer and its audience all differ
    assert.equal(
      codeOf(() => verify(verdict.signature)),
      'FAST_JWT_INVALID_SIGNATURE',
    )
    const withVerdictKey = createVerifier({ key: keyFor(kidOf(verdict.signature)), checkTyp: 'JWT' })
    assert.equal(
      codeOf(() => withVerdictKey(verdict.signature)),
      'FAST_JWT_INVALID_TYPE',
    )
  })

  it('refuses a token as a verdict, in a standard library, in the SDK and the other way round in the service', async () => {
    assert.equal(
      codeOf(() => verdictVerifier({ key: keyFor(kidOf(token)) })(token)),
      'FAST_JWT_INVALID_TYPE',
    )
    const sdk = await verifyVerdictSignature({ ...verdict, signature: token }, { keys: jwks })
    assert.equal(sdk.ok, false)
    assert.match(sdk.ok ? '' : sdk.message, /of type JWT, not a verdict/)
    const asBearer = await api.app.inject({
      method: 'GET',
      url: '/v1/kill-switches',
      headers: { authorization: `Bearer ${verdict.signature}` },
    })
    assert.equal(asBearer.statusCode, 401)
    assert.match(asBearer.json().message, /a verdict is not a token/)
  })

  it('never publishes an HS256 secret: a development JWKS holds the verdict key alone', async () => {
    const development = await startTestApi({
      AUTH_MODE: 'hs256-development',
      AUTH_HS256_SECRET: 'a development secret of 32 characters or more',
    })
    try {
      const keys = (await development.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
        .keys
      assert.deepEqual(
        keys.map((k: Jwk) => k.kid),
        [development.runtime.verdictSigner.keyId],
      )
      assert.ok(keys.every((k: Jwk) => k.kty === 'OKP' && k.k === undefined))
    } finally {
      await development.close()
    }
  })
})
