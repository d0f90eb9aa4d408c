/**
 * Decoded documents of one namespace kept in memory, the least recently used dropped first, absent ones
 * remembered too. It holds committed documents only, and it is right only while its owner is the one writer
 * of the namespace: the owner clears it whenever the namespace's checkpoint is not where it left it.
 */
export class DocCache {
  private readonly docs = new Map<string, unknown>()

  constructor(private readonly capacity: number) {}

  /** The document under `key`, loaded by `load` when it is not held. */
  get(key: string, load: () => unknown): unknown {
    if (this.docs.has(key)) {
      const doc = this.docs.get(key)
      // most recently used last
      this.docs.delete(key)
      this.docs.set(key, doc)
      return doc
    }
    const doc = load()
    this.remember(key, doc)
    return doc
  }

  /** What a commit wrote (null: deleted). */
  committed(changes: ReadonlyMap<string, unknown>): void {
    for (const [key, doc] of changes) this.remember(key, doc ?? undefined)
  }

  clear(): void {
    this.docs.clear()
  }

  get size(): number {
    return this.docs.size
  }

  private remember(key: string, doc: unknown): void {
    this.docs.delete(key)
    this.docs.set(key, doc)
    if (this.docs.size > this.capacity) {
      const oldest = this.docs.keys().next()
      if (!oldest.done) this.docs.delete(oldest.value)
    }
  }
}
