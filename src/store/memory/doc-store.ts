import { canonicalizeRecorded, jsonText } from '../../domain/canonical.js'
import { CheckpointMovedError, type DocHistory, type DocStore } from '../docs.js'

/** Key order as SQLite's: UTF-8 bytes, which is code point order (JS `<` compares UTF-16 units). */
export const compareKeys = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** An in-memory DocStore for fast tests. Documents are kept as JSON text, as the SQLite store keeps them. */
export class MemoryDocStore implements DocStore {
  private readonly docs = new Map<string, Map<string, string>>()
  private readonly checkpoints = new Map<string, number>()
  /** by namespace, key, then boundary: the JSON kept, null when the key had no document */
  private readonly history = new Map<string, Map<string, Map<number, string | null>>>()

  get(namespace: string, key: string): unknown {
    const text = this.docs.get(namespace)?.get(key)
    return text === undefined ? undefined : JSON.parse(text)
  }

  list(
    namespace: string,
    prefix: string,
    options: { after?: string; limit?: number } = {},
  ): Array<[string, unknown]> {
    const { after, limit } = options
    // only the keys under the prefix are sorted, not the whole namespace
    const keys = [...(this.docs.get(namespace)?.keys() ?? [])].filter(
      (key) => key.startsWith(prefix) && (after === undefined || compareKeys(key, after) > 0),
    )
    return keys
      .sort(compareKeys)
      .slice(0, limit)
      .map((key) => [key, this.get(namespace, key)])
  }

  together<T>(work: () => T): T {
    return work()
  }

  commit(
    namespace: string,
    changes: ReadonlyMap<string, unknown>,
    checkpoint: number,
    expected?: number,
    history?: DocHistory,
  ): void {
    const actual = this.checkpoint(namespace)
    if (expected !== undefined && actual !== expected)
      throw new CheckpointMovedError(namespace, expected, actual)
    // serialise everything first, so that a document JSON cannot hold leaves the store untouched
    const texts = [...changes].map(([key, doc]) => [key, doc == null ? null : toJson(doc)] as const)
    const kept = [...(history ?? [])].flatMap(([boundary, docs]) =>
      [...docs].map(([key, doc]) => [boundary, key, doc == null ? null : toJson(doc)] as const),
    )
    let keys = this.history.get(namespace)
    if (!keys && kept.length > 0) {
      keys = new Map()
      this.history.set(namespace, keys)
    }
    for (const [boundary, key, text] of kept) {
      let boundaries = keys?.get(key)
      if (!boundaries) {
        boundaries = new Map()
        keys?.set(key, boundaries)
      }
      // the first document kept at a boundary stays
      if (!boundaries.has(boundary)) boundaries.set(boundary, text)
    }
    const docs = this.namespace(namespace)
    for (const [key, text] of texts) {
      if (text === null) docs.delete(key)
      else docs.set(key, text)
    }
    this.checkpoints.set(namespace, checkpoint)
  }

  getAt(namespace: string, key: string, boundary: number): unknown {
    const text = this.textAt(namespace, key, boundary)
    return text == null ? undefined : JSON.parse(text)
  }

  listAt(
    namespace: string,
    prefix: string,
    boundary: number,
    options: { after?: string; limit?: number } = {},
  ): Array<[string, unknown]> {
    const { after, limit } = options
    const candidates = new Set([
      ...(this.docs.get(namespace)?.keys() ?? []),
      ...(this.history.get(namespace)?.keys() ?? []),
    ])
    const found: Array<[string, unknown]> = []
    for (const key of [...candidates].sort(compareKeys)) {
      if (!key.startsWith(prefix) || (after !== undefined && compareKeys(key, after) <= 0)) continue
      const text = this.textAt(namespace, key, boundary)
      if (text != null) found.push([key, JSON.parse(text)])
    }
    return found.slice(0, limit)
  }

  checkpoint(namespace: string): number {
    return this.checkpoints.get(namespace) ?? 0
  }

  wipe(namespace: string): void {
    this.history.delete(namespace)
    this.docs.delete(namespace)
    this.checkpoints.delete(namespace)
  }

  dump(namespace: string): Array<[string, string]> {
    const docs = this.docs.get(namespace)
    return this.sortedKeys(namespace).map((key) => [
      key,
      canonicalizeRecorded(JSON.parse(docs?.get(key) ?? 'null')),
    ])
  }

  close(): void {}

  /** The JSON of a key at a boundary: kept at the smallest boundary at or after it, else now; null or undefined: none. */
  private textAt(namespace: string, key: string, boundary: number): string | null | undefined {
    let first: number | undefined
    let text: string | null | undefined
    for (const [at, kept] of this.history.get(namespace)?.get(key) ?? []) {
      if (at >= boundary && (first === undefined || at < first)) {
        first = at
        text = kept
      }
    }
    return first === undefined ? this.docs.get(namespace)?.get(key) : text
  }

  private namespace(namespace: string): Map<string, string> {
    const existing = this.docs.get(namespace)
    if (existing) return existing
    const created = new Map<string, string>()
    this.docs.set(namespace, created)
    return created
  }

  private sortedKeys(namespace: string): string[] {
    return [...(this.docs.get(namespace)?.keys() ?? [])].sort(compareKeys)
  }
}

const toJson = (doc: unknown): string => {
  const text = jsonText(doc)
  if (text === undefined) throw new TypeError(`a document must be JSON, not ${typeof doc}`)
  return text
}
