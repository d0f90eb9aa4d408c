import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { RETRY_AFTER_SECONDS } from '../errors.js'
import { prometheusPlugin } from './metrics.js'

/** More undecided events than this and the service is not ready: its verdicts would lag behind. */
export const READY_MAX_DECISION_LAG = 100

const ReadyBody = z.object({
  ready: z.boolean(),
  ledger: z.object({ position: z.number().int().nullable() }),
  decision: z.object({ position: z.number().int(), lag: z.number().int().nullable() }),
  kafka: z
    .object({
      reachable: z.boolean(),
      relayPosition: z.number().int(),
      ingress: z.object({
        failure: z.string().nullable().describe('why the ingress is not consuming now, or null'),
      }),
    })
    .optional()
    .describe('present when KAFKA_BROKERS is set: the broker must answer and the ingress consume'),
  faults: z
    .array(z.object({ part: z.string(), reason: z.string() }))
    .describe(
      'what has stopped or can no longer be trusted; while any is listed the execution gate is closed',
    ),
  reason: z.string().optional(),
})

const Jwks = z.object({
  keys: z.array(z.looseObject({ kty: z.string(), kid: z.string(), alg: z.string(), use: z.literal('sig') })),
})

const CheckpointKeys = z.object({
  origin: z.string().describe("the origin of the service's checkpoints, and the name of their key"),
  current: z.string().describe('the verifier key the service signs checkpoints with now'),
  keys: z
    .array(
      z.object({
        verifierKey: z.string().describe('a C2SP note verifier key: <name>+<key hash>+<base64 key>'),
        since: z.string().describe('when it became the current key'),
        retiredAt: z.string().nullable().describe('when it stopped being it; null for the current key'),
      }),
    )
    .describe('every key the service has signed checkpoints with, the oldest first'),
})

/** Public routes (no token). Wrapped with fastify-plugin so the request counter it installs sees every route. */
export const systemRoutes = fp(
  async (base: FastifyInstance): Promise<void> => {
    await base.register(prometheusPlugin)
    const app = base.withTypeProvider<ZodTypeProvider>()
    const { store, decision, jwks, kafka, health, checkpointSigner, keyList } = app.runtime

    app.get(
      '/health',
      {
        config: { public: true },
        schema: {
          tags: ['system'],
          operationId: 'getHealth',
          summary: 'Liveness: answers while the process serves',
          security: [],
          response: { 200: z.object({ status: z.literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    )

    app.get(
      '/ready',
      {
        config: { public: true },
        schema: {
          tags: ['system'],
          operationId: 'getReadiness',
          summary: `Readiness: the ledger answers, every ledger consumer runs, the decision service is at most ${READY_MAX_DECISION_LAG} events behind, and the Kafka broker answers when one is configured`,
          security: [],
          response: { 200: ReadyBody, 503: ReadyBody },
        },
      },
      async (request, reply) => {
        const decided = decision.position
        const faults = health.problems()
        let position: number
        try {
          position = (await store.head()).position
        } catch (error) {
          // the cause goes to the log, not to an unauthenticated caller
          request.log.warn({ err: error }, 'readiness: the ledger does not answer')
          void reply.header('retry-after', String(RETRY_AFTER_SECONDS))
          return reply.code(503).send({
            ready: false,
            ledger: { position: null },
            decision: { position: decided, lag: null },
            faults,
            reason: 'the ledger does not answer',
          })
        }
        const lag = Math.max(0, position - decided)
        const broker = kafka
          ? {
              reachable: await kafka.reachable(),
              relayPosition: kafka.relay.position,
              ingress: { failure: kafka.ingress.failure },
            }
          : undefined
        const reason =
          faults.length > 0
            ? faults.map((f) => `${f.part}: ${f.reason}`).join('; ')
            : decided > position
              ? `the decision service is at position ${decided}, beyond the ledger's head ${position}: its state was derived from another ledger`
              : lag > READY_MAX_DECISION_LAG
                ? `the decision service is ${lag} events behind the ledger`
                : broker && !broker.reachable
                  ? 'the Kafka broker does not answer'
                  : broker?.ingress.failure
                    ? `the Kafka ingress is not consuming: ${broker.ingress.failure}`
                    : undefined
        // not ready: asked again in a moment, as every 503 says
        if (reason) void reply.header('retry-after', String(RETRY_AFTER_SECONDS))
        return reply.code(reason ? 503 : 200).send({
          ready: reason === undefined,
          ledger: { position },
          decision: { position: decided, lag },
          faults,
          ...(broker ? { kafka: broker } : {}),
          ...(reason ? { reason } : {}),
        })
      },
    )

    app.get(
      '/.well-known/jwks.json',
      {
        config: { public: true },
        schema: {
          tags: ['system'],
          operationId: 'getSigningKeys',
          summary:
            'Every public key the service signs verdicts and tokens with (JWKS): the verdict keys, and in AUTH_MODE=embedded the token key',
          description:
            "Each key has its kid, alg EdDSA and use sig. A verdict's JWS names a verdict key (kid ed25519-…, typ verdict+jwt); a token the service issues names the token key (kid token-ed25519-…, typ JWT). The current verdict key comes first, then every verdict key retired by a rotation, so that every verdict stays verifiable; a retired token key is listed while tokens it signed may be alive. No secret is ever published.",
          security: [],
          response: { 200: Jwks },
        },
      },
      async (_request, reply) => {
        void reply.header('cache-control', 'public, max-age=300')
        // the serializer checks the shape; jose types every JWK member as optional
        return jwks as z.infer<typeof Jwks>
      },
    )

    const checkpointKeys = {
      origin: checkpointSigner.name,
      current: checkpointSigner.verifierKey,
      keys: keyList.checkpoint,
    }
    app.get(
      '/v1/checkpoints/keys',
      {
        config: { public: true },
        schema: {
          tags: ['system'],
          operationId: 'getCheckpointKeys',
          summary: 'Every key the service has signed checkpoints with: the current one and those retired',
          description:
            'A checkpoint is a C2SP signed note; it verifies with one of these verifier keys (Ed25519), whatever rotation came since. Keep the list where you keep checkpoints: a key that appears here later than you first saw the list is a rotation to ask about.',
          security: [],
          response: { 200: CheckpointKeys },
        },
      },
      async (_request, reply) => {
        void reply.header('cache-control', 'public, max-age=300')
        return checkpointKeys
      },
    )
  },
  { name: 'governance-system-routes' },
)
