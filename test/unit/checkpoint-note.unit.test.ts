import assert from 'node:assert/strict'
import { generateKeyPairSync, sign } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  CheckpointError,
  type CheckpointProblem,
  checkpointBody,
  keyHash,
  MAX_NOTE_BYTES,
  type NoteSigner,
  openCheckpoint,
  openNote,
  parseCheckpointBody,
  parseSignerKey,
  parseVerifierKey,
  rawPublicKey,
  signerKeyOf,
  signNote,
  verifierKeyOf,
} from '../../src/checkpoint/note.js'

// The vectors the Go reference implementation of signed notes (sumdb/note) tests itself with.
const PETER_SIGNER = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'
const PETER = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'
const ENOCH = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop'
const TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
const PETER_SIG =
  '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n'
const ENOCH_SIG =
  '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n'
const peter = {
  name: 'PeterNeumann',
  hash: 0xc74f20a3,
  base64: 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=',
}
const enoch = {
  name: 'EnochRoot',
  hash: 0xaf0cfe78,
  base64: 'rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=',
}

/** A signer over a local key, as the service's own. */
const localSigner = (signerKey: string): NoteSigner => {
  const { name, privateKey } = parseSignerKey(signerKey)
  return {
    name,
    verifierKey: verifierKeyOf(name, privateKey),
    sign: async (message) => new Uint8Array(sign(null, message, privateKey)),
  }
}

const fails = (run: () => unknown, reason: CheckpointProblem, message?: RegExp) =>
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof CheckpointError, String(error))
    assert.equal(error.reason, reason, error.message)
    if (message) assert.match(error.message, message)
    return true
  })

describe('note keys', () => {
  it('reads the reference verifier and signer keys, and derives the one from the other', () => {
    const key = parseVerifierKey(PETER)
    assert.equal(key.name, 'PeterNeumann')
    assert.equal(key.hash, 0xc74f20a3)
    assert.equal(key.publicKey.length, 32)
    const { name, privateKey } = parseSignerKey(PETER_SIGNER)
    assert.equal(verifierKeyOf(name, privateKey), PETER)
    assert.equal(signerKeyOf(name, privateKey), PETER_SIGNER)
    // the key hash is SHA-256(name || 0x0A || 0x01 || public key), its first 4 bytes big-endian
    assert.equal(keyHash('PeterNeumann', key.publicKey), 0xc74f20a3)
  })

  it('refuses every truncation and every single-character change of a verifier key', () => {
    let refused = 0
    for (let i = 0; i <= PETER.length; i++)
      for (let j = i + 1; j <= PETER.length; j++) {
        if (i === 0 && j === PETER.length) continue
        fails(() => parseVerifierKey(PETER.slice(i, j)), 'invalid-key')
        refused += 1
      }
    for (let i = 0; i < PETER.length; i++) {
      const changed = `${PETER.slice(0, i)}${String.fromCharCode(PETER.charCodeAt(i) + 1)}${PETER.slice(i + 1)}`
      fails(() => parseVerifierKey(changed), 'invalid-key')
      refused += 1
    }
    assert.ok(refused > 2000)
    // a key of the wrong length, and of an unknown algorithm, each with its hash adjusted
    fails(
      () => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='),
      'invalid-key',
    )
    fails(
      () => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
      'invalid-key',
      /unknown algorithm/,
    )
  })

  it('refuses every truncation and every single-character change of a signer key', () => {
    for (let i = 0; i <= PETER_SIGNER.length; i++)
      for (let j = i + 1; j <= PETER_SIGNER.length; j++) {
        if (i === 0 && j === PETER_SIGNER.length) continue
        fails(() => parseSignerKey(PETER_SIGNER.slice(i, j)), 'invalid-key')
      }
    for (let i = 0; i < PETER_SIGNER.length; i++) {
      const s = PETER_SIGNER
      fails(
        () => parseSignerKey(`${s.slice(0, i)}${String.fromCharCode(s.charCodeAt(i) + 1)}${s.slice(i + 1)}`),
        'invalid-key',
      )
    }
  })

  it('a fresh key round-trips through both formats; a name with a space or a plus is none', () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    const vkey = verifierKeyOf('example.com/log', privateKey)
    assert.deepEqual(parseVerifierKey(vkey).publicKey, rawPublicKey(privateKey))
    const again = parseSignerKey(signerKeyOf('example.com/log', privateKey))
    assert.equal(verifierKeyOf(again.name, again.privateKey), vkey)
    for (const name of ['', 'a b', 'a+b', 'a\u00a0b', 'a\u2028b', 'a\u0085b'])
      fails(() => verifierKeyOf(name, privateKey), 'invalid-key')
    // an RSA key is no note key
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey
    fails(() => verifierKeyOf('example.com/log', rsa), 'invalid-key')
  })
})

describe('signed notes', () => {
  it('signs byte for byte as the reference does', async () => {
    assert.equal(await signNote(TEXT, localSigner(PETER_SIGNER)), `${TEXT}\n${PETER_SIG}`)
  })

  it('refuses to sign a text without its final newline, or with a control character', async () => {
    await assert.rejects(signNote('abc', localSigner(PETER_SIGNER)), /does not end with a newline/)
    await assert.rejects(signNote('a\tb\n', localSigner(PETER_SIGNER)), /control character/)
  })

  it('never writes a signature that does not verify under the declared key', async () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    const other = generateKeyPairSync('ed25519').privateKey
    const lying: NoteSigner = {
      name: 'example.com/log',
      verifierKey: verifierKeyOf('example.com/log', privateKey),
      sign: async (message) => new Uint8Array(sign(null, message, other)),
    }
    await assert.rejects(
      signNote('a\n', lying),
      (e: unknown) => (e as CheckpointError).reason === 'bad-signature',
    )
    const short: NoteSigner = { ...lying, sign: async () => new Uint8Array(63) }
    await assert.rejects(signNote('a\n', short), /does not verify/)
    const misnamed: NoteSigner = { ...lying, name: 'example.com/other' }
    await assert.rejects(
      signNote('a\n', misnamed),
      /named example.com\/other but its verifier key example.com\/log/,
    )
  })

  it('opens a note signed by a known key and sets aside the unknown signatures', () => {
    const note = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`
    const one = openNote(note, [PETER])
    assert.equal(one.text, TEXT)
    assert.deepEqual(one.signatures, [peter])
    assert.deepEqual(one.unverified, [enoch])
    const both = openNote(note, [PETER, ENOCH])
    assert.deepEqual(both.signatures, [peter, enoch])
    assert.deepEqual(both.unverified, [])
    // as bytes too
    assert.equal(openNote(new TextEncoder().encode(note), [PETER]).text, TEXT)
  })

  it('refuses a note no known key signed, naming who did', () => {
    fails(
      () => openNote(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}`, []),
      'unknown-key',
      /PeterNeumann\+c74f20a3, EnochRoot\+af0cfe78/,
    )
  })

  it('refuses two different verifier keys with the same name and hash, and ignores one given twice', () => {
    // two keys whose hashes collide under one name (found by trying: the hash is 32 bits)
    const first = 'example.com/log+e4379325+AfDYtBEp4mxNJcdyYn8MsmzPMME9A0rY6lvxFtGH5hgh'
    const second = 'example.com/log+e4379325+AU4Ra+2Ut/vtra0np/wZu2QllmWc+rjTt18drt1K0ka9'
    assert.equal(parseVerifierKey(first).hash, parseVerifierKey(second).hash)
    fails(
      () => openNote(`${TEXT}\n${PETER_SIG}`, [PETER, first, second]),
      'invalid-key',
      /share the name and hash/,
    )
    assert.deepEqual(openNote(`${TEXT}\n${PETER_SIG}`, [ENOCH, PETER, ENOCH, first]).signatures, [peter])
  })

  it('refuses a note with a signature of a known key that does not verify', () => {
    const bad = `${TEXT}\n${PETER_SIG.slice(0, 58)}ABCD${PETER_SIG.slice(58)}`
    fails(() => openNote(bad, [PETER]), 'bad-signature', /PeterNeumann\+c74f20a3/)
  })

  it('counts a repeated signature once, verified or not', () => {
    const enochABCD = `${ENOCH_SIG.slice(0, 58)}ABCD${ENOCH_SIG.slice(58)}`
    const opened = openNote(`${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}${enochABCD}`, [PETER])
    assert.deepEqual(opened.signatures, [peter])
    assert.deepEqual(opened.unverified, [
      enoch,
      {
        ...enoch,
        base64:
          'rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5nABCD2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=',
      },
    ])
  })

  it('refuses malformed notes', () => {
    for (const note of [
      TEXT,
      `${TEXT}\n`,
      `${TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\u0001${TEXT}\n${PETER_SIG}`,
      `${TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${TEXT}\n— PeterNeumann\n`,
      `${TEXT}\n— PeterNeumann x08g\n`,
      `${TEXT}\n— PeterNeumann AAAAAA==\n`,
      `\ud800${TEXT}\n${PETER_SIG}`,
    ])
      fails(() => openNote(note, [PETER]), 'malformed')
    // bytes that are not UTF-8
    const bytes = new Uint8Array([0xff, ...new TextEncoder().encode(`${TEXT}\n${PETER_SIG}`)])
    fails(() => openNote(bytes, [PETER]), 'malformed', /UTF-8/)
  })

  it('bounds what it reads: the signatures, and the note', () => {
    fails(() => openNote(`${TEXT}\n${PETER_SIG.repeat(101)}`, [PETER]), 'too-large')
    fails(() => openNote(`${TEXT}\n${PETER_SIG.repeat(101)}`, []), 'too-large')
    assert.equal(openNote(`${TEXT}\n${PETER_SIG.repeat(100)}`, [PETER]).signatures.length, 1)
    fails(() => openNote(`${'a'.repeat(MAX_NOTE_BYTES)}\n\n${PETER_SIG}`, [PETER]), 'too-large')
  })

  it('refuses a malformed verifier key it is given', () => {
    fails(() => openNote(`${TEXT}\n${PETER_SIG}`, ['PeterNeumann+c74f20a3']), 'invalid-key')
  })
})

describe('checkpoints', () => {
  const rootHash = new Uint8Array(32).map((_, i) => i)
  const checkpoint = { origin: 'example.com/log', size: 20852163, rootHash, extensions: [] }

  it('writes the three lines of a tree head', () => {
    assert.equal(
      checkpointBody(checkpoint),
      `example.com/log\n20852163\n${Buffer.from(rootHash).toString('base64')}\n`,
    )
    assert.equal(checkpointBody({ ...checkpoint, size: 0, extensions: ['x y'] }).split('\n')[1], '0')
    assert.deepEqual(parseCheckpointBody(checkpointBody({ ...checkpoint, extensions: ['x y'] })), {
      ...checkpoint,
      extensions: ['x y'],
    })
  })

  it('refuses to write what is no checkpoint', () => {
    for (const bad of [
      { ...checkpoint, origin: '' },
      { ...checkpoint, origin: 'a\nb' },
      { ...checkpoint, size: -1 },
      { ...checkpoint, size: 1.5 },
      { ...checkpoint, rootHash: new Uint8Array(31) },
      { ...checkpoint, extensions: [''] },
      { ...checkpoint, extensions: ['a\nb'] },
    ])
      fails(() => checkpointBody(bad), 'malformed')
  })

  it('signs a checkpoint and opens it with the key list, old keys included', async () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    const old = verifierKeyOf('example.com/log', generateKeyPairSync('ed25519').privateKey)
    const signer = localSigner(signerKeyOf('example.com/log', privateKey))
    const note = await signNote(checkpointBody(checkpoint), signer)
    assert.deepEqual(openCheckpoint(note, [old, signer.verifierKey]), checkpoint)
    fails(() => openCheckpoint(note, [old]), 'unknown-key')
    // one bit of the root changed: the signature no longer holds
    const root = Buffer.from(rootHash).toString('base64')
    const forged = note.replace(
      root,
      Buffer.from(rootHash.map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64'),
    )
    fails(() => openCheckpoint(forged, [signer.verifierKey]), 'bad-signature')
  })

  it('refuses a signed text that is no checkpoint', async () => {
    const signer = localSigner(PETER_SIGNER)
    const root = Buffer.from(rootHash).toString('base64')
    for (const [text, why] of [
      ['example.com/log\n5\n', /fewer than three lines/],
      [`example.com/log\n05\n${root}\n`, /no number/],
      [`example.com/log\n9007199254740992\n${root}\n`, /too large/],
      [`example.com/log\n5\n${root.slice(0, -2)}R=\n`, /root hash/],
      [`example.com/log\n-5\n${root}\n`, /no number/],
      [`example.com/log\n 5\n${root}\n`, /no number/],
      [`example.com/log\n5\n${root.slice(0, -2)}=\n`, /root hash/],
      [`example.com/log\n5\n${Buffer.alloc(33).toString('base64')}\n`, /root hash/],
      [`example.com/log\n5\n${root}\n\next\n`, /empty extension line/],
      [`\n5\n${root}\n`, /empty origin/],
      [`example.com/log\n5\n${root}\n${'x\n'.repeat(62)}`, /more than 64 lines/],
    ] as const) {
      const note = await signNote(text, signer)
      fails(() => openCheckpoint(note, [PETER]), 'malformed', why)
    }
  })
})
