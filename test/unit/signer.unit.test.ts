import assert from 'node:assert/strict'
import { createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { CompactSign, compactVerify, createLocalJWKSet } from 'jose'
import { issueToken, tokenKeyJwk } from '../../src/auth/tokens.js'
import { loadConfig } from '../../src/config.js'
import type { UnsignedVerdict } from '../../src/decision/decide.js'
import { createVerdictSigner, generateSigningKey, verifyVerdictSignature } from '../../src/decision/signer.js'
import { canonicalize } from '../../src/domain/canonical.js'
import { VerdictIssued } from '../../src/domain/events.js'
import {
  FIELDS_ONLY_VERDICT_JWS_TYPE,
  VERDICT_ISSUER,
  VERDICT_JWS_TYPE,
  verdictClaims,
} from '../../src/domain/signing.js'
import { sampleVerdict } from '../support/ledger-events.js'

const verdict: UnsignedVerdict = sampleVerdict()

/** Ends in 999 ms: exp is rounded down, so a standard library never accepts a verdict past its expiresAt. */
const CLAIMS = {
  iss: VERDICT_ISSUER,
  sub: 'proposal-1',
  aud: 'svc-deployer',
  iat: Date.parse('2025-06-01T11:59:00.000Z') / 1000,
  exp: Date.parse('2025-06-01T12:09:00.000Z') / 1000,
  jti: '01890a5d-ac96-774b-bcce-b302099a8057',
}

describe('the verdict JWS', () => {
  it('is the compact JWS jose produces over the fields and the registered claims, byte for byte', async () => {
    const key = generateSigningKey()
    const signer = createVerdictSigner(key)
    const signature = await signer.sign(verdict)
    const reference = await new CompactSign(new TextEncoder().encode(canonicalize({ ...verdict, ...CLAIMS })))
      .setProtectedHeader({ alg: 'EdDSA', kid: signer.keyId, typ: VERDICT_JWS_TYPE })
      .sign(key)
    assert.equal(signature, reference)
    assert.deepEqual(verdictClaims(verdict), CLAIMS)
    const { payload, protectedHeader } = await compactVerify(
      signature,
      createLocalJWKSet(await signer.jwks()),
    )
    assert.deepEqual(protectedHeader, { alg: 'EdDSA', kid: signer.keyId, typ: 'verdict+jwt' })
    assert.deepEqual(JSON.parse(new TextDecoder().decode(payload)), { ...verdict, ...CLAIMS })
    assert.equal(await signer.sign(verdict), signature, 'Ed25519 is deterministic: replay signs alike')
    assert.deepEqual(await verifyVerdictSignature({ ...verdict, signature }, await signer.jwks()), verdict)
  })

  it('signed before the registered claims, it still verifies, and re-signs to the very bytes recorded', async () => {
    // a verdict and its signature as the earlier signer wrote them into a ledger, with the key it used
    const key = createPrivateKey(
      '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKm5q9sjBAVpXUXWK8ooyZhmCfv4VBfFsnPndppx9Btq\n-----END PRIVATE KEY-----\n',
    )
    const recorded = { ...verdict, expiresAt: '2025-06-01T12:09:00.000Z' }
    const signature = [
      'eyJhbGciOiJFZERTQSIsImtpZCI6ImVkMjU1MTktMjFjMDEyYzE3MWIyZWQ3MSIsInR5cCI6InZlcmRpY3QrandzIn0',
      'eyJhY3Rpb24iOiJzY2FsZSIsImFjdGlvbkRpZ2VzdCI6InNoYTI1NjoxMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTExIiwiYWdlbnRJZCI6ImExIiwiYmFzZWRPbkV2ZW50SWQiOiIwMTg5MGE1ZC1hYzk2LTc3NGItYmNjZS1iMzAyMDk5YTgwNTgiLCJjaGVja3MiOlt7ImNoZWNrIjoiYXV0aG9yaXR5IiwicmVhc29uIjoiYWdlbnQgYTEgaG9sZHMgJ2V4ZWN1dGUnIGluIHByb2R1Y3Rpb24iLCJzdGF0dXMiOiJwYXNzIn1dLCJkZWNpZGVkQXQiOiIyMDI1LTA2LTAxVDExOjU5OjAwLjAwMFoiLCJkZWNpc2lvbiI6ImFsbG93IiwiZW52aXJvbm1lbnQiOiJwcm9kdWN0aW9uIiwiZXhlY3V0aW5nSWRlbnRpdHkiOiJzdmMtZGVwbG95ZXIiLCJleHBpcmVzQXQiOiIyMDI1LTA2LTAxVDEyOjA5OjAwLjAwMFoiLCJpbXBhY3QiOiJoaWdoIiwicGxhbkhhc2giOiJzaGEyNTY6MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMCIsInBvbGljeVZlcnNpb24iOjEsInByb3Bvc2FsSWQiOiJwcm9wb3NhbC0xIiwicmVzb3VyY2UiOiJkZXBsb3ltZW50L3dlYi1hIiwicmVzb3VyY2VWZXJzaW9uIjoidjciLCJyZXZpc2lvbiI6Miwic3VwZXJzZWRlcyI6bnVsbCwidG9vbCI6Imt1YmVjdGwiLCJ2ZXJkaWN0SWQiOiIwMTg5MGE1ZC1hYzk2LTc3NGItYmNjZS1iMzAyMDk5YTgwNTcifQ',
      'fNHuS1C9k6KFEROIZ2y7cwDfMH14V3N_lQhWNpu3XKRpLF_iuRWaNlFnFPcjOzT4ovUZVqvi3OFw3OiJsxQgAQ',
    ].join('.')
    const signer = createVerdictSigner(key)
    assert.equal(signer.keyId, 'ed25519-21c012c171b2ed71', 'the key id is the one the recorded header names')
    assert.equal(await signer.sign(recorded, FIELDS_ONLY_VERDICT_JWS_TYPE), signature)
    assert.deepEqual(await verifyVerdictSignature({ ...recorded, signature }, await signer.jwks()), recorded)
    await assert.rejects(
      verifyVerdictSignature({ ...recorded, revision: 3, signature }, await signer.jwks()),
      /not this verdict/,
    )
    assert.notEqual(await signer.sign(recorded), signature, 'new verdicts carry the claims')
  })

  it('verifies only when its claims agree with the fields, its typ is a verdict and its key the verdict key', async () => {
    const key = generateSigningKey()
    const signer = createVerdictSigner(key)
    const tokenKey = generateSigningKey()
    // the service's whole JWKS: the verdict key and the token key
    const jwks = { keys: [...(await signer.jwks()).keys, tokenKeyJwk(tokenKey)] }
    const sign = (payload: unknown, header: Record<string, string>, by = key) =>
      new CompactSign(new TextEncoder().encode(canonicalize(payload)))
        .setProtectedHeader({ alg: 'EdDSA', kid: signer.keyId, typ: VERDICT_JWS_TYPE, ...header })
        .sign(by)
    const refused = async (signature: string, why: RegExp) =>
      assert.rejects(verifyVerdictSignature({ ...verdict, signature }, jwks), why)

    assert.deepEqual(
      await verifyVerdictSignature(
        { ...verdict, signature: await sign({ ...verdict, ...CLAIMS }, {}) },
        jwks,
      ),
      verdict,
    )
    for (const claim of [
      { exp: CLAIMS.exp + 3600 },
      { aud: 'svc-root' },
      { sub: 'proposal-2' },
      { iss: 'governance-ledger' },
      { jti: 'another' },
      { iat: CLAIMS.iat - 1 },
    ]) {
      await refused(await sign({ ...verdict, ...CLAIMS, ...claim }, {}), /not this verdict/)
    }
    const { exp: _exp, ...noExp } = CLAIMS
    await refused(await sign({ ...verdict, ...noExp }, {}), /not this verdict/)
    await refused(await sign({ ...verdict, ...CLAIMS }, { typ: 'JWT' }), /of type JWT, not a verdict/)
    // the token key is in the JWKS, and signs the very payload: still no verdict
    const tokenKid = String(tokenKeyJwk(tokenKey).kid)
    await refused(
      await sign({ ...verdict, ...CLAIMS }, { kid: tokenKid }, tokenKey),
      /names key token-ed25519-[0-9a-f]{16}, not a verdict key/,
    )
    // nor is a token the service issues with that key
    const token = await issueToken(tokenKey, loadConfig({}), { sub: 'svc-deployer', roles: ['executor'] })
    await refused(token, /of type JWT, not a verdict/)
  })
})

it('the operations guide lists exactly the fields a verdict signs, and every claim', () => {
  const guide = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
  const section = guide.slice(guide.indexOf('## Verifying a verdict'), guide.indexOf('**Not signed:**'))
  const payload = section.slice(section.indexOf('**The payload**'), section.indexOf('together with'))
  const listed = [...payload.matchAll(/`(\w+)`/g)].map((m) => m[1])
  const fields = Object.keys(VerdictIssued.shape.data.shape).filter((f) => f !== 'signature')
  assert.deepEqual([...listed].sort(), [...fields].sort())
  const claims = [...section.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1])
  assert.deepEqual(claims.sort(), Object.keys(CLAIMS).sort())
})
