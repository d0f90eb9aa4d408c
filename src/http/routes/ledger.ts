import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { verifyLedger } from '../../store/verify.js'
import { authorize } from '../auth.js'
import { readErrors } from '../schemas.js'

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
  views: z.record(z.string(), Consumer).describe('per read model: authority, open actions, metrics, audit'),
})

export const ledgerRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, decision, views } = app.runtime
  const readers = authorize('auditor', 'policy-admin')

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
      preValidation: readers,
      schema: {
        tags: ['ledger'],
        operationId: 'getLedgerHead',
        summary: "The ledger's head, and how far the decision service and each read model have got",
        response: { 200: HeadResponse, ...readErrors(401, 403, 429) },
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
      }
    },
  )
}
