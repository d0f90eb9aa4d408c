import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ageSeconds, type OpenActionDoc, openKey } from '../../../projections/open-actions.js'
import { clockOf, viewsAt } from '../../application/as-of.js'
import { CheckName, Environment, Identifier, ImpactClass } from '../../domain/events.js'
import { asOfQuery } from '../as-of.js'
import { authorize } from '../auth.js'
import { readErrors } from '../schemas.js'

export const OpenState = z.enum(['awaiting-evidence', 'blocked', 'allowed', 'executing', 'failed'])

export const OpenActionSchema = z.object({
  proposalId: z.string(),
  agentId: z.string(),
  tool: z.string(),
  action: z.string(),
  resource: z.string(),
  environment: z.string(),
  impact: ImpactClass,
  state: OpenState,
  since: z.string().describe('when the action entered its current state'),
  ageSeconds: z.number().int().nonnegative().describe('seconds in its current state, as of the request'),
  submittedAt: z.string(),
  verdict: z
    .object({
      verdictId: z.string(),
      decision: z.enum(['allow', 'block']),
      failedChecks: z.array(CheckName),
      expiresAt: z.string(),
      ended: z.enum(['revoked', 'expired']).nullable(),
    })
    .nullable(),
  executionId: z.string().optional(),
  startedAt: z.string().optional(),
  failedAt: z.string().optional(),
  error: z.string().optional(),
  rollback: z.enum(['none', 'running', 'failed']).optional(),
  recoveryOverdue: z.boolean().optional(),
})

const OpenActionsQuery = z
  .object({
    state: OpenState.optional(),
    agentId: Identifier.optional(),
    environment: Environment.optional(),
    after: Identifier.optional().describe('the last proposalId of the previous page'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    ...asOfQuery,
  })
  .strict()

const PAGE = 1000

export const withAge = (doc: OpenActionDoc, now: Date) => ({
  ...doc,
  verdict: doc.verdict && { ...doc.verdict, failedChecks: [...doc.verdict.failedChecks] },
  ageSeconds: ageSeconds(doc, now),
})

/** Every open action that matches, in proposalId order, one stored page at a time; stops at limit. */
export const findOpenActions = (
  list: (prefix: string, options: { after?: string; limit: number }) => Array<[string, OpenActionDoc]>,
  match: (doc: OpenActionDoc) => boolean,
  options: { after?: string; limit?: number } = {},
): { found: OpenActionDoc[]; more: boolean } => {
  const found: OpenActionDoc[] = []
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  let after = options.after === undefined ? undefined : openKey(options.after)
  // read no more than the page needs (and one more, to tell whether there is a next page); when a filter
  // skips documents, each further read doubles, up to PAGE
  let size = Math.min(PAGE, limit + 1)
  for (;;) {
    const page = list('open:', after === undefined ? { limit: size } : { after, limit: size })
    for (const [, doc] of page) {
      if (!match(doc)) continue
      if (found.length === limit) return { found, more: true }
      found.push(doc)
    }
    const last = page.at(-1)
    if (last === undefined || page.length < size) return { found, more: false }
    after = last[0]
    size = Math.min(PAGE, size * 2)
  }
}

export const openActionRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { runtime } = app

  app.get(
    '/open-actions',
    {
      config: { readModel: true },
      preValidation: authorize('auditor', 'policy-admin', 'approver', 'executor'),
      schema: {
        tags: ['read models'],
        operationId: 'listOpenActions',
        summary:
          'Actions in flight (awaiting evidence, blocked, allowed, executing, failed), each with its age',
        querystring: OpenActionsQuery,
        response: {
          200: z.object({
            actions: z.array(OpenActionSchema),
            next: z.string().nullable().describe('pass as ?after= for the next page; null on the last'),
            asOf: z
              .number()
              .int()
              .describe(
                'the ledger position this view reflects; ages are as of its time when ?asOf is given',
              ),
          }),
          ...readErrors(400, 401, 403, 429, 503),
        },
      },
    },
    async (request) => {
      const { state, agentId, environment, after, limit } = request.query
      const { views, moment } = await viewsAt(runtime.store, runtime.views, request.query.asOf)
      // ages are a read-time matter: the wall clock now (not the ledger's time), or the moment asked for
      const now = clockOf(moment)
      const asOf = views.openActions.checkpoint()
      const { found, more } = findOpenActions(
        (prefix, options) => views.openActions.list(prefix, options),
        (doc) =>
          (state === undefined || doc.state === state) &&
          (agentId === undefined || doc.agentId === agentId) &&
          (environment === undefined || doc.environment === environment),
        after === undefined ? { limit } : { after, limit },
      )
      return {
        actions: found.map((doc) => withAge(doc, now)),
        next: more ? (found.at(-1)?.proposalId ?? null) : null,
        asOf,
      }
    },
  )
}
