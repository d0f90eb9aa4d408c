import { Kafka, logLevel, Partitioners } from 'kafkajs'
import type { Logger } from 'pino'
import type { TokenVerifier } from '../auth/tokens.js'
import type { Config } from '../config.js'
import type { DocStore } from '../store/docs.js'
import type { EventStore } from '../store/port.js'
import { topicsFor } from './cloudevents.js'
import { Ingress } from './ingress.js'
import { Relay } from './relay.js'
import { ensureTopics } from './topics.js'

export interface KafkaBridge {
  readonly relay: Relay
  readonly ingress: Ingress
  /** whether the broker answers a metadata request now */
  reachable(): Promise<boolean>
  close(): Promise<void>
}

const kafkaLogLevel = (level: Config['LOG_LEVEL']) =>
  level === 'debug' || level === 'trace'
    ? logLevel.INFO
    : level === 'silent'
      ? logLevel.NOTHING
      : logLevel.ERROR

/** With KAFKA_BROKERS set: creates missing topics, then starts the relay (outbox) and the ingress. */
export const startKafkaBridge = async (
  config: Config,
  deps: { store: EventStore; docs: DocStore; verifier: TokenVerifier; log: Logger },
): Promise<KafkaBridge> => {
  const brokers = String(config.KAFKA_BROKERS).split(',')
  const log = deps.log.child({ component: 'kafka' })
  const kafka = new Kafka({
    clientId: config.KAFKA_CLIENT_ID,
    brokers,
    logLevel: kafkaLogLevel(config.LOG_LEVEL),
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
  const consumer = kafka.consumer({
    groupId: `${config.KAFKA_TOPIC_PREFIX}${config.KAFKA_CLIENT_ID}.ingress`,
  })
  await consumer.connect()
  const relay = new Relay(deps.store, deps.docs, producer, topics, log)
  const ingress = new Ingress(
    consumer,
    producer,
    topics,
    deps.store,
    deps.verifier,
    config.KAFKA_MAX_MESSAGE_BYTES,
    log,
  )
  relay.start().done.catch((error: unknown) => log.fatal({ err: error }, 'the relay stopped'))
  await ingress.start()
  return {
    relay,
    ingress,
    reachable: async () => {
      try {
        await admin.describeCluster()
        return true
      } catch {
        return false
      }
    },
    close: async () => {
      await consumer.disconnect()
      await relay.stop()
      await producer.disconnect()
      await admin.disconnect()
    },
  }
}
