// The service's keys as an operator keeps them: key files outside the data folder, a signing command holding
// the checkpoint key, one key per use, and rotation through the command line with the old public keys kept.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { issueToken } from '../../src/auth/tokens.js'
import {
  CheckpointError,
  checkpointBody,
  openCheckpoint,
  signerKeyOf,
  signNote,
  verifierKeyOf,
} from '../../src/checkpoint/note.js'
import { checkpointSigner, SigningError } from '../../src/checkpoint/signer.js'
import { main } from '../../src/cli/main.js'
import { ConfigSchema, loadConfig } from '../../src/config.js'
import { verifyVerdictSignature } from '../../src/decision/signer.js'
import { keyIdOf } from '../../src/domain/signing.js'
import { buildApp } from '../../src/http/app.js'
import { KeyError } from '../../src/keys/key-file.js'
import { checkpointVerifierKeys, jwksOf } from '../../src/keys/key-list.js'
import { openServiceKeys } from '../../src/keys/service-keys.js'
import { startRuntime } from '../../src/runtime.js'
import { sampleVerdict } from '../support/ledger-events.js'

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'keys-'))
after(() => rmSync(root, { recursive: true, force: true }))

const rootHash = new Uint8Array(32).fill(7)
const body = checkpointBody({ origin: 'governance-ledger', size: 42, rootHash, extensions: [] })

/** A PEM Ed25519 private key in its own file, mode 0600 unless asked otherwise. */
const keyFile = (name: string, key: KeyObject = generateKeyPairSync('ed25519').privateKey, mode = 0o600) => {
  const path = join(root, name)
  writeFileSync(path, key.export({ format: 'pem', type: 'pkcs8' }))
  chmodSync(path, mode)
  return { path, key }
}

const configWith = (name: string, env: Record<string, string> = {}) =>
  loadConfig({ DATA_DIR: join(root, name), AUTH_MODE: 'embedded', LOG_LEVEL: 'silent', ...env })

describe('key files outside the data folder', () => {
  it('signs with the files named, and keeps the old public key when their owner replaces one', () => {
    const verdict = keyFile('verdict.pem')
    const token = keyFile('token.pem')
    const config = configWith('files', { VERDICT_KEY_FILE: verdict.path, TOKEN_KEY_FILE: token.path })
    const first = openServiceKeys(config)
    assert.equal(keyIdOf(first.verdict, 'verdicts'), keyIdOf(verdict.key, 'verdicts'))
    assert.equal(keyIdOf(first.token as KeyObject, 'tokens'), keyIdOf(token.key, 'tokens'))
    assert.equal(first.created, false, 'no key of a file is created')
    // the owner puts a new key in the file: the next start signs with it, and still publishes the old one
    const replaced = keyFile('verdict.pem')
    const second = openServiceKeys(config)
    const kids = jwksOf(second.list, new Date(), config.AUTH_MAX_TOKEN_LIFETIME).keys.map((k) => k.kid)
    assert.deepEqual(kids, [
      keyIdOf(replaced.key, 'verdicts'),
      keyIdOf(verdict.key, 'verdicts'),
      keyIdOf(token.key, 'tokens'),
    ])
  })

  it('refuses a key file others may read or replace, and takes one its group may read', () => {
    for (const [mode, why] of [
      [0o644, /readable by others \(mode 644\)/],
      [0o606, /readable by others/],
      [0o602, /writable by others/],
      [0o660, /writable by its group/],
    ] as const) {
      const { path } = keyFile(`loose-${mode.toString(8)}.pem`, undefined, mode)
      assert.throws(
        () => openServiceKeys(configWith('loose', { CHECKPOINT_KEY_FILE: path })),
        (e: unknown) =>
          e instanceof KeyError && why.test(e.message) && e.message.includes(`CHECKPOINT_KEY_FILE: ${path}`),
      )
    }
    const { path } = keyFile('group.pem', undefined, 0o640)
    assert.doesNotThrow(() => openServiceKeys(configWith('group', { VERDICT_KEY_FILE: path })))
    assert.throws(
      () => openServiceKeys(configWith('missing', { VERDICT_KEY_FILE: join(root, 'nowhere.pem') })),
      /VERDICT_KEY_FILE: .*nowhere.pem cannot be read \(ENOENT\)/,
    )
    const rsa = keyFile('rsa.pem', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey)
    assert.throws(
      () => openServiceKeys(configWith('rsa', { VERDICT_KEY_FILE: rsa.path })),
      /VERDICT_KEY_FILE: an rsa key; the service signs with Ed25519/,
    )
  })

  it('the service does not start on a world-readable key file, and says why on one line', async () => {
    const { path } = keyFile('world.pem', undefined, 0o644)
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        DATA_DIR: join(root, 'world'),
        PORT: '0',
        AUTH_MODE: 'embedded',
        VERDICT_KEY_FILE: path,
      },
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const code = await new Promise((done) => child.on('close', done))
    assert.equal(code, 1)
    assert.match(stderr, /VERDICT_KEY_FILE: .*world.pem is readable by others \(mode 644\)/)
  })

  it('refuses one key for two uses, however it is given', () => {
    const shared = keyFile('shared.pem')
    const copy = keyFile('shared-copy.pem', shared.key)
    assert.throws(
      () =>
        openServiceKeys(
          configWith('same-1', { VERDICT_KEY_FILE: shared.path, CHECKPOINT_KEY_FILE: copy.path }),
        ),
      /the verdict key \(VERDICT_KEY_FILE\) and the checkpoint key \(CHECKPOINT_KEY_FILE\) are the same key/,
    )
    assert.throws(
      () =>
        openServiceKeys(configWith('same-2', { VERDICT_KEY_FILE: shared.path, TOKEN_KEY_FILE: copy.path })),
      /the verdict key \(VERDICT_KEY_FILE\) and the token key \(TOKEN_KEY_FILE\) are the same key/,
    )
    // the data folder's own verdict key declared as the signing command's key
    const folder = configWith('same-3')
    const own = openServiceKeys(folder).verdict
    assert.throws(
      () =>
        openServiceKeys(
          configWith('same-3', {
            CHECKPOINT_SIGN_COMMAND: 'true',
            CHECKPOINT_VERIFIER_KEY: verifierKeyOf('governance-ledger', own),
          }),
        ),
      /the verdict key \(keys\/verdict-signing.pem\) and the checkpoint key \(CHECKPOINT_VERIFIER_KEY\) are the same key/,
    )
  })
})

describe('the checkpoint signer', () => {
  it('signs with CHECKPOINT_KEY_FILE, PEM or a note private key named as the origin', async () => {
    const pem = keyFile('checkpoint.pem')
    const fromPem = checkpointSigner(configWith('cp-pem', { CHECKPOINT_KEY_FILE: pem.path }))
    assert.equal(fromPem.verifierKey, verifierKeyOf('governance-ledger', pem.key))
    assert.equal(openCheckpoint(await signNote(body, fromPem), [fromPem.verifierKey]).size, 42)
    const note = join(root, 'checkpoint.key')
    writeFileSync(note, `${signerKeyOf('ledger.example.com/governance-ledger', pem.key)}\n`, { mode: 0o600 })
    const fromNoteKey = checkpointSigner(
      configWith('cp-note', { CHECKPOINT_KEY_FILE: note, PUBLIC_URL: 'https://ledger.example.com' }),
    )
    assert.equal(fromNoteKey.verifierKey, verifierKeyOf('ledger.example.com/governance-ledger', pem.key))
    assert.throws(
      () => checkpointSigner(configWith('cp-other', { CHECKPOINT_KEY_FILE: note })),
      /the key is named ledger.example.com\/governance-ledger, but checkpoints are signed in the name of their origin, governance-ledger/,
    )
  })

  it('creates its key in the data folder on first start, and signs with it again at the next', async () => {
    const config = configWith('cp-own')
    const first = checkpointSigner(config)
    assert.equal(checkpointSigner(config).verifierKey, first.verifierKey)
    assert.equal(
      readFileSync(join(root, 'cp-own', 'keys', 'checkpoint-signing.pem'), 'utf8').split('\n')[0],
      '-----BEGIN PRIVATE KEY-----',
    )
    assert.ok(openCheckpoint(await signNote(body, first), [first.verifierKey]))
  })

  describe('with a signing command', () => {
    // a stand-in for a KMS client: reads the message on stdin, writes the signature in base64 on stdout
    const script = join(root, 'sign.mjs')
    writeFileSync(
      script,
      `import { createPrivateKey, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
const [mode, keyPath] = process.argv.slice(2)
const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
if (mode === 'fail') { process.stderr.write('starting\\nthe KMS refused: key disabled\\n'); process.exit(3) }
if (mode === 'hang') setTimeout(() => {}, 60_000)
else if (mode === 'garbage') process.stdout.write('not a signature\\n')
else process.stdout.write(sign(null, Buffer.concat(chunks), createPrivateKey(readFileSync(keyPath))).toString('base64').replace(/.{40}/, '$&\\n') + '\\n')
`,
    )
    const held = keyFile('held-by-kms.pem')
    const signerRunning = (mode: string, keyPath = held.path, program = process.execPath) =>
      checkpointSigner(
        configWith('cp-command', {
          CHECKPOINT_SIGN_COMMAND: JSON.stringify([program, script, mode, keyPath]),
          CHECKPOINT_VERIFIER_KEY: verifierKeyOf('governance-ledger', held.key),
          CHECKPOINT_SIGN_TIMEOUT_SECONDS: '1',
        }),
      )

    it('signs the message it is given on stdin, with a key the service never reads', async () => {
      const signer = signerRunning('sign')
      const checkpoint = openCheckpoint(await signNote(body, signer), [
        verifierKeyOf('governance-ledger', held.key),
      ])
      assert.deepEqual(checkpoint.rootHash, rootHash)
    })

    it('writes no checkpoint when the command signs with another key than it declares', async () => {
      await assert.rejects(
        signNote(body, signerRunning('sign', keyFile('another.pem').path)),
        (e: unknown) => e instanceof CheckpointError && e.reason === 'bad-signature',
      )
    })

    it('writes no checkpoint when the command fails, answers nothing useful, hangs, or cannot be run', async () => {
      const refused = (mode: string, why: RegExp, program?: string) =>
        assert.rejects(
          signNote(body, signerRunning(mode, held.path, program)),
          (e: unknown) => e instanceof SigningError && why.test(e.message),
        )
      await refused('fail', /failed \(exit code 3\): the KMS refused: key disabled$/)
      await refused('garbage', /wrote no Ed25519 signature on stdout/)
      const started = Date.now()
      await refused('hang', /did not answer within 1 s \(CHECKPOINT_SIGN_TIMEOUT_SECONDS\)/)
      assert.ok(Date.now() - started < 3000)
      await refused('sign', /could not be run: ENOENT/, join(root, 'no-such-program'))
    })
  })
})

/** Runs the command line in-process, as the installed command would. */
const cli = async (argv: string[], env: Record<string, string>) => {
  let stdout = ''
  let stderr = ''
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in ConfigSchema.shape)))
  const code = await main(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: { ...clean, ...env },
  })
  return { code, stdout, stderr }
}

describe('keys rotate', () => {
  const dir = join(root, 'rotation')
  const env = { DATA_DIR: dir, AUTH_MODE: 'embedded', LOG_LEVEL: 'silent' }
  const config = loadConfig(env)
  const start = async () => {
    const runtime = await startRuntime(config, pino({ level: 'silent' }))
    const app = await buildApp(runtime, { logger: false })
    return {
      runtime,
      app,
      get: async (url: string) => (await app.inject({ method: 'GET', url })).json(),
      stop: async () => {
        await app.close()
        await runtime.close()
      },
    }
  }
  const verdict = sampleVerdict({ revision: 1, checks: [] })

  it('replaces each key; old verdicts, tokens and checkpoints stay verifiable after the restart', async () => {
    mkdirSync(dir, { recursive: true })
    const before = await start()
    const oldVerdict = { ...verdict, signature: await before.runtime.verdictSigner.sign(verdict) }
    const oldToken = await issueToken(before.runtime.tokenKey as KeyObject, config, {
      sub: 'aud-1',
      roles: ['auditor'],
    })
    const oldCheckpoint = await signNote(body, before.runtime.checkpointSigner)
    const oldVerdictKid = before.runtime.verdictSigner.keyId
    const oldTokenKid = keyIdOf(before.runtime.tokenKey as KeyObject, 'tokens')
    const oldCheckpointKey = before.runtime.checkpointSigner.verifierKey
    await before.stop()

    const rotated = await cli(['keys', 'rotate', '--key', 'verdict', '--json'], env)
    assert.equal(rotated.code, 0, rotated.stderr)
    const data = JSON.parse(rotated.stdout)
    assert.equal(data.retired, oldVerdictKid)
    assert.notEqual(data.current, oldVerdictKid)
    assert.equal(data.restartNeeded, true)
    for (const key of ['token', 'checkpoint']) {
      const run = await cli(['keys', 'rotate', '--key', key], env)
      assert.equal(run.code, 0, run.stderr)
      assert.match(run.stdout, /restart it/)
    }

    const after = await start()
    try {
      assert.equal(after.runtime.verdictSigner.keyId, data.current)
      const jwks = await after.get('/.well-known/jwks.json')
      assert.deepEqual(
        jwks.keys.map((k: { kid: string }) => k.kid),
        [data.current, oldVerdictKid, keyIdOf(after.runtime.tokenKey as KeyObject, 'tokens'), oldTokenKid],
      )
      await verifyVerdictSignature(oldVerdict, jwks)
      assert.equal((await after.runtime.verifier.verify(oldToken)).sub, 'aud-1')
      const keys = await after.get('/v1/checkpoints/keys')
      assert.equal(keys.origin, 'governance-ledger')
      assert.equal(keys.current, after.runtime.checkpointSigner.verifierKey)
      assert.deepEqual(
        keys.keys.map((k: { verifierKey: string; retiredAt: string | null }) => [
          k.verifierKey,
          k.retiredAt === null,
        ]),
        [
          [oldCheckpointKey, false],
          [keys.current, true],
        ],
      )
      const verifierKeys = checkpointVerifierKeys(after.runtime.keyList)
      assert.equal(openCheckpoint(oldCheckpoint, verifierKeys).size, 42)
      assert.equal(
        openCheckpoint(await signNote(body, after.runtime.checkpointSigner), verifierKeys).size,
        42,
      )
      assert.throws(() => openCheckpoint(oldCheckpoint, [keys.current]), /no known key signed the note/)
    } finally {
      await after.stop()
    }
  })

  it('--revoke-tokens: the old token key’s tokens are refused from the restart on', async () => {
    const before = await start()
    const token = await issueToken(before.runtime.tokenKey as KeyObject, config, {
      sub: 'aud-2',
      roles: ['auditor'],
    })
    assert.equal((await before.runtime.verifier.verify(token)).sub, 'aud-2')
    await before.stop()
    const run = await cli(['keys', 'rotate', '--key', 'token', '--revoke-tokens'], env)
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stdout, /refused from the restart on/)
    const after = await start()
    try {
      await assert.rejects(after.runtime.verifier.verify(token), /invalid token/)
      const kids = (await after.get('/.well-known/jwks.json')).keys.map((k: { kid: string }) => k.kid)
      assert.ok(
        !kids.includes(JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()).kid),
      )
    } finally {
      await after.stop()
    }
  })

  it('refuses to rotate a key given by a file or a command, or before the first start', async () => {
    const { path } = keyFile('owned.pem')
    const owned = await cli(['keys', 'rotate', '--key', 'verdict'], { ...env, VERDICT_KEY_FILE: path })
    assert.equal(owned.code, 1)
    assert.match(
      owned.stderr,
      /the verdict key is given by VERDICT_KEY_FILE, so it is rotated where it is kept/,
    )
    const fresh = await cli(['keys', 'rotate', '--key', 'checkpoint'], {
      ...env,
      DATA_DIR: join(root, 'never-started'),
    })
    assert.equal(fresh.code, 1)
    assert.match(fresh.stderr, /no checkpoint key at .*: start the service once/)
    const jwks = await cli(['keys', 'rotate', '--key', 'token'], {
      ...env,
      AUTH_MODE: 'jwks',
      AUTH_JWKS_URL: 'https://idp.example.org/jwks.json',
    })
    assert.equal(jwks.code, 1)
    assert.match(jwks.stderr, /no token key to rotate: with AUTH_MODE=jwks/)
  })
})
