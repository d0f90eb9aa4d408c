import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { CheckpointError, openCheckpoint } from '../../checkpoint/note.js'
import { verifyAgainstCheckpoint } from '../../checkpoint/verify-ledger.js'
import { checkpointVerifierKeys } from '../../keys/key-list.js'
import { authorize } from '../auth.js'
import { ApiError, notFound } from '../errors.js'
import { errorResponses, readErrors } from '../schemas.js'

/** The longest signed checkpoint the service reads: a few lines and a handful of signatures. */
export const MAX_CHECKPOINT_BYTES = 8 * 1024

const NOTE_TYPE = 'text/plain; charset=utf-8'
const Note = {
  description: 'a signed checkpoint: a C2SP tlog-checkpoint in a C2SP signed note',
  content: { [NOTE_TYPE]: { schema: z.string() } },
}

const SizeParams = z.object({ size: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict()

const VerificationBody = z
  .object({
    checkpoint: z.string().min(1).max(MAX_CHECKPOINT_BYTES).describe('a signed checkpoint, as kept'),
  })
  .strict()

const VerificationResponse = z.object({
  ok: z.boolean(),
  verdict: z
    .enum(['consistent', 'truncated', 'altered', 'forked'])
    .describe('consistent: the ledger holds its tree as a prefix; else what was done to the ledger'),
  checkpoint: z.object({ origin: z.string(), size: z.number().int(), rootHash: z.string() }),
  localRoot: z.string().nullable().describe('the root of the local ledger at the checkpoint size'),
  localSize: z.number().int(),
  brokenAt: z.number().int().nullable(),
  reason: z.string(),
})

/**
 * The published checkpoints, without a token: a checkpoint says how many events the ledger holds and a hash
 * of them, nothing of what they are, and witnesses must copy them to keep the operator honest.
 */
export const checkpointPublicRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { checkpoints } = app.runtime

  app.get(
    '/v1/checkpoints/latest',
    {
      config: { public: true },
      schema: {
        tags: ['checkpoints'],
        operationId: 'getLatestCheckpoint',
        summary: 'The newest signed checkpoint of the ledger’s Merkle tree (C2SP tlog-checkpoint)',
        security: [],
        response: { 200: Note, ...readErrors(404) },
      },
    },
    async (_request, reply) => {
      const latest = checkpoints.latest()
      if (latest === null) throw notFound('a checkpoint (none was cut yet)')
      return reply.type(NOTE_TYPE).header('cache-control', 'no-cache').send(latest.note)
    },
  )

  app.get(
    '/v1/checkpoints/:size',
    {
      config: { public: true },
      schema: {
        tags: ['checkpoints'],
        operationId: 'getCheckpoint',
        summary: 'The signed checkpoint cut at one tree size',
        security: [],
        params: SizeParams,
        response: { 200: Note, ...readErrors(400, 404) },
      },
    },
    async (request, reply) => {
      const note = checkpoints.folder.read(request.params.size)
      if (note === null) throw notFound(`the checkpoint of size ${request.params.size}`)
      // a checkpoint never changes once cut
      return reply.type(NOTE_TYPE).header('cache-control', 'public, max-age=31536000, immutable').send(note)
    },
  )
}

export const checkpointRoutes = async (base: FastifyInstance): Promise<void> => {
  const app = base.withTypeProvider<ZodTypeProvider>()
  const { store, keyList } = app.runtime

  app.post(
    '/ledger/checkpoint-verifications',
    {
      // a read of the whole ledger: the overload guard neither refuses nor times it; it needs the Merkle tree
      config: { appendsNothing: true, readModel: true },
      preValidation: authorize('auditor', 'policy-admin'),
      schema: {
        tags: ['ledger'],
        operationId: 'verifyLedgerAgainstCheckpoint',
        summary:
          'Checks the ledger against a checkpoint kept outside it: truncated, altered, forked, or consistent',
        body: VerificationBody,
        response: { 200: VerificationResponse, ...errorResponses },
      },
    },
    async (request) => {
      let checkpoint: ReturnType<typeof openCheckpoint>
      try {
        checkpoint = openCheckpoint(request.body.checkpoint, checkpointVerifierKeys(keyList))
      } catch (error) {
        if (error instanceof CheckpointError)
          throw new ApiError('invalid', `the checkpoint is refused: ${error.message}`)
        throw error
      }
      return verifyAgainstCheckpoint(store, checkpoint)
    },
  )
}
