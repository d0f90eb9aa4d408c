import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CompactSign, compactVerify, createLocalJWKSet } from 'jose'
import type { UnsignedVerdict } from '../../src/decision/decide.js'
import { createVerdictSigner, generateSigningKey, VERDICT_JWS_TYPE } from '../../src/decision/signer.js'
import { canonicalize } from '../../src/domain/canonical.js'

const verdict = {
  verdictId: '0190a0b0-0000-7000-8000-000000000001',
  checks: [{ check: 'authority', status: 'pass', reason: 'agent é holds execute' }],
  revision: 2,
} as unknown as UnsignedVerdict

test('a verdict signature is the compact JWS jose produces, byte for byte, and verifies against the JWKS', async () => {
  const key = generateSigningKey()
  const signer = createVerdictSigner(key)
  const signature = await signer.sign(verdict)
  const reference = await new CompactSign(new TextEncoder().encode(canonicalize(verdict)))
    .setProtectedHeader({ alg: 'EdDSA', kid: signer.keyId, typ: VERDICT_JWS_TYPE })
    .sign(key)
  assert.equal(signature, reference)
  const { payload, protectedHeader } = await compactVerify(signature, createLocalJWKSet(await signer.jwks()))
  assert.equal(new TextDecoder().decode(payload), canonicalize(verdict))
  assert.equal(protectedHeader.kid, signer.keyId)
  assert.equal(await signer.sign(verdict), signature, 'Ed25519 is deterministic: replay signs alike')
})
