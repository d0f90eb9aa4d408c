import { decodeProtectedHeader, type JSONWebKeySet } from 'jose'
import { type DataOf, DECISION_OUTPUT_TYPES, toLedgerEvent } from '../domain/events.js'
import { FIELDS_ONLY_VERDICT_JWS_TYPE, jwsTypeOf } from '../domain/signing.js'
import type { DocStore } from '../store/docs.js'
import type { EventStore, StoredEvent } from '../store/port.js'
import { decideAndEvolve } from './decide.js'
import { DECISION_ACTOR, DECISION_NAMESPACE, resetWorld, toWrites } from './service.js'
import { type VerdictSigner, verifyVerdictSignature } from './signer.js'
import { World } from './world.js'

/** One answer of the decision service, as it stands (or would stand) in the ledger. */
export interface Decision {
  readonly stream: string
  readonly type: string
  readonly data: unknown
  /** the id of the event it answers */
  readonly causationId: string | null
}

const PAGE_SIZE = 1000

/** Pages through the ledger in global order: the whole of it, or the events after `after` up to `through`. */
export async function* everyEvent(
  store: EventStore,
  after = 0,
  through = Number.POSITIVE_INFINITY,
): AsyncGenerator<StoredEvent> {
  for (let at = after; at < through; ) {
    const page = await store.readAll(at, Math.min(PAGE_SIZE, through - at))
    const last = page.at(-1)
    if (!last) return
    yield* page
    at = last.position
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
    const outputs = decideAndEvolve(world, toLedgerEvent(stored), 'what-if')
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

/** The key id a compact JWS names, read without verifying it. */
const keyIdOfJws = (jws: string): unknown => {
  try {
    return decodeProtectedHeader(jws).kid
  } catch {
    return undefined
  }
}

/**
 * The replayed answers in the form the ledger recorded them: a verdict recorded before the registered claims
 * were signed (its JWS over its fields alone, typ verdict+jws) is signed that way again, so that an older
 * ledger still compares byte for byte; a verdict recorded with a verdict key since retired (`verdictKeys`
 * holds it) takes its recorded signature when that verifies over exactly the replayed fields, since the
 * retired private key is gone; every other answer is left as it was replayed.
 */
export const inRecordedForm = async (
  replayed: readonly Decision[],
  recorded: readonly Decision[],
  signer: VerdictSigner,
  verdictKeys: JSONWebKeySet = { keys: [] },
): Promise<Decision[]> => {
  const recordedSignatures = new Map(
    recorded.flatMap((d) => {
      const data = d.data as DataOf<'VerdictIssued'>
      return d.type === 'VerdictIssued' ? [[data.verdictId, data.signature] as const] : []
    }),
  )
  return Promise.all(
    replayed.map(async (d) => {
      if (d.type !== 'VerdictIssued') return d
      const { signature: _signature, ...fields } = d.data as DataOf<'VerdictIssued'>
      const was = recordedSignatures.get(fields.verdictId)
      if (was === undefined) return d
      if (keyIdOfJws(was) !== signer.keyId) {
        try {
          await verifyVerdictSignature({ ...fields, signature: was }, verdictKeys)
          return { ...d, data: { ...fields, signature: was } }
        } catch {
          // not a signature of these fields by a verdict key of the service: the difference shows
          return d
        }
      }
      if (jwsTypeOf(was) !== FIELDS_ONLY_VERDICT_JWS_TYPE) return d
      return {
        ...d,
        data: { ...fields, signature: await signer.sign(fields, FIELDS_ONLY_VERDICT_JWS_TYPE) },
      }
    }),
  )
}
