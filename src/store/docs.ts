/**
 * Derived state (projections, the decision service's view of the world) kept as JSON documents
 * by key, one namespace per consumer, with the ledger position it reflects. It is always rebuildable
 * from the ledger, so it lives in a local embedded file whatever adapter holds the ledger.
 */
export interface DocStore {
  get(namespace: string, key: string): unknown
  /** documents whose key starts with prefix, in key order */
  list(
    namespace: string,
    prefix: string,
    options?: { after?: string; limit?: number },
  ): Array<[string, unknown]>
  /**
   * Writes the changed documents (null deletes) and the new checkpoint in one durable transaction; with
   * `expected`, only if the namespace is still at that checkpoint (else CheckpointMovedError, nothing written),
   * so two processes catching up on one folder never interleave their batches.
   */
  commit(
    namespace: string,
    changes: ReadonlyMap<string, unknown>,
    checkpoint: number,
    expected?: number,
    history?: DocHistory,
  ): void
  /**
   * The document under `key` as it was at the snapshot boundary `boundary`: the first document `history` kept
   * for it at that boundary or a later one, else the document now (see DocHistory).
   */
  getAt(namespace: string, key: string, boundary: number): unknown
  /** list() as it was at the snapshot boundary `boundary`. */
  listAt(
    namespace: string,
    prefix: string,
    boundary: number,
    options?: { after?: string; limit?: number },
  ): Array<[string, unknown]>
  /**
   * Runs `work` as one transaction: the commits it makes (of several namespaces) are written together, each still
   * all or nothing on its own (a commit that throws leaves the others).
   */
  together<T>(work: () => T): T
  /** the ledger position the namespace reflects; 0 when it has none */
  checkpoint(namespace: string): number
  /** drops every document, every kept earlier document and the checkpoint of the namespace */
  wipe(namespace: string): void
  /** every document as canonical JSON, in key order: for byte-for-byte comparison */
  dump(namespace: string): Array<[string, string]>
  close(): void
}

/**
 * Copy-on-write snapshots, committed with the documents they precede: by snapshot boundary (a ledger position),
 * each key's document as it was at that boundary, kept when the key first changes after it; null: it had none.
 * A commit keeps only the first document of a key at a boundary (one kept before stays), so the document of a
 * key at boundary B is the one kept at the smallest boundary >= B, or, when none was kept, the document now.
 */
export type DocHistory = ReadonlyMap<number, ReadonlyMap<string, unknown>>

/** Another process moved the namespace's checkpoint since this batch started: read it again and redo. */
export class CheckpointMovedError extends Error {
  override readonly name = 'CheckpointMovedError'
  constructor(
    readonly namespace: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`the ${namespace} checkpoint is at ${actual}, not at ${expected}: another process moved it`)
  }
}
