import assert from 'node:assert/strict'
import type { Projection } from '../../projections/projection.js'
import type { LedgerEvent } from '../../src/domain/events.js'

const deepFreeze = <T>(value: T): T => {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

export interface ProjectionSpec<D> {
  /** every document after the events, by key */
  readonly docs: ReadonlyMap<string, D>
  /** the document under key, or undefined */
  doc(key: string): D | undefined
  /** the documents whose key starts with prefix, in key order */
  list(prefix: string): D[]
  /** asserts each listed document; null asserts that there is none */
  then(expected: Record<string, D | null>): void
}

/**
 * Folds events through a projection as the runner does (each event reads the documents left by the
 * ones before it), storing documents as JSON and frozen, so a specification sees what a store would
 * hold and an evolve that mutates what it reads fails loudly.
 */
export const given = <D>(projection: Projection<D>, events: readonly LedgerEvent[]): ProjectionSpec<D> => {
  const docs = new Map<string, D>()
  const read = (key: string): D | undefined => docs.get(key)
  for (const event of events) {
    const changes = projection.evolve(read, event)
    for (const [key, doc] of changes) {
      if (doc === null) docs.delete(key)
      else docs.set(key, deepFreeze(JSON.parse(JSON.stringify(doc)) as D))
    }
  }
  const sorted = new Map([...docs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return {
    docs: sorted,
    doc: (key) => sorted.get(key),
    list: (prefix) => [...sorted].filter(([key]) => key.startsWith(prefix)).map(([, doc]) => doc),
    // biome-ignore lint/suspicious/noThenProperty: reads as given(events).then(docs), like the specifications it mirrors
    then(expected) {
      for (const [key, doc] of Object.entries(expected))
        assert.deepEqual(sorted.get(key) ?? null, doc, `document ${key}`)
    },
  }
}
