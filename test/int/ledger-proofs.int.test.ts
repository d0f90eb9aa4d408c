// The service's Merkle proofs as an outsider checks them: with the SDK, and with Go's sumdb/tlog, an RFC 6962
// implementation independent of the service's; altered proofs and events are refused by both.
import assert from 'node:assert/strict'
import { createHash, generateKeyPairSync, sign } from 'node:crypto'
import { after, before, test } from 'node:test'
import Database from 'better-sqlite3'
import { streams } from '../../src/domain/events.js'
import { dataPaths } from '../../src/runtime.js'
import {
  AuditorClient,
  ExecutorClient,
  verifyConsistency,
  verifyEventInclusion,
} from '../../src/sdk/index.js'
import type { InclusionProof, LedgerEntry } from '../../src/sdk/types.js'
import type { StoredEvent } from '../../src/store/port.js'
import { leafOf } from '../../src/tree/leaf.js'
import { leafHash, rootFromLeafHashes, toBase64 } from '../../src/tree/merkle.js'
import { allowedProposal, expectError, SEED, seedWorld, startTestApi, type TestApi } from '../support/api.js'
import { buildGoVerifier, type GoVerifier } from '../support/go-verify.js'

let api: TestApi
let go: GoVerifier | null
let auditor: AuditorClient
let executor: ExecutorClient
/** every tree head the ledger has had, index size - 1, computed here from the ledger's events alone */
let heads: string[]
let verdictPosition: number

const BASE = 'http://service.test'

before(async () => {
  go = buildGoVerifier()
  api = await startTestApi()
  const world = await seedWorld(api)
  const allowed = await allowedProposal(api, world)
  await api.settle()
  const { verdict } = (
    await api.as(SEED.executor, 'executor').get(`/v1/proposals/${allowed.proposalId}/verdict`)
  ).json()
  verdictPosition = verdict.position
  const events = await api.runtime.store.readAll(0, 10_000)
  const leaves = events.map((e) => leafHash(leafOf(e)))
  heads = leaves.map((_, i) => toBase64(rootFromLeafHashes(leaves.slice(0, i + 1))))
  auditor = new AuditorClient({
    baseUrl: BASE,
    token: await api.tokenFor('auditor-1', 'auditor'),
    fetch: api.fetch,
  })
  executor = new ExecutorClient({
    baseUrl: BASE,
    token: await api.tokenFor(SEED.executor, 'executor'),
    fetch: api.fetch,
  })
})

after(async () => {
  await api?.close()
  go?.remove()
})

const flipped = (base64: string): string => {
  const bytes = Buffer.from(base64, 'base64')
  bytes[7] = (bytes[7] as number) ^ 0x10
  return bytes.toString('base64')
}

/** Go's verdict on an inclusion proof, the leaf recomputed from the event here; null without Go. */
const goInclusion = (event: LedgerEntry, proof: Pick<InclusionProof, 'treeSize' | 'hashes'>, root: string) =>
  go?.run('inclusion', {
    leaf: Buffer.from(leafOf(event)).toString('base64'),
    index: event.position - 1,
    treeSize: proof.treeSize,
    proof: proof.hashes,
    root,
  }).ok ?? null

const goConsistency = (size1: number, size2: number, proof: string[], root1: string, root2: string) =>
  go?.run('consistency', { size1, size2, proof, root1, root2 }).ok ?? null

test('the tree heads the service answers are the heads of the ledger, recomputed from its events', async () => {
  const now = await auditor.ledgerTree()
  assert.ok(now.size >= 40, `a ledger of some dozens of events (${now.size})`)
  assert.equal(now.size, heads.length)
  for (const size of [1, 2, 7, 8, 9, 31, now.size]) {
    assert.deepEqual(await auditor.ledgerTree(size), { size, rootHash: heads[size - 1] })
  }
})

test('inclusion proofs of several events in several trees verify with the SDK and with Go; altered, with neither', async () => {
  const size = heads.length
  const cases: Array<[number, number]> = [
    [1, 1],
    [1, size],
    [2, 2],
    [5, 8],
    [8, 8],
    [9, 17],
    [verdictPosition, verdictPosition],
    [verdictPosition, size],
    [size, size],
  ]
  for (const [position, treeSize] of cases) {
    const where = `position ${position} in the tree of ${treeSize}`
    const proof = await auditor.inclusionProof(position, treeSize)
    // the head to trust is not the one the proof brings: a checkpoint's, here the one computed from the ledger
    const trusted = heads[treeSize - 1] as string
    assert.equal(proof.rootHash, trusted, where)
    assert.equal(proof.event.position, position)
    assert.equal(proof.leafIndex, position - 1)
    assert.equal(verifyEventInclusion(proof.event, proof, trusted), true, `SDK: ${where}`)
    assert.notEqual(goInclusion(proof.event, proof, trusted), false, `Go: ${where}`)

    // the event altered in a field the chain hash covers: who acted, what it says
    for (const altered of [
      { ...proof.event, metadata: { ...proof.event.metadata, actor: 'someone-else' } },
      { ...proof.event, data: { ...(proof.event.data as object), extra: true } },
      { ...proof.event, recordedAt: '2020-01-01T00:00:00.000Z' },
    ]) {
      assert.equal(verifyEventInclusion(altered, proof, trusted), false, `SDK, altered event: ${where}`)
      assert.notEqual(goInclusion(altered, proof, trusted), true, `Go, altered event: ${where}`)
    }
    // another tree's head, or one changed hash of the proof
    const otherHead = heads[treeSize === 1 ? 1 : treeSize - 2] as string
    assert.equal(verifyEventInclusion(proof.event, proof, otherHead), false)
    assert.notEqual(goInclusion(proof.event, proof, otherHead), true)
    if (proof.hashes.length > 0) {
      const changed = {
        ...proof,
        hashes: proof.hashes.map((h, i) => (i === proof.hashes.length - 1 ? flipped(h) : h)),
      }
      assert.equal(verifyEventInclusion(proof.event, changed, trusted), false, `SDK, changed hash: ${where}`)
      assert.notEqual(goInclusion(proof.event, changed, trusted), true, `Go, changed hash: ${where}`)
    }
  }
  // the executor proves the verdict it acts on, and is given proofs of nothing but verdicts
  const verdict = await executor.inclusionProof(verdictPosition)
  assert.equal(verdict.event.type, 'VerdictIssued')
  assert.equal(verdict.treeSize, size)
  assert.equal(verifyEventInclusion(verdict.event, verdict, heads[size - 1] as string), true)
  const refused = await api.as(SEED.executor, 'executor').get('/v1/ledger/proofs/inclusion?position=1')
  assert.match(expectError(refused, 403, 'forbidden').message, /proofs of verdicts only/)
})

test('consistency proofs between several sizes verify with the SDK and with Go; a fork or a changed hash, with neither', async () => {
  const size = heads.length
  const head = (n: number) => heads[n - 1] as string
  for (const [from, to] of [
    [1, 1],
    [1, size],
    [2, 5],
    [7, 8],
    [8, size],
    [13, 33],
    [size - 1, size],
    [size, size],
  ] as const) {
    const where = `${from} -> ${to}`
    const proof = await auditor.consistencyProof(from, to)
    assert.deepEqual([proof.fromRoot, proof.toRoot], [head(from), head(to)], where)
    assert.equal(verifyConsistency(proof, head(from), head(to)), true, `SDK: ${where}`)
    assert.notEqual(goConsistency(from, to, proof.hashes, head(from), head(to)), false, `Go: ${where}`)
    // a first tree of the same size with other leaves (a fork), or a later tree that is not this one
    const forked = from === 1 ? head(2) : head(from - 1)
    assert.equal(verifyConsistency(proof, forked, head(to)), false, `SDK, forked: ${where}`)
    assert.notEqual(goConsistency(from, to, proof.hashes, forked, head(to)), true, `Go, forked: ${where}`)
    if (proof.hashes.length > 0) {
      const changed = proof.hashes.map((h, i) => (i === 0 ? flipped(h) : h))
      assert.equal(verifyConsistency({ ...proof, hashes: changed }, head(from), head(to)), false)
      assert.notEqual(goConsistency(from, to, changed, head(from), head(to)), true, `Go, changed: ${where}`)
    }
  }
})

test('sizes outside the ledger are refused (400, 404), and a size the tree has not reached is 503 with Retry-After', async () => {
  const size = heads.length
  const reader = api.as('auditor-1', 'auditor')
  for (const url of [
    '/v1/ledger/proofs/inclusion?position=0',
    '/v1/ledger/proofs/inclusion?position=x',
    '/v1/ledger/proofs/inclusion',
    `/v1/ledger/proofs/inclusion?position=5&treeSize=4`,
    '/v1/ledger/proofs/consistency?from=0',
    '/v1/ledger/proofs/consistency?from=5&to=4',
    '/v1/ledger/proofs/consistency?from=1.5',
    '/v1/ledger/tree?size=-1',
  ])
    expectError(await reader.get(url), 400, 'invalid')
  for (const url of [
    `/v1/ledger/proofs/inclusion?position=${size + 1}`,
    `/v1/ledger/proofs/inclusion?position=1&treeSize=${size + 1}`,
    `/v1/ledger/proofs/consistency?from=1&to=${size + 1}`,
    `/v1/ledger/proofs/consistency?from=${size + 1}`,
    `/v1/ledger/tree?size=${size + 1}`,
  ])
    expectError(await reader.get(url), 404, 'not-found')

  // another process holds derived.db: events are appended, but the tree cannot take them yet
  const lock = new Database(dataPaths(api.config).derived)
  try {
    lock.exec('BEGIN IMMEDIATE')
    const observation = {
      environment: 'staging',
      resource: 'deployment/api',
      version: 'v9',
      digest: 'sha256:api-v9',
      observedAt: new Date().toISOString(),
    }
    const stream = streams.resource('staging', 'deployment/api')
    const observed = [{ type: 'StateObserved', data: observation, metadata: { actor: SEED.observer } }]
    await api.runtime.store.append(stream, observed, 'any')
    const behind = await reader.get(`/v1/ledger/proofs/inclusion?position=${size + 1}`)
    expectError(behind, 503, 'unavailable')
    assert.match(
      behind.json().message,
      new RegExp(`Merkle tree holds ${size} of the ledger's ${size + 1} events`),
    )
    assert.equal(behind.headers['retry-after'], '1')
    expectError(await reader.get(`/v1/ledger/proofs/consistency?from=1&to=${size + 1}`), 503, 'unavailable')
  } finally {
    lock.exec('ROLLBACK')
    lock.close()
  }
  // the tree takes the event once the lock is gone, and proves it
  await api.settle(10_000)
  const proof = await auditor.inclusionProof(size + 1)
  const head = await auditor.ledgerTree()
  assert.equal(head.size, size + 1)
  assert.equal(verifyEventInclusion(proof.event, proof, head.rootHash), true)
  assert.equal(verifyEventInclusion(proof.event, proof, heads[size - 1] as string), false)
})

test('a real event read back from the store has the leaf the proof route proves', async () => {
  const [stored] = (await api.runtime.store.readAll(0, 1)) as [StoredEvent]
  const proof = await auditor.inclusionProof(1, 1)
  assert.deepEqual(proof.event, JSON.parse(JSON.stringify(stored)))
  assert.equal(
    proof.rootHash,
    toBase64(leafHash(leafOf(stored))),
    'a tree of one leaf: its head is the leaf hash',
  )
})

test("go-verify's note subcommand opens a signed note only with the signer's verifier key", async (t) => {
  if (!go) return t.skip('Go is not installed')
  // a C2SP signed note, written out by hand: an Ed25519 key, its verifier key, one signature line
  const name = 'ledger.test'
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const keyData = Buffer.concat([
    Buffer.of(1),
    publicKey.export({ format: 'der', type: 'spki' }).subarray(-32),
  ])
  const keyHash = createHash('sha256').update(`${name}\n`).update(keyData).digest().subarray(0, 4)
  const vkey = `${name}+${keyHash.toString('hex')}+${keyData.toString('base64')}`
  const text = `${name}\n${heads.length}\n${heads.at(-1)}\n`
  const signature = Buffer.concat([keyHash, sign(null, Buffer.from(text), privateKey)]).toString('base64')
  const note = `${text}\n\u2014 ${name} ${signature}\n`
  assert.deepEqual(go.run('note', { note, verifierKeys: [vkey] }), { ok: true, text, signers: [name] })
  const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
  const otherData = Buffer.concat([Buffer.of(1), other])
  const otherHash = createHash('sha256').update(`${name}\n`).update(otherData).digest().subarray(0, 4)
  const otherKey = `${name}+${otherHash.toString('hex')}+${otherData.toString('base64')}`
  assert.equal(go.run('note', { note, verifierKeys: [otherKey] }).ok, false, 'another key of the same name')
  assert.equal(
    go.run('note', { note: note.replace(`\n${heads.length}\n`, '\n1\n'), verifierKeys: [vkey] }).ok,
    false,
  )
})
