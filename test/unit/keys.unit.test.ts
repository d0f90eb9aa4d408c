import assert from 'node:assert/strict'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { createTokenVerifier, issueToken, verifierKeys } from '../../src/auth/tokens.js'
import { verifierKeyOf } from '../../src/checkpoint/note.js'
import { parseCommandLine } from '../../src/cli/args.js'
import { checkpointOrigin, loadConfig } from '../../src/config.js'
import type { UnsignedVerdict } from '../../src/decision/decide.js'
import type { Decision } from '../../src/decision/replay.js'
import { inRecordedForm } from '../../src/decision/replay.js'
import { createVerdictSigner } from '../../src/decision/signer.js'
import { keyIdOf } from '../../src/domain/signing.js'
import {
  checkpointVerifierKeys,
  currentEntry,
  emptyKeyList,
  jwkOf,
  jwksOf,
  retiredTokenKeys,
  verdictJwks,
  withCurrentKey,
} from '../../src/keys/key-list.js'
import { sampleVerdict } from '../support/ledger-events.js'

const newKey = () => generateKeyPairSync('ed25519').privateKey
const at = (iso: string) => new Date(iso)
const T0 = at('2026-01-01T00:00:00.000Z')
const T1 = at('2026-01-02T00:00:00.000Z')
const T2 = at('2026-01-03T00:00:00.000Z')
const DAY = 86_400

describe('the key list', () => {
  it('records a key once, retires it when another takes its place, and makes it current again if it comes back', () => {
    const [a, b] = [newKey(), newKey()]
    const first = withCurrentKey(emptyKeyList(), 'verdict', a, T0)
    assert.equal(withCurrentKey(first, 'verdict', a, T1), first, 'the same key again changes nothing')
    const second = withCurrentKey(first, 'verdict', b, T1)
    assert.deepEqual(
      second.verdict.map((e) => [e.jwk.kid, e.since, e.retiredAt]),
      [
        [keyIdOf(a, 'verdicts'), T0.toISOString(), T1.toISOString()],
        [keyIdOf(b, 'verdicts'), T1.toISOString(), null],
      ],
    )
    assert.equal(currentEntry(second, 'verdict')?.jwk.kid, keyIdOf(b, 'verdicts'))
    const back = withCurrentKey(second, 'verdict', a, T2)
    assert.deepEqual(
      back.verdict.map((e) => [e.jwk.kid, e.retiredAt]),
      [
        [keyIdOf(b, 'verdicts'), T2.toISOString()],
        [keyIdOf(a, 'verdicts'), null],
      ],
    )
    // no token key: the one there was retires, and none is current
    const tokens = withCurrentKey(withCurrentKey(back, 'token', a, T0), 'token', null, T1)
    assert.equal(currentEntry(tokens, 'token'), undefined)
    assert.equal(tokens.token[0]?.retiredAt, T1.toISOString())
    assert.equal(withCurrentKey(tokens, 'token', null, T2), tokens)
  })

  it('keeps every checkpoint verifier key: a new key, or the same key under a new origin', () => {
    const [a, b] = [newKey(), newKey()]
    let list = withCurrentKey(emptyKeyList(), 'checkpoint', verifierKeyOf('governance-ledger', a), T0)
    list = withCurrentKey(list, 'checkpoint', verifierKeyOf('ledger.example.com/governance-ledger', a), T1)
    list = withCurrentKey(list, 'checkpoint', verifierKeyOf('ledger.example.com/governance-ledger', b), T2)
    assert.deepEqual(checkpointVerifierKeys(list), [
      verifierKeyOf('governance-ledger', a),
      verifierKeyOf('ledger.example.com/governance-ledger', a),
      verifierKeyOf('ledger.example.com/governance-ledger', b),
    ])
    assert.deepEqual(
      list.checkpoint.map((e) => e.retiredAt),
      [T1.toISOString(), T2.toISOString(), null],
    )
  })

  it('publishes every verdict key, current first, and a retired token key only while its tokens may live', () => {
    const [v1, v2, t1, t2, t3] = [newKey(), newKey(), newKey(), newKey(), newKey()]
    let list = withCurrentKey(emptyKeyList(), 'verdict', v1, T0)
    list = withCurrentKey(list, 'verdict', v2, T1)
    list = withCurrentKey(list, 'token', t1, T0)
    list = withCurrentKey(list, 'token', t2, T1)
    const kids = (now: Date) => jwksOf(list, now, DAY).keys.map((k) => k.kid)
    const [V1, V2, K1, K2, K3] = [
      keyIdOf(v1, 'verdicts'),
      keyIdOf(v2, 'verdicts'),
      keyIdOf(t1, 'tokens'),
      keyIdOf(t2, 'tokens'),
      keyIdOf(t3, 'tokens'),
    ]
    assert.deepEqual(kids(T1), [V2, V1, K2, K1])
    assert.deepEqual(kids(at('2026-01-02T23:59:59.000Z')), [V2, V1, K2, K1])
    assert.deepEqual(kids(T2), [V2, V1, K2], 'a day after its retirement no token of t1 is alive')
    assert.deepEqual(
      verdictJwks(list).keys.map((k) => k.kid),
      [V1, V2],
    )
    assert.deepEqual(
      [...retiredTokenKeys(list)].map(([kid, r]) => [kid, r.retiredAt]),
      [[K1, T1.getTime() / 1000]],
    )
    // rotated because it leaked: its tokens are refused at once, and the key is no longer published
    const revoked = withCurrentKey(list, 'token', t3, T1, { tokensRevoked: true })
    assert.deepEqual(
      jwksOf(revoked, T1, DAY).keys.map((k) => k.kid),
      [V2, V1, K3, K1],
    )
    assert.deepEqual([...retiredTokenKeys(revoked).keys()], [K1])
  })
})

describe('a token signed by a retired token key', () => {
  const config = loadConfig({})
  const [old, current] = [newKey(), newKey()]
  const retiredAt = Math.floor(T1.getTime() / 1000)
  const retired = new Map([[keyIdOf(old, 'tokens'), { jwk: jwkOf('token', old), retiredAt }]])
  const verifierAt = (now: Date, keys = retired) =>
    createTokenVerifier(config, verifierKeys(config, current, keys), { clock: () => now.getTime() })
  const token = (iat: number, kid: string | null = keyIdOf(old, 'tokens')) =>
    new SignJWT({ roles: ['auditor'] })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', ...(kid ? { kid } : {}) })
      .setSubject('auditor-1')
      .setIssuer(config.AUTH_ISSUER)
      .setAudience(config.AUTH_AUDIENCE)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(old)

  it('is taken when it was issued before the key retired, until it expires', async () => {
    const before = await token(retiredAt - 60)
    const principal = await verifierAt(at('2026-01-02T00:10:00.000Z')).verify(before)
    assert.equal(principal.sub, 'auditor-1')
    await assert.rejects(verifierAt(at('2026-01-02T01:00:00.000Z')).verify(before), /expired/)
  })

  it('is refused when it was issued after the key retired, when it names no kid, or once its tokens are revoked', async () => {
    const now = at('2026-01-02T00:10:00.000Z')
    await assert.rejects(
      verifierAt(now).verify(await token(retiredAt + 1)),
      /issued after its key was retired/,
    )
    // a token naming no kid is checked against the current key alone
    await assert.rejects(verifierAt(now).verify(await token(retiredAt - 60, null)), /invalid token/)
    await assert.rejects(verifierAt(now, new Map()).verify(await token(retiredAt - 60)), /invalid token/)
    // the current key's tokens, with or without a kid, pass as before
    const fresh = await issueToken(current, config, { sub: 'auditor-2', roles: ['auditor'] })
    assert.equal((await verifierAt(new Date()).verify(fresh)).sub, 'auditor-2')
  })
})

describe('replay of verdicts signed with a retired verdict key', () => {
  const verdict: UnsignedVerdict = sampleVerdict({
    revision: 1,
    checks: [{ check: 'authority', status: 'pass', reason: 'ok' }],
  })
  const decision = (data: unknown): Decision => ({
    stream: 's',
    type: 'VerdictIssued',
    data,
    causationId: 'c',
  })

  it('takes the recorded signature when a known verdict key signed exactly the replayed fields', async () => {
    const [old, current] = [createVerdictSigner(newKey()), createVerdictSigner(newKey())]
    const recorded = decision({ ...verdict, signature: await old.sign(verdict) })
    const keys = { keys: [...(await old.jwks()).keys, ...(await current.jwks()).keys] }
    const replayed = decision({ ...verdict, signature: await current.sign(verdict) })
    assert.deepEqual(await inRecordedForm([replayed], [recorded], current, keys), [recorded])
    // the old key unknown, or other fields replayed: the replayed answer stands, and the difference shows
    assert.deepEqual(await inRecordedForm([replayed], [recorded], current, await current.jwks()), [replayed])
    const other = decision({
      ...verdict,
      decision: 'block',
      signature: await current.sign({ ...verdict, decision: 'block' }),
    })
    assert.deepEqual(await inRecordedForm([other], [recorded], current, keys), [other])
  })
})

describe('key settings', () => {
  it('derives the checkpoint origin from PUBLIC_URL, and takes CHECKPOINT_ORIGIN as it is', () => {
    assert.equal(checkpointOrigin(loadConfig({})), 'governance-ledger')
    assert.equal(
      checkpointOrigin(loadConfig({ PUBLIC_URL: 'https://ledger.example.com:8443/gl/' })),
      'ledger.example.com:8443/governance-ledger',
    )
    assert.equal(
      checkpointOrigin(loadConfig({ CHECKPOINT_ORIGIN: 'example.com/log42' })),
      'example.com/log42',
    )
    assert.throws(() => loadConfig({ CHECKPOINT_ORIGIN: 'a b' }), /CHECKPOINT_ORIGIN: a key name/)
  })

  it('takes a signing command as words or as a JSON array, with its verifier key named as the origin', () => {
    const vkey = verifierKeyOf('governance-ledger', newKey())
    const words = loadConfig({
      CHECKPOINT_SIGN_COMMAND: 'kms-sign --key  checkpoints',
      CHECKPOINT_VERIFIER_KEY: vkey,
    })
    assert.deepEqual(words.CHECKPOINT_SIGN_COMMAND, ['kms-sign', '--key', 'checkpoints'])
    const array = loadConfig({
      CHECKPOINT_SIGN_COMMAND: '["/opt/my signer", "a b"]',
      CHECKPOINT_VERIFIER_KEY: vkey,
    })
    assert.deepEqual(array.CHECKPOINT_SIGN_COMMAND, ['/opt/my signer', 'a b'])
    assert.throws(() => loadConfig({ CHECKPOINT_SIGN_COMMAND: 'kms-sign' }), /go together/)
    assert.throws(() => loadConfig({ CHECKPOINT_VERIFIER_KEY: vkey }), /go together/)
    assert.throws(
      () =>
        loadConfig({
          CHECKPOINT_SIGN_COMMAND: 'kms-sign',
          CHECKPOINT_VERIFIER_KEY: vkey,
          CHECKPOINT_KEY_FILE: '/k',
        }),
      /not both/,
    )
    assert.throws(
      () =>
        loadConfig({
          CHECKPOINT_SIGN_COMMAND: 'kms-sign',
          CHECKPOINT_VERIFIER_KEY: verifierKeyOf('other', newKey()),
        }),
      /named other, but checkpoints are signed in the name of their origin, governance-ledger/,
    )
    assert.throws(
      () => loadConfig({ CHECKPOINT_SIGN_COMMAND: 'a', CHECKPOINT_VERIFIER_KEY: 'x+00000000+AA==' }),
      /CHECKPOINT_VERIFIER_KEY/,
    )
  })

  it('refuses one file for two keys, and a token key file without embedded tokens', () => {
    assert.throws(
      () => loadConfig({ VERDICT_KEY_FILE: '/k.pem', CHECKPOINT_KEY_FILE: '/k.pem' }),
      /CHECKPOINT_KEY_FILE: the same file as VERDICT_KEY_FILE/,
    )
    assert.throws(
      () => loadConfig({ TOKEN_KEY_FILE: '/t.pem', AUTH_MODE: 'key-file', AUTH_PUBLIC_KEY_FILE: '/p.pem' }),
      /TOKEN_KEY_FILE: only with AUTH_MODE=embedded/,
    )
  })

  it('reads keys rotate from the command line', () => {
    assert.deepEqual(parseCommandLine(['keys', 'rotate', '--key', 'token', '--revoke-tokens']), {
      command: 'keys rotate',
      key: 'token',
      revokeTokens: true,
      json: false,
      dataDir: undefined,
    })
    assert.throws(() => parseCommandLine(['keys', 'rotate']), /--key is required/)
    assert.throws(() => parseCommandLine(['keys', 'rotate', '--key', 'master']), /--key/)
    assert.throws(
      () => parseCommandLine(['keys', 'rotate', '--key', 'verdict', '--revoke-tokens']),
      /for --key token/,
    )
    assert.throws(() => parseCommandLine(['keys', 'spin']), /unknown subcommand 'spin'/)
  })
})
