import { type DataOf, DECISION_OUTPUT_TYPES, toLedgerEvent } from '../domain/events.js'
import { FIELDS_ONLY_VERDICT_JWS_TYPE, jwsTypeOf } from '../domain/signing.js'
import type { DocStore } from '../store/docs.js'
import type { EventStore, StoredEvent } from '../store/port.js'
import { decide } from './decide.js'
import { DECISION_ACTOR, DECISION_NAMESPACE, resetWorld, toWrites } from './service.js'
import type { VerdictSigner } from './signer.js'
import { World } from './world.js'

/** One answer of the decision service, as it stands (or would stand) in the ledger. */
export interface Decision {
  readonly stream: string
  readonly type: string
  readonly data: unknown
  /** the id of the event it answers */
  readonly causationId: string | null
}

/** Pages through the whole ledger in global order. */
export async function* everyEvent(store: EventStore, pageSize = 1000): AsyncGenerator<StoredEvent> {
  let after = 0
  for (;;) {
    const page = await store.readAll(after, pageSize)
    if (page.length === 0) return
    yield* page
    after = page.at(-1)?.position ?? after
  }
}

/** The answers the decision service recorded, in ledger order. */
export const recordedDecisions = async (store: EventStore): Promise<Decision[]> => {
  const decisions: Decision[] = []
  for await (const e of everyEvent(store)) {
    if (DECISION_OUTPUT_TYPES.has(e.type as never) && e.metadata.actor === DECISION_ACTOR) {
      decisions.push({ stream: e.stream, type: e.type, data: e.data, causationId: e.metadata.causationId })
    }
  }
  return decisions
}

/**
 * Decides the whole ledger again from an empty world, with no side effect but on `docs`: the same ledger
 * and the same key give the same answers, byte for byte.
 */
export const replayDecisions = async (
  store: EventStore,
  signer: VerdictSigner,
  docs: DocStore,
  namespace = DECISION_NAMESPACE,
): Promise<Decision[]> => {
  resetWorld(docs, namespace)
  const decisions: Decision[] = []
  let world = World.over(docs, namespace)
  let position = 0
  for await (const stored of everyEvent(store)) {
    const outputs = decide(world, toLedgerEvent(stored))
    for (const write of await toWrites(outputs, signer, stored)) {
      for (const e of write.events) {
        decisions.push({
          stream: write.stream,
          type: e.type,
          data: e.data,
          causationId: e.metadata.causationId ?? null,
        })
      }
    }
    position = stored.position
    // keep the overlay small: save the world every thousand events, as the live service saves per batch
    if (position % 1000 === 0) {
      docs.commit(namespace, world.changed(), position)
      world = World.over(docs, namespace)
    }
  }
  docs.commit(namespace, world.changed(), position)
  return decisions
}

/**
 * The replayed answers in the form the ledger recorded them: a verdict recorded before the registered claims
 * were signed (its JWS over its fields alone, typ verdict+jws) is signed that way again, so that an older
 * ledger still compares byte for byte; every other answer is left as it was replayed.
 */
export const inRecordedForm = async (
  replayed: readonly Decision[],
  recorded: readonly Decision[],
  signer: VerdictSigner,
): Promise<Decision[]> => {
  const fieldsOnly = new Set(
    recorded.flatMap((d) => {
      const data = d.data as DataOf<'VerdictIssued'>
      return d.type === 'VerdictIssued' && jwsTypeOf(data.signature) === FIELDS_ONLY_VERDICT_JWS_TYPE
        ? [data.verdictId]
        : []
    }),
  )
  return Promise.all(
    replayed.map(async (d) => {
      if (d.type !== 'VerdictIssued' || !fieldsOnly.has((d.data as DataOf<'VerdictIssued'>).verdictId))
        return d
      const { signature: _signature, ...fields } = d.data as DataOf<'VerdictIssued'>
      return {
        ...d,
        data: { ...fields, signature: await signer.sign(fields, FIELDS_ONLY_VERDICT_JWS_TYPE) },
      }
    }),
  )
}
