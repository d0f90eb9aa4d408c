import { ChainVerifier } from '../store/chain.js'
import type { EventStore } from '../store/port.js'
import { leafOf } from '../tree/leaf.js'
import { EMPTY_ROOT, type Hash, leafHash, nodeHash } from '../tree/merkle.js'
import type { Checkpoint } from './note.js'

/**
 * What a kept checkpoint says of the local ledger:
 * - `consistent`: the ledger holds the checkpoint's tree as a prefix (it may have grown since);
 * - `truncated`: the ledger holds fewer events than the checkpoint committed to;
 * - `altered`: the hash chain breaks before the checkpoint's size (an event changed in place);
 * - `forked`: the chain holds, but the tree at the checkpoint's size is another tree (a consistent rewrite).
 */
export type CheckpointVerdict = 'consistent' | 'truncated' | 'altered' | 'forked'

export interface CheckpointReport {
  readonly verdict: CheckpointVerdict
  readonly ok: boolean
  /** the checkpoint's tree size and root, and the root the local ledger gives at that size (null if it cannot) */
  readonly checkpoint: { readonly origin: string; readonly size: number; readonly rootHash: string }
  readonly localRoot: string | null
  /** how many events the local ledger holds */
  readonly localSize: number
  /** the first position where the chain breaks, when it does */
  readonly brokenAt: number | null
  readonly reason: string
}

/**
 * The root of a tree of leaves given one at a time, without holding them: a stack of the roots of the perfect
 * subtrees so far, as the binary digits of the count say (RFC 9162 builds the same tree: MTH splits at the
 * largest power of two below the size, which is the leftmost perfect subtree here).
 */
export class StreamingRoot {
  /** roots of perfect subtrees, largest (leftmost) first, each with its leaf count */
  private readonly stack: Array<{ readonly hash: Hash; readonly size: number }> = []
  private count = 0

  add(leaf: Hash): void {
    let entry = { hash: leaf, size: 1 }
    for (let top = this.stack.at(-1); top !== undefined && top.size === entry.size; top = this.stack.at(-1)) {
      this.stack.pop()
      entry = { hash: nodeHash(top.hash, entry.hash), size: top.size * 2 }
    }
    this.stack.push(entry)
    this.count += 1
  }

  get size(): number {
    return this.count
  }

  /** The root of the leaves added so far: the perfect subtrees folded right to left. */
  root(): Hash {
    const last = this.stack.at(-1)
    if (last === undefined) return EMPTY_ROOT
    let hash = last.hash
    for (let i = this.stack.length - 2; i >= 0; i -= 1)
      hash = nodeHash((this.stack[i] as { hash: Hash }).hash, hash)
    return hash
  }
}

const b64 = (hash: Hash): string => Buffer.from(hash).toString('base64')

/**
 * Checks the local ledger against a kept checkpoint, from the ledger alone (never from derived state, which is
 * the operator's to rewrite): the hash chain up to the checkpoint's size, and the Merkle root at that size.
 * Reads page by page, so memory stays flat whatever the size.
 */
export const verifyAgainstCheckpoint = async (
  store: EventStore,
  checkpoint: Checkpoint,
  pageSize = 1000,
): Promise<CheckpointReport> => {
  const chain = new ChainVerifier()
  const tree = new StreamingRoot()
  const kept = { origin: checkpoint.origin, size: checkpoint.size, rootHash: b64(checkpoint.rootHash) }
  const report = (verdict: CheckpointVerdict, reason: string, extra: Partial<CheckpointReport> = {}) => ({
    verdict,
    ok: verdict === 'consistent',
    checkpoint: kept,
    localRoot: null,
    localSize: tree.size,
    brokenAt: null,
    reason,
    ...extra,
  })
  let after = 0
  while (tree.size < checkpoint.size) {
    const page = await store.readAll(after, pageSize)
    const last = page.at(-1)
    // a page may stop short at its byte budget: only an empty page is the end
    if (last === undefined) break
    for (const event of page) {
      if (tree.size === checkpoint.size) break
      if (!chain.add(event)) {
        const brokenAt = chain.report().firstFault?.position ?? event.position
        return report(
          'altered',
          `the hash chain breaks at position ${brokenAt}, inside the checkpoint's tree`,
          {
            brokenAt,
          },
        )
      }
      tree.add(leafHash(leafOf(event)))
    }
    after = last.position
  }
  const head = await store.head()
  if (tree.size < checkpoint.size) {
    return report(
      'truncated',
      `the ledger holds ${head.position} events, the checkpoint committed to ${checkpoint.size}: events were removed from its end`,
      { localSize: head.position },
    )
  }
  const localRoot = tree.root()
  const localSize = head.position
  if (Buffer.compare(Buffer.from(localRoot), Buffer.from(checkpoint.rootHash)) !== 0) {
    return report(
      'forked',
      `the chain holds, but the tree of the first ${checkpoint.size} events is another tree: they were rewritten and their hashes recomputed`,
      { localRoot: b64(localRoot), localSize },
    )
  }
  return report(
    'consistent',
    `the ledger holds the checkpoint's tree of ${checkpoint.size} events as its prefix (it now holds ${localSize})`,
    { localRoot: b64(localRoot), localSize },
  )
}
