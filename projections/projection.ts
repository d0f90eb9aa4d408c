import type { DomainEvent, LedgerEvent } from '../src/domain/events.js'

/** Reads a document as it was before the event being applied. */
export type DocReader<D> = (key: string) => D | undefined

/** A document to write under its key; null removes it. */
export type DocChange<D> = readonly [key: string, doc: D | null]

/**
 * A projection is a pure evolve over ledger events, keyed so that a large read model never has to sit
 * in memory whole: given the documents it reads, it returns the documents it changes.
 */
export interface Projection<D = unknown> {
  readonly name: string
  /** bump when evolve changes meaning: stored state of another version is rebuilt from zero */
  readonly version: number
  evolve(read: DocReader<D>, event: LedgerEvent<DomainEvent>): ReadonlyArray<DocChange<D>>
}
