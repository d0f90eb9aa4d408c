import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { createTokenVerifier, issueToken } from '../../src/auth/tokens.js'
import { loadConfig } from '../../src/config.js'

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
  const verifier = createTokenVerifier(config, { key, algorithms: ['EdDSA'] }, () => now)
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
  soon.advance(31_000)
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
