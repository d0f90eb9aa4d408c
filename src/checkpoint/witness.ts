import { verifyConsistency } from '../tree/merkle.js'
import type { Checkpoint } from './note.js'

/**
 * What a witness concludes from the checkpoint it kept and the one it reads now:
 * - `first`: nothing was kept yet; the new one is kept;
 * - `same`: the same tree;
 * - `grew`: a larger tree, proved to hold the kept one as its prefix; the new one is kept;
 * - `rollback`: a smaller tree than one already committed to;
 * - `fork`: another tree at the same size, or a larger tree that does not hold the kept one;
 * - `origin`: a checkpoint of another log;
 * - `unsigned`: a checkpoint no pinned key signed, which commits to nothing.
 * The last four are alarms: the witness keeps the checkpoint it had.
 */
export type WitnessFinding = 'first' | 'same' | 'grew' | 'rollback' | 'fork' | 'origin' | 'unsigned'

export const ALARMS: ReadonlySet<WitnessFinding> = new Set(['rollback', 'fork', 'origin', 'unsigned'])

export interface WitnessJudgement {
  readonly finding: WitnessFinding
  readonly alarm: boolean
  readonly reason: string
  /** what the witness keeps from now on */
  readonly keep: 'new' | 'kept'
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0
const b64 = (hash: Uint8Array) => Buffer.from(hash).toString('base64')

/** Whether the kept checkpoint needs a consistency proof to judge the new one, and between which sizes. */
export const proofNeeded = (
  kept: Checkpoint | null,
  next: Checkpoint,
): { from: number; to: number } | null =>
  kept !== null && kept.origin === next.origin && next.size > kept.size && kept.size > 0
    ? { from: kept.size, to: next.size }
    : null

/** Judges a new checkpoint against the kept one; `proof` is the consistency proof `proofNeeded` asked for. */
export const judge = (
  kept: Checkpoint | null,
  next: Checkpoint,
  proof: readonly Uint8Array[] | null,
): WitnessJudgement => {
  const verdict = (finding: WitnessFinding, reason: string): WitnessJudgement => ({
    finding,
    alarm: ALARMS.has(finding),
    reason,
    keep: finding === 'first' || finding === 'grew' ? 'new' : 'kept',
  })
  if (kept === null) return verdict('first', `kept the first checkpoint seen: size ${next.size}`)
  if (next.origin !== kept.origin)
    return verdict('origin', `the checkpoint is of ${next.origin}, not of ${kept.origin}`)
  if (next.size < kept.size) {
    return verdict(
      'rollback',
      `the log went back from size ${kept.size} to ${next.size}: events committed to were removed`,
    )
  }
  if (next.size === kept.size) {
    return same(next.rootHash, kept.rootHash)
      ? verdict('same', `no new events: size ${next.size}`)
      : verdict(
          'fork',
          `two trees at size ${next.size}: ${b64(kept.rootHash)} kept, ${b64(next.rootHash)} now`,
        )
  }
  // an empty tree is a prefix of every tree
  if (kept.size === 0) return verdict('grew', `grew from 0 to ${next.size}`)
  if (proof === null || !verifyConsistency(kept.size, next.size, [...proof], kept.rootHash, next.rootHash)) {
    return verdict(
      'fork',
      `the tree of size ${next.size} does not hold the kept tree of size ${kept.size} as its prefix: the history was rewritten`,
    )
  }
  return verdict('grew', `grew from ${kept.size} to ${next.size}, consistent with the kept checkpoint`)
}
