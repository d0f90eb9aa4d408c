/** The most JSON (in characters) of the documents one cache holds: a few large documents cannot fill the heap. */
export const DOC_CACHE_BYTES = 4 * 1024 * 1024

/** What a document takes as JSON; an absent one takes nothing. */
const jsonLength = (doc: unknown): number => (doc === undefined ? 0 : (JSON.stringify(doc)?.length ?? 0))

/**
 * Decoded documents of one namespace kept in memory, the least recently used dropped first, absent ones
 * remembered too; bounded by count and by the JSON size of what it holds. It holds committed documents only,
 * and it is right only while its owner is the one writer of the namespace: the owner clears it whenever the
 * namespace's checkpoint is not where it left it.
 */
export class DocCache {
  private readonly docs = new Map<string, { readonly doc: unknown; readonly bytes: number }>()
  private bytes = 0

  constructor(
    private readonly capacity: number,
    private readonly maxBytes: number = DOC_CACHE_BYTES,
  ) {}

  /** The document under `key`, loaded by `load` when it is not held. */
  get(key: string, load: () => unknown): unknown {
    const held = this.docs.get(key)
    if (held) {
      // most recently used last
      this.docs.delete(key)
      this.docs.set(key, held)
      return held.doc
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
    this.bytes = 0
  }

  get size(): number {
    return this.docs.size
  }

  /** The JSON size of the documents held. */
  get heldBytes(): number {
    return this.bytes
  }

  private remember(key: string, doc: unknown): void {
    this.forget(key)
    const bytes = jsonLength(doc)
    // a document larger than the whole budget is read from the store each time
    if (bytes > this.maxBytes) return
    this.docs.set(key, { doc, bytes })
    this.bytes += bytes
    while (this.docs.size > this.capacity || this.bytes > this.maxBytes) {
      const oldest = this.docs.keys().next()
      if (oldest.done) break
      this.forget(oldest.value)
    }
  }

  private forget(key: string): void {
    const held = this.docs.get(key)
    if (!held) return
    this.docs.delete(key)
    this.bytes -= held.bytes
  }
}
