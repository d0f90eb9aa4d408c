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
  ): void
  /** the ledger position the namespace reflects; 0 when it has none */
  checkpoint(namespace: string): number
  /** drops every document and the checkpoint of the namespace */
  wipe(namespace: string): void
  /** every document as canonical JSON, in key order: for byte-for-byte comparison */
  dump(namespace: string): Array<[string, string]>
  close(): void
}

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
