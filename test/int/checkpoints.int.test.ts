// Signed checkpoints of the ledger's Merkle tree: cut every N events, published in the append-only folder and
// over HTTP, verified by the service's own code and by Go's sumdb/note; the ledger checked against a kept one
// over HTTP; and the witness, which keeps the last one it accepted and alarms on a fork or a rollback.
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  type Checkpoint,
  checkpointBody,
  openCheckpoint,
  signNote,
  verifierKeyOf,
} from '../../src/checkpoint/note.js'
import { checkpointFileName } from '../../src/checkpoint/publisher.js'
import { localNoteSigner } from '../../src/checkpoint/signer.js'
import { main } from '../../src/cli/main.js'
import { checkpointVerifierKeys } from '../../src/keys/key-list.js'
import { verifyCheckpointConsistency } from '../../src/sdk/index.js'
import { toBase64 } from '../../src/tree/merkle.js'
import { SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'
import { buildGoVerifier, type GoVerifier } from '../support/go-verify.js'
import { promtoolAccepts } from '../support/promtool.js'

const EVERY = 7

let api: TestApi
let url = ''
let go: GoVerifier | null = null
const scratch = mkdtempSync(join(tmpdir(), 'checkpoints-'))

const auditor = () => api.as('auditor-1', 'auditor')
const key = () => {
  const [vkey] = checkpointVerifierKeys(api.runtime.keyList)
  assert.ok(vkey)
  return vkey
}

/** A few more events in the ledger: observations of the seeded resource. */
const observe = async (n: number) => {
  for (let i = 0; i < n; i += 1) {
    const r = await api.as(SEED.observer, 'observer').post('/v1/observations', {
      environment: 'production',
      resource: SEED.resource,
      version: `v${Date.now()}-${i}`,
      digest: 'sha256:web',
      observedAt: new Date().toISOString(),
    })
    assert.equal(r.statusCode, 201, r.body)
  }
  await api.settle()
}

/** A checkpoint the service's own key signs, of any tree: what a log that forked or went back would publish. */
const signedByTheService = (checkpoint: Omit<Checkpoint, 'origin' | 'extensions'>) =>
  signNote(
    checkpointBody({ ...checkpoint, origin: api.runtime.checkpoints.origin, extensions: [] }),
    api.runtime.checkpointSigner,
  )

const witness = async (state: string, extra: readonly string[] = [], keys = [key()]) => {
  let stdout = ''
  let stderr = ''
  const code = await main(
    ['witness', '--url', url, '--state', state, ...keys.flatMap((k) => ['--key', k]), '--json', ...extra],
    {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text), isTTY: false },
      env: { GOVERNANCE_TOKEN: await api.tokenFor('witness-1', 'auditor') },
    },
  )
  return { code, stderr, result: JSON.parse(stdout || 'null') as { finding: string; alarm: boolean } | null }
}

before(async () => {
  api = await startTestApi({ CHECKPOINT_EVERY_EVENTS: String(EVERY), CHECKPOINT_EVERY_SECONDS: '3600' })
  await seedWorld(api)
  await api.settle()
  url = await api.app.listen({ host: '127.0.0.1', port: 0 })
  go = buildGoVerifier()
})

after(async () => {
  go?.remove()
  await api?.close()
  rmSync(scratch, { recursive: true, force: true })
})

describe('signed checkpoints', () => {
  it('are cut once the tree has grown by CHECKPOINT_EVERY_EVENTS, into the append-only folder and over HTTP', async () => {
    const { checkpoints, tree } = api.runtime
    // the service's own cutter ticks every second too: a cut that is due is made by whichever ticks first
    await checkpoints.tick()
    const cut = checkpoints.latest()
    assert.equal(cut?.size, tree.size(), 'the seeded ledger is far beyond 7 events: a cut is due')
    assert.equal(await checkpoints.tick(), null, 'nothing more to cut until the tree grows by 7')
    await observe(EVERY - 1)
    assert.equal(await checkpoints.tick(), null, 'grown by 6 of 7')
    assert.equal(checkpoints.latest()?.size, cut?.size, 'nor did the service cut one')
    await observe(1)
    await checkpoints.tick()
    assert.equal(checkpoints.latest()?.size, (cut?.size ?? 0) + EVERY)

    // the service's own cutter may have cut earlier ones while the world was seeded: the last two are these
    const files = readdirSync(checkpoints.folder.dir).sort().slice(-2)
    assert.deepEqual(files, [checkpointFileName(cut?.size ?? 0), checkpointFileName(tree.size())])
    const latest = await fetch(`${url}/v1/checkpoints/latest`)
    assert.equal(latest.status, 200)
    assert.match(String(latest.headers.get('content-type')), /^text\/plain/)
    const note = await latest.text()
    assert.equal(note, readFileSync(join(checkpoints.folder.dir, files[1] ?? ''), 'utf8'))
    const bySize = await fetch(`${url}/v1/checkpoints/${cut?.size}`)
    assert.equal(await bySize.text(), cut?.note)
    assert.equal((await fetch(`${url}/v1/checkpoints/999999`)).status, 404)
    assert.equal((await fetch(`${url}/v1/checkpoints/nine`)).status, 400)

    // what it commits to: the tree's head at its size, which the tree route serves too
    const opened = openCheckpoint(note, [key()])
    assert.equal(opened.size, tree.size())
    assert.equal(toBase64(opened.rootHash), toBase64(tree.root(opened.size)))
    const head = (await auditor().get(`/v1/ledger/tree?size=${opened.size}`)).json()
    assert.equal(head.rootHash, toBase64(opened.rootHash))
    // /metrics says how far the ledger is committed to, and that cutting works
    const metrics = (await auditor().get('/metrics')).body
    assert.match(metrics, new RegExp(`^governance_checkpoint_tree_size ${opened.size}$`, 'm'))
    assert.match(metrics, /^governance_checkpoint_failing 0$/m)
    // the key list serves the key it verifies under, without a token
    const keys = await (await fetch(`${url}/v1/checkpoints/keys`)).json()
    assert.ok(JSON.stringify(keys).includes(key()))
  })

  it('verify under Go’s sumdb/note, the reference implementation of signed notes', (t) => {
    if (!go) return t.skip('Go is not installed here')
    const note = api.runtime.checkpoints.latest()?.note
    const verdict = go.run('note', { note, verifierKeys: [key()] })
    assert.equal(verdict.ok, true, verdict.error)
    assert.equal(verdict.signers?.[0], api.runtime.checkpoints.origin)
    const [, size, root] = String(verdict.text).split('\n')
    assert.equal(Number(size), api.runtime.tree.size())
    assert.equal(root, toBase64(api.runtime.tree.root(Number(size))))
    const tampered = String(note).replace(/\n(\d+)\n/, (_, n) => `\n${Number(n) + 1}\n`)
    assert.equal(go.run('note', { note: tampered, verifierKeys: [key()] }).ok, false)
  })

  it('check the ledger over HTTP: consistent, forked, truncated; a checkpoint no listed key signed is refused', async () => {
    const verify = (checkpoint: string) =>
      auditor().post('/v1/ledger/checkpoint-verifications', { checkpoint })
    const latest = api.runtime.checkpoints.latest()?.note ?? ''
    const ok = await verify(latest)
    assert.equal(ok.statusCode, 200, ok.body)
    assert.deepEqual([ok.json().ok, ok.json().verdict], [true, 'consistent'])

    const size = api.runtime.tree.size()
    const forked = await verify(await signedByTheService({ size, rootHash: new Uint8Array(32).fill(7) }))
    assert.deepEqual([forked.json().ok, forked.json().verdict], [false, 'forked'])
    const ahead = await verify(
      await signedByTheService({ size: size + 10, rootHash: api.runtime.tree.root(size) }),
    )
    assert.deepEqual([ahead.json().verdict, ahead.json().localSize], ['truncated', size])

    const unsigned = latest.replace(/\n\n— .*\n$/s, '\n\n')
    assert.equal((await verify(unsigned)).statusCode, 400)
    const agent = await api.as('agent-1', 'agent').post('/v1/ledger/checkpoint-verifications', {
      checkpoint: latest,
    })
    assert.equal(agent.statusCode, 403, 'an agent does not audit the ledger')
    const huge = await verify('x'.repeat(9000))
    assert.equal(huge.statusCode, 400)
  })
})

describe('the witness', () => {
  it('keeps the first checkpoint, accepts a larger one proved consistent, and writes its metrics', async () => {
    const state = join(scratch, 'witness.checkpoint')
    const metrics = join(scratch, 'witness.prom')
    const first = await witness(state, ['--metrics', metrics])
    assert.equal(first.code, 0, first.stderr)
    assert.equal(first.result?.finding, 'first')
    assert.equal(readFileSync(state, 'utf8'), api.runtime.checkpoints.latest()?.note)
    const kept = api.runtime.checkpoints.latest()?.note

    const same = await witness(state)
    assert.equal(same.result?.finding, 'same')

    await observe(EVERY)
    assert.ok(await api.runtime.checkpoints.tick())
    const grew = await witness(state, ['--metrics', metrics])
    assert.equal(grew.code, 0, grew.stderr)
    assert.equal(grew.result?.finding, 'grew')
    const newer = readFileSync(state, 'utf8')
    assert.notEqual(newer, kept)
    // what the witness did, with the SDK, offline: the ledger between the two checkpoints only grew
    const [from, to] = [openCheckpoint(String(kept), [key()]).size, openCheckpoint(newer, [key()]).size]
    const proof = (await auditor().get(`/v1/ledger/proofs/consistency?from=${from}&to=${to}`)).json()
    assert.equal(verifyCheckpointConsistency(String(kept), newer, proof, [key()]), true)
    assert.equal(verifyCheckpointConsistency(newer, String(kept), proof, [key()]), false, 'not backwards')
    const stranger = verifierKeyOf('someone-else', generateKeyPairSync('ed25519').privateKey)
    assert.equal(verifyCheckpointConsistency(String(kept), newer, proof, [stranger]), false, 'not unpinned')
    const text = readFileSync(metrics, 'utf8')
    assert.match(text, /^governance_witness_alarm 0$/m)
    assert.match(text, new RegExp(`^governance_witness_checkpoint_size ${api.runtime.tree.size()}$`, 'm'))
    promtoolAccepts(text)
    // one JSON line per check on stderr, in the service's log shape
    assert.equal(JSON.parse(grew.stderr.trim()).component, 'witness')
  })

  it('alarms (exit 1, log, metric) on a fork: the service no longer holds the tree the witness kept', async () => {
    const state = join(scratch, 'forked.checkpoint')
    const size = api.runtime.tree.size() - 3
    writeFileSync(state, await signedByTheService({ size, rootHash: new Uint8Array(32).fill(9) }))
    const before = readFileSync(state, 'utf8')
    const metrics = join(scratch, 'forked.prom')
    const alarm = await witness(state, ['--metrics', metrics])
    assert.equal(alarm.code, 1, alarm.stderr)
    assert.deepEqual([alarm.result?.finding, alarm.result?.alarm], ['fork', true])
    assert.equal(readFileSync(state, 'utf8'), before, 'it keeps what it had')
    assert.match(readFileSync(metrics, 'utf8'), /^governance_witness_alarm 1$/m)
    assert.equal(JSON.parse(alarm.stderr.trim()).level, 'error')
  })

  it('alarms on a rollback, and on a checkpoint its pinned key did not sign; --follow stops at the first alarm', async () => {
    const state = join(scratch, 'rollback.checkpoint')
    const size = api.runtime.tree.size() + 5
    writeFileSync(state, await signedByTheService({ size, rootHash: new Uint8Array(32).fill(1) }))
    const rollback = await witness(state, ['--follow', '--interval', '0.05'])
    assert.equal(rollback.code, 1)
    assert.equal(rollback.result?.finding, 'rollback')

    const other = join(scratch, 'other-key.checkpoint')
    // a key of another log, and another key under this log's name: well formed, and not the signer's
    const stranger = verifierKeyOf('someone-else', generateKeyPairSync('ed25519').privateKey)
    const wrongKey = verifierKeyOf(api.runtime.checkpoints.origin, generateKeyPairSync('ed25519').privateKey)
    for (const keys of [[stranger], [wrongKey]]) {
      const refused = await witness(other, [], keys)
      assert.equal(refused.code, 1, 'no checkpoint is accepted under a key the log did not sign with')
      assert.deepEqual([refused.result?.finding, refused.result?.alarm], ['unsigned', true])
      assert.match(refused.stderr, /does not verify under the pinned keys/)
    }
  })

  it('stops, naming its state file, when the kept checkpoint verifies under none of the pinned keys (a key rotated away)', async () => {
    const state = join(scratch, 'rotated.checkpoint')
    const retired = localNoteSigner(api.runtime.checkpoints.origin, generateKeyPairSync('ed25519').privateKey)
    const checkpoint = { origin: api.runtime.checkpoints.origin, size: 1, rootHash: api.runtime.tree.root(1) }
    writeFileSync(state, await signNote(checkpointBody({ ...checkpoint, extensions: [] }), retired))
    // following, a state the witness cannot read is no passing failure: it would retry it for ever
    const ended = await Promise.race([
      witness(state, ['--follow', '--interval', '0.05']),
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 2000).unref()),
    ])
    if (ended === 'still running') assert.fail('the witness retries a state it cannot read for ever')
    assert.equal(ended.code, 1)
    assert.ok(ended.stderr.includes(state), ended.stderr)
    assert.match(ended.stderr, /pin the key it was signed with/)
  })

  it('refuses an answer larger than a checkpoint can be, before reading it all', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' })
      // chunked, no content-length: the witness must stop reading on its own
      const chunk = 'x'.repeat(16 * 1024)
      let sent = 0
      const more = () => {
        while (sent < 64 && response.write(chunk)) sent += 1
        if (sent < 64) response.once('drain', more)
        else response.end()
      }
      more()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    try {
      let stderr = ''
      const code = await main(
        ['witness', '--url', `http://127.0.0.1:${port}`, '--key', key(), '--state', join(scratch, 'big')],
        {
          stdout: { write: () => true },
          stderr: { write: (text: string) => (stderr += text), isTTY: false },
          env: {},
        },
      )
      assert.equal(code, 1)
      assert.match(stderr, /answered more than 65536 bytes/)
    } finally {
      server.close()
    }
  })
})
