// Kafka for tests: a real broker always. KAFKA_BROKERS names one (scripts/kafka.sh start prints it); without it, an
// apache/kafka container where a Docker engine is reachable (containers.ts). With neither the Kafka tests are
// skipped with one loud line, except where REQUIRE_SERVICES names kafka (CI): there they fail. privateBroker, which
// a test stops and starts again, always runs scripts/kafka.sh.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Consumer, Kafka, type KafkaMessage, logLevel, Partitioners } from 'kafkajs'
import { headerStrings, type Topics, topicsFor } from '../../src/kafka/cloudevents.js'
import { ensureTopics } from '../../src/kafka/topics.js'
import { containerFor } from './containers.js'

const run = promisify(execFile)
const script = new URL('../../scripts/kafka.sh', import.meta.url).pathname

export const required = (): boolean =>
  (process.env.REQUIRE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('kafka')

const skipped = (reason: string): { skip: string } => {
  if (required()) throw new Error(`REQUIRE_SERVICES includes kafka, but ${reason}`)
  console.warn(`\n!!! SKIPPED: ${reason}\n`)
  return { skip: reason }
}

/** The brokers to test against, or a skip reason (an error where CI requires Kafka). */
export const kafkaBrokers = async (): Promise<{ brokers: string } | { skip: string }> => {
  const set = process.env.KAFKA_BROKERS
  if (set) return { brokers: set }
  let brokers: string | null
  try {
    brokers = await containerFor('kafka')
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    return skipped(`the Kafka relay, ingress and SDK were NOT tested: ${why}`)
  }
  if (brokers) return { brokers }
  return skipped(
    'KAFKA_BROKERS is not set: the Kafka relay, ingress and SDK were NOT tested (run scripts/kafka.sh start)',
  )
}

export const kafkaClient = (brokers: string, clientId = 'test'): Kafka =>
  new Kafka({
    clientId,
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100 },
  })

export const uniquePrefix = (): string => `t${randomUUID().slice(0, 8)}.`

/** The governance topics under a prefix of their own, created on the broker. */
export const freshTopics = async (kafka: Kafka, partitions = 3): Promise<Topics> => {
  const topics = topicsFor(uniquePrefix())
  const admin = kafka.admin()
  await admin.connect()
  await ensureTopics(admin, topics, partitions, 1)
  await admin.disconnect()
  return topics
}

export interface Received {
  readonly topic: string
  readonly key: string | null
  readonly value: string
  readonly headers: Record<string, string>
}

/** Collects every message of the topics from the beginning, until stopped. */
export const collect = async (
  kafka: Kafka,
  topics: string[],
): Promise<{ messages: Received[]; stop(): Promise<void>; consumer: Consumer }> => {
  // a short fetch wait: disconnecting waits for the fetch under way, kafkajs's 5 s by default
  const consumer = kafka.consumer({ groupId: `collector-${randomUUID()}`, maxWaitTimeInMs: 200 })
  const messages: Received[] = []
  await consumer.connect()
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ topic, message }: { topic: string; message: KafkaMessage }) => {
      messages.push({
        topic,
        key: message.key?.toString('utf8') ?? null,
        value: message.value?.toString('utf8') ?? '',
        headers: headerStrings(message.headers),
      })
    },
  })
  return { messages, consumer, stop: () => consumer.disconnect() }
}

export const producerFor = async (kafka: Kafka) => {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  return producer
}

/** Waits until the predicate holds, polling; fails with the message after the timeout. */
export const eventually = async (
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  message: string,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${message}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A private broker of this test's own, in its own folder, that the test may stop and start again. */
export const privateBroker = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kafka-private-'))
  const env = { ...process.env, KAFKA_RUN_DIR: dir }
  const script$ = (command: string) => run('bash', [script, command], { env })
  const { stdout } = await script$('start')
  const brokers = /KAFKA_BROKERS=(\S+)/.exec(stdout)?.[1]
  if (!brokers) throw new Error(`the private broker did not start: ${stdout}`)
  return {
    brokers,
    stop: async () => void (await script$('stop')),
    /** starts it again on the same port with the same data */
    startAgain: async () => void (await script$('restart')),
    dispose: async () => {
      await script$('stop')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
