import type { KeyObject } from 'node:crypto'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import type { Logger } from 'pino'
import type { RevokedTokens } from '../auth/revocations.js'
import { createTokenVerifier, verifierKeys } from '../auth/tokens.js'
import type { Published } from '../checkpoint/publisher.js'
import type { Config } from '../config.js'
import { type KeyList, retiredTokenKeys } from '../keys/key-list.js'
import type { DocStore } from '../store/docs.js'
import type { EventStore } from '../store/port.js'
import { checkpointMessage, topicsFor } from './cloudevents.js'
import { Ingress, Intake } from './ingress.js'
import { kafkaLogCreator } from './log.js'
import { Relay } from './relay.js'
import { ensureTopics } from './topics.js'

export interface KafkaBridge {
  readonly relay: Relay
  readonly ingress: Ingress
  /** publishes a signed checkpoint on governance.checkpoints */
  publishCheckpoint(published: Published): Promise<void>
  /** whether the broker answers a metadata request within 2 s */
  reachable(): Promise<boolean>
  close(): Promise<void>
}

const kafkaLogLevel = (level: Config['LOG_LEVEL']) =>
  level === 'debug' || level === 'trace'
    ? logLevel.INFO
    : level === 'silent'
      ? logLevel.NOTHING
      : logLevel.ERROR

/** How long `reachable` waits for the broker's answer. */
const REACHABLE_WITHIN_MS = 2000

/** The token settings on Kafka: the service's, with the Kafka audience (KAFKA_TOKEN_AUDIENCE) for AUTH_AUDIENCE. */
export const kafkaTokenConfig = (config: Config): Config => ({
  ...config,
  AUTH_AUDIENCE: config.KAFKA_TOKEN_AUDIENCE,
})

/** With KAFKA_BROKERS set: creates missing topics and starts the ingress; the runtime starts the relay (outbox). */
export const startKafkaBridge = async (
  config: Config,
  deps: {
    store: EventStore
    docs: DocStore
    tokenKey: KeyObject | null
    keyList: KeyList
    revokedTokens: RevokedTokens
    log: Logger
  },
): Promise<KafkaBridge> => {
  const brokers = String(config.KAFKA_BROKERS).split(',')
  const log = deps.log.child({ component: 'kafka' })
  const kafka = new Kafka({
    clientId: config.KAFKA_CLIENT_ID,
    brokers,
    logLevel: kafkaLogLevel(config.LOG_LEVEL),
    logCreator: kafkaLogCreator(log),
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
  })
  const admin = kafka.admin()
  await admin.connect()
  const topics = topicsFor(config.KAFKA_TOPIC_PREFIX)
  const created = await ensureTopics(
    admin,
    topics,
    config.KAFKA_TOPIC_PARTITIONS,
    config.KAFKA_REPLICATION_FACTOR,
  )
  if (created.length > 0) log.info({ topics: created }, 'created topics')
  // one request in flight keeps each stream's events in order across retries
  const producer = kafka.producer({
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  const groupId = `${config.KAFKA_TOPIC_PREFIX}${config.KAFKA_CLIENT_ID}.ingress`
  // a crashed consumer is started again by the ingress, with its backoff and its report, never silently; the
  // group gives up on a dead member after 10 s (not kafkajs's 30 s), so the one started again takes over soon
  const consumer = () =>
    kafka.consumer({
      groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      // stopping waits for the fetch under way: half a second, not kafkajs's 5 s, keeps a drain short
      maxWaitTimeInMs: 500,
      retry: { restartOnFailure: async () => false },
    })
  const relay = new Relay(deps.store, deps.docs, producer, topics, log)
  // tokens on Kafka carry an audience of their own: an HTTP token is refused there, and a Kafka token on HTTP
  const verifier = createTokenVerifier(
    kafkaTokenConfig(config),
    verifierKeys(config, deps.tokenKey, retiredTokenKeys(deps.keyList)),
    {
      revoked: deps.revokedTokens,
    },
  )
  const intake = new Intake(deps.store, verifier, config.KAFKA_MAX_MESSAGE_BYTES)
  const ingress = new Ingress(consumer, producer, topics, intake, log)
  await ingress.start()
  return {
    relay,
    ingress,
    publishCheckpoint: async ({ checkpoint, note }) => {
      await producer.send({
        topic: topics.checkpoints,
        messages: [checkpointMessage(checkpoint, note, new Date().toISOString())],
      })
    },
    reachable: async () => {
      // the admin client retries for many seconds: a broker that does not answer soon does not answer
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<false>((r) => {
        timer = setTimeout(() => r(false), REACHABLE_WITHIN_MS)
      })
      try {
        return await Promise.race([admin.describeCluster().then(() => true), late])
      } catch {
        return false
      } finally {
        clearTimeout(timer)
      }
    },
    close: async () => {
      await ingress.stop()
      await relay.stop()
      await producer.disconnect()
      await admin.disconnect()
    },
  }
}
