import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { StreamingRoot } from '../../src/checkpoint/verify-ledger.js'
import { judge, proofNeeded } from '../../src/checkpoint/witness.js'
import { consistencyProof, leafHash, rootFromLeafHashes, type SubtreeReader } from '../../src/tree/merkle.js'

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(`event ${i}`))

/** complete subtrees of a list of leaf hashes, as the tree's storage would answer them */
const readerOf =
  (hashes: readonly Uint8Array[]): SubtreeReader =>
  (level, index) =>
    rootFromLeafHashes(hashes.slice(index * 2 ** level, (index + 1) * 2 ** level))

describe('the root of a ledger read once, leaf by leaf', () => {
  it('is the RFC 9162 tree head for every size up to 70', () => {
    const all = leaves(70)
    const streaming = new StreamingRoot()
    assert.deepEqual(streaming.root(), rootFromLeafHashes([]))
    for (let n = 1; n <= all.length; n += 1) {
      streaming.add(all[n - 1] as Uint8Array)
      assert.deepEqual(streaming.root(), rootFromLeafHashes(all.slice(0, n)), `size ${n}`)
    }
  })
})

describe('the witness judges a new checkpoint against the kept one', () => {
  const all = leaves(20)
  const at = (size: number, origin = 'log.example/governance-ledger') => ({
    origin,
    size,
    rootHash: rootFromLeafHashes(all.slice(0, size)),
    extensions: [],
  })
  const proof = (from: number, to: number) => consistencyProof(from, to, readerOf(all))

  it('keeps the first, and a larger tree proved to hold the kept one', () => {
    assert.equal(judge(null, at(5), null).finding, 'first')
    assert.deepEqual(proofNeeded(at(5), at(12)), { from: 5, to: 12 })
    const grew = judge(at(5), at(12), proof(5, 12))
    assert.deepEqual([grew.finding, grew.alarm, grew.keep], ['grew', false, 'new'])
    assert.equal(judge(at(12), at(12), null).finding, 'same')
  })

  it('alarms on a rollback, a fork at the same size, a proof that does not hold, another log', () => {
    assert.equal(judge(at(12), at(5), null).finding, 'rollback')
    const other = { ...at(12), rootHash: leafHash('another history') }
    assert.equal(judge(at(12), other, null).finding, 'fork')
    const forked = judge(at(5), { ...at(12), rootHash: leafHash('x') }, proof(5, 12))
    assert.deepEqual([forked.finding, forked.alarm, forked.keep], ['fork', true, 'kept'])
    assert.equal(judge(at(5), at(12), null).finding, 'fork', 'no proof is no proof')
    assert.equal(judge(at(5), at(12, 'elsewhere'), proof(5, 12)).finding, 'origin')
  })
})
