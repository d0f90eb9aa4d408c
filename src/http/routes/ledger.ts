import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Role } from '../../auth/tokens.js'
import { verifyLedger } from '../../store/verify.js'
import { toBase64 } from '../../tree/merkle.js'
import { authorize, hasRole, principalOf } from '../auth.js'
import { ApiError, bearerChallenge } from '../errors.js'
import { EventSummary, readErrors } from '../schemas.js'
import { VERDICT_EVENT_TYPES } from './verdict-stream.js'

const Head = z.object({ position: z.number().int(), hash: z.string() })

const VerifyResponse = z.object({
  ok: z.boolean(),
  checked: z.number().int().describe('events whose link and hash held, from the first'),
  head: Head.describe('the last event that verified'),
  firstFault: z
    .object({
      kind: z.enum(['gap', 'broken-link', 'bad-hash']),
      position: z.number().int(),
      expectedPosition: z.number().int().optional(),
    })
    .nullable()
    .describe('the first modified, deleted, inserted or reordered event; null when the chain holds'),
})

const Consumer = z.object({
  position: z.number().int().describe('the last ledger position it reflects'),
  lag: z.number().int().describe('events behind the head'),
})

const HeadResponse = Head.extend({
  decision: Consumer,
  views: z
    .record(z.string(), Consumer)
    .describe('per read model: authority, open actions, metrics, audit, survival'),
  tree: Consumer.describe('the Merkle tree: the position of its last leaf'),
})

/** The roles given a proof of any event; an executor is given proofs of verdicts, which it reads anyway. */
const ANY_EVENT: Role[] = ['auditor', 'policy-admin']

const Base64Hash = z
  .string()
  .describe('a SHA-256 hash in standard base64, as a C2SP checkpoint writes the root')

/** A tree size or a ledger position in a query: a whole number from 1 on. */
const Count = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER)

const TreeQuery = z.object({
  size: Count.optional().describe('a past size of the tree; the tree as it is now when left out'),
})

const TreeHead = z.object({
  size: z.number().int().describe('leaves in the tree: the ledger up to this position'),
  rootHash: Base64Hash.describe('the RFC 9162 tree head (MTH) over the leaves'),
})

const InclusionQuery = z.object({
  position: Count.describe('the ledger position of the event; its leaf index is position - 1'),
  treeSize: Count.optional().describe(
    'the size of the tree to prove inclusion in; the tree now when left out',
  ),
})

const LedgerEventBody = EventSummary.extend({
  data: z.unknown(),
  metadata: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
}).describe('the event as the ledger holds it: its leaf is its RFC 8785 envelope without prevHash and hash')

const InclusionResponse = z.object({
  position: z.number().int(),
  leafIndex: z.number().int().describe('position - 1'),
  treeSize: z.number().int(),
  rootHash: Base64Hash.describe('the tree head at treeSize'),
  hashes: z.array(Base64Hash).describe('the inclusion proof of RFC 9162 section 2.1.3, from the leaf up'),
  event: LedgerEventBody,
})

const ConsistencyQuery = z.object({
  from: Count.describe('the size of the earlier tree'),
  to: Count.optional().describe('the size of the later tree; the tree now when left out'),
})

const ConsistencyResponse = z.object({
  from: z.number().int(),
  to: z.number().int(),
  fromRoot: Base64Hash.describe('the tree head at from'),
  toRoot: Base64Hash.describe('the tree head at to'),
  hashes: z
    .array(Base64Hash)
    .describe('the consistency proof of RFC 9162 section 2.1.4; empty when from equals to'),
})

export const ledgerRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, decision, views, tree } = app.runtime
  const readers = authorize('auditor', 'policy-admin')

  /**
   * A tree of `size` leaves is there: a size beyond the ledger is not (404); one the tree has not reached yet
   * is answered 503 with Retry-After, never with a proof of another tree.
   */
  const holdTree = async (size: number): Promise<void> => {
    const head = (await store.head()).position
    if (size > head) throw new ApiError('not-found', `the ledger has ${head} events, not ${size}`, { head })
    if (size > tree.size())
      throw new ApiError(
        'unavailable',
        `the Merkle tree holds ${tree.size()} of the ledger's ${head} events, not yet ${size}: retry in a moment`,
      )
  }

  app.get(
    '/ledger/verify',
    {
      preValidation: readers,
      schema: {
        tags: ['ledger'],
        operationId: 'verifyLedger',
        summary: 'Walks the whole hash chain and names the first event where it breaks',
        response: { 200: VerifyResponse, ...readErrors(401, 403, 429) },
      },
    },
    async () => verifyLedger(store),
  )

  app.get(
    '/ledger/head',
    {
      config: { readModel: true },
      preValidation: readers,
      schema: {
        tags: ['ledger'],
        operationId: 'getLedgerHead',
        summary: "The ledger's head, and how far the decision service and each read model have got",
        response: { 200: HeadResponse, ...readErrors(401, 403, 429, 503) },
      },
    },
    async () => {
      const head = await store.head()
      const consumer = (position: number) => ({ position, lag: Math.max(0, head.position - position) })
      return {
        ...head,
        decision: consumer(decision.position),
        views: Object.fromEntries(
          Object.values(views).map((view) => [view.name, consumer(view.checkpoint())]),
        ),
        tree: consumer(tree.size()),
      }
    },
  )

  app.get(
    '/ledger/tree',
    {
      config: { readModel: true },
      preValidation: readers,
      schema: {
        tags: ['ledger'],
        operationId: 'getLedgerTree',
        summary: "The Merkle tree's head (RFC 9162) over the ledger, now or at a past size",
        querystring: TreeQuery,
        response: { 200: TreeHead, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { size: asked } = request.query
      if (asked !== undefined) await holdTree(asked)
      const size = asked ?? tree.size()
      return { size, rootHash: toBase64(tree.root(size)) }
    },
  )

  app.get(
    '/ledger/proofs/inclusion',
    {
      config: { readModel: true },
      // an executor proves that the verdict it acts on is in the ledger: verdicts only, which it reads anyway
      preValidation: authorize('auditor', 'policy-admin', 'executor'),
      schema: {
        tags: ['ledger'],
        operationId: 'getInclusionProof',
        summary:
          'The proof that the event at a position is in the Merkle tree of a given size, with the event (to an executor: verdicts only)',
        querystring: InclusionQuery,
        response: { 200: InclusionResponse, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { position } = request.query
      const treeSize = request.query.treeSize ?? Math.max(tree.size(), position)
      if (position > treeSize)
        throw new ApiError('invalid', `position ${position} is not in a tree of ${treeSize}`, {
          fields: [{ field: 'querystring.position', message: `beyond treeSize ${treeSize}` }],
        })
      await holdTree(treeSize)
      const [event] = await store.readAll(position - 1, 1)
      if (event?.position !== position) throw new ApiError('not-found', `no event at position ${position}`)
      const principal = principalOf(request)
      if (!hasRole(principal, ...ANY_EVENT) && !VERDICT_EVENT_TYPES.has(event.type)) {
        const message = `an executor is given proofs of verdicts only: position ${position} is not a verdict`
        throw new ApiError(
          'forbidden',
          message,
          { required: ANY_EVENT, held: principal.roles },
          { 'www-authenticate': bearerChallenge({ error: 'insufficient_scope', description: message }) },
        )
      }
      return {
        position,
        leafIndex: position - 1,
        treeSize,
        rootHash: toBase64(tree.root(treeSize)),
        hashes: tree.inclusionProof(position - 1, treeSize).map(toBase64),
        event,
      }
    },
  )

  app.get(
    '/ledger/proofs/consistency',
    {
      config: { readModel: true },
      preValidation: readers,
      schema: {
        tags: ['ledger'],
        operationId: 'getConsistencyProof',
        summary: 'The proof that the Merkle tree of one size is a prefix of the tree of a later size',
        querystring: ConsistencyQuery,
        response: { 200: ConsistencyResponse, ...readErrors(400, 401, 403, 404, 429, 503) },
      },
    },
    async (request) => {
      const { from } = request.query
      const to = request.query.to ?? Math.max(tree.size(), from)
      if (from > to)
        throw new ApiError('invalid', `a tree of ${from} cannot be a prefix of a tree of ${to}`, {
          fields: [{ field: 'querystring.from', message: `beyond to ${to}` }],
        })
      await holdTree(to)
      return {
        from,
        to,
        fromRoot: toBase64(tree.root(from)),
        toRoot: toBase64(tree.root(to)),
        hashes: tree.consistencyProof(from, to).map(toBase64),
      }
    },
  )
}
