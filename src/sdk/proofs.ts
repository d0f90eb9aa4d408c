// Offline checks of the service's Merkle proofs (RFC 9162): against tree heads the caller trusts, a signed
// checkpoint's, never the heads the proof arrives with.
import { type Checkpoint, CheckpointError, openCheckpoint } from '../checkpoint/note.js'
import { leafOf, type Unlinked } from '../tree/leaf.js'
import {
  verifyConsistency as consistent,
  fromBase64,
  type Hash,
  leafHash,
  verifyInclusion,
} from '../tree/merkle.js'
import type { ConsistencyProof, InclusionProof } from './types.js'

export { type Checkpoint, CheckpointError, openCheckpoint } from '../checkpoint/note.js'
export { leafOf } from '../tree/leaf.js'
export { leafHash } from '../tree/merkle.js'

/** A tree head given in standard base64 or as its 32 bytes; null when it is neither. */
const headOf = (hash: string | Uint8Array): Hash | null =>
  typeof hash === 'string' ? fromBase64(hash) : hash.length === 32 ? hash : null

const hashesOf = (hashes: readonly unknown[]): Hash[] | null => {
  const decoded = hashes.map((h) => (typeof h === 'string' ? fromBase64(h) : null))
  return decoded.every((h): h is Hash => h !== null) ? decoded : null
}

/**
 * Whether `proof` shows `event` in the tree of `proof.treeSize` leaves whose head is `rootHash`. The leaf is
 * recomputed from the event (its envelope without prevHash and hash) at index position - 1, so a proof of
 * another event, or an event altered in any field the chain hash covers, does not verify.
 */
export const verifyEventInclusion = (
  event: Unlinked,
  proof: Pick<InclusionProof, 'treeSize' | 'hashes'> & { position?: number },
  rootHash: string | Uint8Array,
): boolean => {
  const root = headOf(rootHash)
  const hashes = hashesOf(proof.hashes)
  if (!root || !hashes) return false
  if (proof.position !== undefined && proof.position !== event.position) return false
  let leaf: Hash
  try {
    leaf = leafHash(leafOf(event))
  } catch {
    return false
  }
  return verifyInclusion(leaf, event.position - 1, proof.treeSize, hashes, root)
}

/**
 * Whether `proof` shows the tree of `proof.from` leaves with head `fromRoot` to be a prefix of the tree of
 * `proof.to` leaves with head `toRoot`: the ledger between two checkpoints only grew.
 */
export const verifyConsistency = (
  proof: Pick<ConsistencyProof, 'from' | 'to' | 'hashes'>,
  fromRoot: string | Uint8Array,
  toRoot: string | Uint8Array,
): boolean => {
  const root1 = headOf(fromRoot)
  const root2 = headOf(toRoot)
  const hashes = hashesOf(proof.hashes)
  if (!root1 || !root2 || !hashes) return false
  return consistent(proof.from, proof.to, hashes, root1, root2)
}

/**
 * Whether the ledger between two signed checkpoints only grew: both open under the pinned verifier keys (C2SP
 * signed notes), name the same log, and `proof` leads from the older tree to the newer at exactly their sizes.
 * Every check offline; any failure (a signature, another log, sizes the proof is not for) answers false.
 */
export const verifyCheckpointConsistency = (
  older: string,
  newer: string,
  proof: Pick<ConsistencyProof, 'from' | 'to' | 'hashes'>,
  verifierKeys: readonly string[],
): boolean => {
  let from: Checkpoint
  let to: Checkpoint
  try {
    from = openCheckpoint(older, verifierKeys)
    to = openCheckpoint(newer, verifierKeys)
  } catch (error) {
    if (error instanceof CheckpointError) return false
    throw error
  }
  if (from.origin !== to.origin || proof.from !== from.size || proof.to !== to.size) return false
  return verifyConsistency(proof, from.rootHash, to.rootHash)
}
