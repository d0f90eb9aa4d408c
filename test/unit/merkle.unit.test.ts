import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  consistencyProof,
  EMPTY_ROOT,
  fromBase64,
  type Hash,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromLeafHashes,
  rootOf,
  type SubtreeReader,
  toBase64,
  verifyConsistency,
  verifyInclusion,
} from '../../src/tree/merkle.js'

const hex = (h: Hash) => Buffer.from(h).toString('hex')
const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return new Uint8Array(hash.digest())
}

// ---------- RFC 9162 section 2.1, written out as the RFC defines it, over whole lists ----------

const split = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1)
/** MTH by its definition; remembered by (first leaf, length), a range of one list of distinct leaves */
const known = new WeakMap<Uint8Array, Map<number, Hash>>()
const mth = (d: readonly Uint8Array[]): Hash => {
  const [first] = d
  if (!first) return sha256()
  const seen = known.get(first)?.get(d.length)
  if (seen) return seen
  const k = split(d.length)
  const hash =
    d.length === 1
      ? sha256(Uint8Array.of(0), first)
      : sha256(Uint8Array.of(1), mth(d.slice(0, k)), mth(d.slice(k)))
  known.set(first, (known.get(first) ?? new Map()).set(d.length, hash))
  return hash
}
const PATH = (m: number, d: readonly Uint8Array[]): Hash[] => {
  if (d.length <= 1) return []
  const k = split(d.length)
  return m < k
    ? [...PATH(m, d.slice(0, k)), mth(d.slice(k))]
    : [...PATH(m - k, d.slice(k)), mth(d.slice(0, k))]
}
const SUBPROOF = (m: number, d: readonly Uint8Array[], b: boolean): Hash[] => {
  if (m === d.length) return b ? [] : [mth(d)]
  const k = split(d.length)
  return m <= k
    ? [...SUBPROOF(m, d.slice(0, k), b), mth(d.slice(k))]
    : [...SUBPROOF(m - k, d.slice(k), false), mth(d.slice(0, k))]
}
const PROOF = (m: number, d: readonly Uint8Array[]) => SUBPROOF(m, d, true)

/** Leaves of different lengths, one per index. */
const leavesOf = (n: number) =>
  Array.from({ length: n }, (_, i) => new TextEncoder().encode(`leaf ${i}${'.'.repeat(i % 7)}`))

/**
 * The complete subtrees of a tree of `size` leaves, as storage would hand them over; reading a subtree that is
 * not complete within `size` fails the test, since storage holds no such hash for a past size.
 */
const readerOf =
  (leaves: readonly Uint8Array[], size: number): SubtreeReader =>
  (level, index) => {
    const start = index * 2 ** level
    const end = start + 2 ** level
    assert.ok(
      Number.isInteger(index) && end <= size,
      `read of subtree ${level}/${index} beyond a tree of ${size}`,
    )
    return mth(leaves.slice(start, end))
  }

const MAX = 70
const LEAVES = leavesOf(MAX + 1)

test('the RFC 6962 test vectors: leaf and node hashes, tree heads, audit paths and consistency proofs', () => {
  const leaves = [
    '',
    '00',
    '10',
    '2021',
    '3031',
    '40414243',
    '5051525354555657',
    '606162636465666768696a6b6c6d6e6f',
  ].map((h) => new Uint8Array(Buffer.from(h, 'hex')))
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ]
  assert.equal(hex(EMPTY_ROOT), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  assert.equal(hex(rootFromLeafHashes([])), hex(EMPTY_ROOT))
  roots.forEach((root, i) => {
    assert.equal(hex(rootFromLeafHashes(leaves.slice(0, i + 1).map(leafHash))), root, `${i + 1} leaves`)
    assert.equal(hex(rootOf(i + 1, readerOf(leaves, i + 1))), root, `${i + 1} leaves, from subtrees`)
  })
  const read = readerOf(leaves, 8)
  assert.deepEqual(inclusionProof(0, 8, read).map(hex), [
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ])
  assert.deepEqual(inclusionProof(5, 8, read).map(hex), [
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  ])
  assert.deepEqual(consistencyProof(6, 8, read).map(hex), [
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  ])
  assert.deepEqual(consistencyProof(2, 5, readerOf(leaves, 5)).map(hex), [
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
  ])
  assert.deepEqual(consistencyProof(1, 1, readerOf(leaves, 1)), [])
})

test(`every inclusion proof for every size up to ${MAX} is the RFC's PATH, verifies, and verifies nothing else`, () => {
  for (let size = 1; size <= MAX; size++) {
    const d = LEAVES.slice(0, size)
    const root = mth(d)
    const read = readerOf(LEAVES, size)
    assert.equal(hex(rootOf(size, read)), hex(root))
    for (let index = 0; index < size; index++) {
      const proof = inclusionProof(index, size, read)
      assert.deepEqual(proof.map(hex), PATH(index, d).map(hex), `PATH(${index}, D[${size}])`)
      const leaf = leafHash(d[index] as Uint8Array)
      assert.ok(verifyInclusion(leaf, index, size, proof, root), `leaf ${index} of ${size}`)
      // the same proof says nothing of another leaf, position, size or tree
      const other = leafHash(LEAVES[(index + 1) % MAX] as Uint8Array)
      assert.ok(!verifyInclusion(other, index, size, proof, root))
      if (size > 1) assert.ok(!verifyInclusion(leaf, (index + 1) % size, size, proof, root))
      assert.ok(!verifyInclusion(leaf, index, size, proof, mth(LEAVES.slice(0, size + 1))))
      assert.ok(!verifyInclusion(leaf, index, size, [...proof, root], root), 'a hash too many')
      if (proof.length > 0) assert.ok(!verifyInclusion(leaf, index, size, proof.slice(1), root))
    }
  }
})

test(`every consistency proof between sizes up to ${MAX} is the RFC's PROOF, verifies, and verifies nothing else`, () => {
  const roots = [EMPTY_ROOT, ...Array.from({ length: MAX + 1 }, (_, i) => mth(LEAVES.slice(0, i + 1)))]
  // the same sizes, the last leaf another: a fork (copies, so that they are other leaves to mth too)
  const forks = roots.map((_, size) =>
    mth([...LEAVES.slice(0, size - 1).map((l) => l.slice()), Uint8Array.of(7)]),
  )
  for (let size2 = 1; size2 <= MAX; size2++) {
    const read = readerOf(LEAVES, size2)
    const root2 = roots[size2] as Hash
    for (let size1 = 1; size1 <= size2; size1++) {
      const root1 = roots[size1] as Hash
      const proof = consistencyProof(size1, size2, read)
      assert.deepEqual(
        proof.map(hex),
        PROOF(size1, LEAVES.slice(0, size2)).map(hex),
        `PROOF(${size1}, D[${size2}])`,
      )
      assert.ok(verifyConsistency(size1, size2, proof, root1, root2), `${size1} -> ${size2}`)
      // another first tree (a forked one: same size, other leaves), another second tree, other sizes
      const forked = forks[size1] as Hash
      assert.ok(!verifyConsistency(size1, size2, proof, forked, root2), `forked ${size1} -> ${size2}`)
      assert.ok(!verifyConsistency(size1, size2, proof, root1, roots[size2 + 1] as Hash))
      if (size1 > 1) assert.ok(!verifyConsistency(size1 - 1, size2, proof, roots[size1 - 1] as Hash, root2))
      assert.ok(!verifyConsistency(size1, size2, [...proof, root2], root1, root2), 'a hash too many')
      if (proof.length > 0) assert.ok(!verifyConsistency(size1, size2, proof.slice(1), root1, root2))
    }
  }
})

test('any one changed bit of any proof hash, or of either head, is refused', () => {
  const flip = (h: Hash, bit: number): Hash => {
    const changed = new Uint8Array(h)
    changed[bit >> 3] = (changed[bit >> 3] as number) ^ (1 << (bit & 7))
    return changed
  }
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 300 }),
      fc.nat(),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      (size2, a, b, which, bit) => {
        const leaves = leavesOf(size2)
        const read = readerOf(leaves, size2)
        const root2 = rootOf(size2, read)
        const index = a % size2
        const inclusion = inclusionProof(index, size2, read)
        const leaf = leafHash(leaves[index] as Uint8Array)
        const at = which % inclusion.length
        const tampered = inclusion.map((h, i) => (i === at ? flip(h, bit) : h))
        assert.ok(verifyInclusion(leaf, index, size2, inclusion, root2))
        assert.ok(!verifyInclusion(leaf, index, size2, tampered, root2))
        assert.ok(!verifyInclusion(flip(leaf, bit), index, size2, inclusion, root2))
        assert.ok(!verifyInclusion(leaf, index, size2, inclusion, flip(root2, bit)))

        const size1 = 1 + (b % (size2 - 1))
        const root1 = rootOf(size1, readerOf(leaves, size1))
        const consistency = consistencyProof(size1, size2, read)
        const c = which % consistency.length
        assert.ok(verifyConsistency(size1, size2, consistency, root1, root2))
        const changed = consistency.map((h, i) => (i === c ? flip(h, bit) : h))
        assert.ok(!verifyConsistency(size1, size2, changed, root1, root2))
        assert.ok(!verifyConsistency(size1, size2, consistency, flip(root1, bit), root2))
        assert.ok(!verifyConsistency(size1, size2, consistency, root1, flip(root2, bit)))
      },
    ),
    { numRuns: 300 },
  )
})

test('sizes and hashes out of range are refused, never thrown on', () => {
  const leaves = leavesOf(5)
  const read = readerOf(leaves, 5)
  const root = rootOf(5, read)
  const leaf = leafHash(leaves[0] as Uint8Array)
  const proof = inclusionProof(0, 5, read)
  for (const [index, size] of [
    [-1, 5],
    [5, 5],
    [0, 0],
    [0.5, 5],
    [0, Number.NaN],
    [0, 2 ** 60],
  ])
    assert.equal(
      verifyInclusion(leaf, index as number, size as number, proof, root),
      false,
      `${index} of ${size}`,
    )
  assert.equal(verifyInclusion(leaf, 0, 5, [...proof.slice(0, -1), new Uint8Array(31)], root), false)
  assert.equal(verifyConsistency(0, 5, [], EMPTY_ROOT, root), false)
  assert.equal(verifyConsistency(5, 4, [], root, root), false)
  assert.equal(verifyConsistency(5, 5, [], root, root), true)
  assert.equal(verifyConsistency(5, 5, [root], root, root), false)
  assert.throws(() => inclusionProof(5, 5, read), RangeError)
  assert.throws(() => consistencyProof(0, 5, read), RangeError)
  assert.throws(() => consistencyProof(6, 5, read), RangeError)
})

test('hashes travel as standard base64 of exactly 32 bytes', () => {
  const h = leafHash(new Uint8Array(0))
  const text = toBase64(h)
  assert.equal(text, Buffer.from(h).toString('base64'))
  assert.equal(text.length, 44)
  assert.deepEqual(fromBase64(text), new Uint8Array(h))
  for (const bad of [
    '',
    text.slice(1),
    `${text.slice(0, -1)}A`,
    text.replace(/.$/, '=='),
    `${text} `,
    text.replaceAll('+', '-'),
  ])
    if (bad !== text) assert.equal(fromBase64(bad), null, JSON.stringify(bad))
  assert.equal(hex(nodeHash(h, h)), hex(sha256(Uint8Array.of(1), h, h)))
})
