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
  /** writes the changed documents (null deletes) and the new checkpoint in one durable transaction */
  commit(namespace: string, changes: ReadonlyMap<string, unknown>, checkpoint: number): void
  /** the ledger position the namespace reflects; 0 when it has none */
  checkpoint(namespace: string): number
  /** drops every document and the checkpoint of the namespace */
  wipe(namespace: string): void
  /** every document as canonical JSON, in key order: for byte-for-byte comparison */
  dump(namespace: string): Array<[string, string]>
  close(): void
}
