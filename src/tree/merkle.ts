// The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1: hashing, tree heads, inclusion and
// consistency proofs, and their verification. Pure: storage hands it the hashes of complete subtrees.
import * as crypto from 'node:crypto'

/** A SHA-256 hash: a leaf's, a node's or a tree head's. */
export type Hash = Uint8Array

export const HASH_SIZE = 32

const LEAF_PREFIX = Uint8Array.of(0x00)
const NODE_PREFIX = Uint8Array.of(0x01)

/** SHA-256 of bytes, or of a text's UTF-8 bytes: one call where Node has crypto.hash (20.12 on), faster. */
const sha256: (data: string | Uint8Array) => Hash =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'buffer')
    : (data) => crypto.createHash('sha256').update(data).digest()

/** The hash of a leaf: SHA-256(0x00 || leaf) (RFC 9162 section 2.1.1); a leaf given as text is its UTF-8 bytes. */
export const leafHash = (leaf: Uint8Array | string): Hash =>
  sha256(typeof leaf === 'string' ? `\0${leaf}` : Buffer.concat([LEAF_PREFIX, leaf]))

/** The hash of an interior node: SHA-256(0x01 || left || right). */
export const nodeHash = (left: Hash, right: Hash): Hash => sha256(Buffer.concat([NODE_PREFIX, left, right]))

/** The head of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Hash = sha256(new Uint8Array(0))

/** A hash in standard base64 with padding, as C2SP checkpoints write the root. */
export const toBase64 = (hash: Hash): string => Buffer.from(hash).toString('base64')

const BASE64_HASH = /^[A-Za-z0-9+/]{43}=$/

/** A hash from standard base64; null unless it is exactly the 44 characters of a 32-byte hash. */
export const fromBase64 = (text: string): Hash | null =>
  BASE64_HASH.test(text) ? new Uint8Array(Buffer.from(text, 'base64')) : null

export const sameHash = (a: Hash, b: Hash): boolean =>
  a.length === b.length && a.every((byte, i) => byte === b[i])

/** The largest power of two smaller than n (n > 1): where RFC 9162 splits a tree of n leaves. */
export const splitOf = (n: number): number => {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** MTH of a list of leaf hashes (RFC 9162 section 2.1.1). */
export const rootFromLeafHashes = (hashes: readonly Hash[]): Hash => {
  if (hashes.length === 0) return EMPTY_ROOT
  const [only] = hashes
  if (hashes.length === 1 && only) return only
  const k = splitOf(hashes.length)
  return nodeHash(rootFromLeafHashes(hashes.slice(0, k)), rootFromLeafHashes(hashes.slice(k)))
}

/**
 * Reads the hash of a complete subtree: the 2^level leaves from index * 2^level on. Every hash a tree head or
 * a proof needs is one of these, or is computed from a few of them.
 */
export type SubtreeReader = (level: number, index: number) => Hash

/**
 * MTH(D[start:end]) for a range a proof asks about: `start` is a multiple of the largest power of two that fits
 * in the range, so the range is a run of complete subtrees, each smaller than the one before.
 */
const rangeHash = (start: number, end: number, read: SubtreeReader): Hash => {
  const parts: Hash[] = []
  for (let lo = start; lo < end; ) {
    let size = 1
    let level = 0
    while (size * 2 <= end - lo) {
      size *= 2
      level += 1
    }
    parts.push(read(level, lo / size))
    lo += size
  }
  let hash = parts.pop() ?? EMPTY_ROOT
  for (let part = parts.pop(); part; part = parts.pop()) hash = nodeHash(part, hash)
  return hash
}

/** The tree head at `size` leaves. */
export const rootOf = (size: number, read: SubtreeReader): Hash => rangeHash(0, size, read)

/** PATH(m, D[start:end]) of RFC 9162 section 2.1.3.1: the hashes from the leaf's sibling up. */
const path = (m: number, start: number, end: number, read: SubtreeReader): Hash[] => {
  if (end - start <= 1) return []
  const k = splitOf(end - start)
  return m < k
    ? [...path(m, start, start + k, read), rangeHash(start + k, end, read)]
    : [...path(m - k, start + k, end, read), rangeHash(start, start + k, read)]
}

/** The inclusion proof of the leaf at `index` in the tree of `size` leaves (0 <= index < size). */
export const inclusionProof = (index: number, size: number, read: SubtreeReader): Hash[] => {
  if (!validSize(size) || !Number.isSafeInteger(index) || index < 0 || index >= size)
    throw new RangeError(`no leaf ${index} in a tree of ${size}`)
  return path(index, 0, size, read)
}

/** SUBPROOF(m, D[start:end], b) of RFC 9162 section 2.1.4.1. */
const subproof = (m: number, start: number, end: number, whole: boolean, read: SubtreeReader): Hash[] => {
  const n = end - start
  if (m === n) return whole ? [] : [rangeHash(start, end, read)]
  const k = splitOf(n)
  return m <= k
    ? [...subproof(m, start, start + k, whole, read), rangeHash(start + k, end, read)]
    : [...subproof(m - k, start + k, end, false, read), rangeHash(start, start + k, read)]
}

/** The consistency proof from the tree of `size1` leaves to the tree of `size2` (0 < size1 <= size2). */
export const consistencyProof = (size1: number, size2: number, read: SubtreeReader): Hash[] => {
  if (!validSize(size1) || !validSize(size2) || size1 < 1 || size1 > size2)
    throw new RangeError(`no consistency proof from a tree of ${size1} to one of ${size2}`)
  return subproof(size1, 0, size2, true, read)
}

const validSize = (n: number): boolean => Number.isSafeInteger(n) && n >= 0

const wellFormed = (proof: readonly Hash[], ...hashes: Hash[]): boolean =>
  [...proof, ...hashes].every((h) => h instanceof Uint8Array && h.length === HASH_SIZE)

const isOdd = (n: number): boolean => n % 2 === 1
const half = (n: number): number => Math.floor(n / 2)

/** Whether `proof` shows the leaf with hash `leaf` at `index` in the tree of `size` whose head is `root` (2.1.3.2). */
export const verifyInclusion = (
  leaf: Hash,
  index: number,
  size: number,
  proof: readonly Hash[],
  root: Hash,
): boolean => {
  if (!validSize(size) || !Number.isSafeInteger(index) || index < 0 || index >= size) return false
  if (!wellFormed(proof, leaf, root)) return false
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (sn === 0) return false
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r)
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = half(fn)
    sn = half(sn)
  }
  return sn === 0 && sameHash(r, root)
}

/**
 * Whether `proof` shows the tree of `size1` leaves with head `root1` to be a prefix of the tree of `size2` with
 * head `root2` (RFC 9162 section 2.1.4.2); for equal sizes the proof is empty and the heads are the same.
 */
export const verifyConsistency = (
  size1: number,
  size2: number,
  proof: readonly Hash[],
  root1: Hash,
  root2: Hash,
): boolean => {
  if (!validSize(size1) || !validSize(size2) || size1 < 1 || size1 > size2) return false
  if (!wellFormed(proof, root1, root2)) return false
  if (size1 === size2) return proof.length === 0 && sameHash(root1, root2)
  if (proof.length === 0) return false
  // a first tree of a power-of-two size is a complete subtree of the second: its head starts the path
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof]
  let fn = size1 - 1
  let sn = size2 - 1
  while (isOdd(fn)) {
    fn = half(fn)
    sn = half(sn)
  }
  const [first, ...rest] = path
  if (!first) return false
  let fr = first
  let sr = first
  for (const c of rest) {
    if (sn === 0) return false
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn)
        sn = half(sn)
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  return sn === 0 && sameHash(fr, root1) && sameHash(sr, root2)
}

const isPowerOfTwo = (n: number): boolean => {
  let k = 1
  while (k < n) k *= 2
  return k === n
}
