// Verdicts relayed to Kafka/s by the Relay (outbox) over a ledger of verdicts, against a bare kafkajs producer
// sending the same messages (toKafkaMessage of the same events) to the same broker, in the same batches, with
// the same acks (-1) and producer settings (maxInFlightRequests 1), each round to fresh topics.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Admin, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs'
import pino from 'pino'
import { type Topics, toKafkaMessage, topicsFor } from '../src/kafka/cloudevents.js'
import { Relay } from '../src/kafka/relay.js'
import type { StoredEvent } from '../src/store/port.js'
import { openSqliteDocStore } from '../src/store/sqlite/doc-store.js'
import { openSqliteEventStore, type SqliteEventStore } from '../src/store/sqlite/event-store.js'
import { ledgerFixture } from './ledger.js'
import {
  type BenchOptions,
  type Figure,
  interleave,
  median,
  now,
  progress,
  ratioAtLeast,
  sleep,
  tempFolder,
} from './lib.js'
import { ROOT } from './service.js'

/** The relay's subscription reads the ledger 500 events at a time (FEED_BATCH of the SQLite store). */
const FEED_BATCH = 500
const PARTITIONS = 3

/** KAFKA_BROKERS, or the broker scripts/kafka.sh runs, or one it starts now. */
const brokers = async (): Promise<string> => {
  if (process.env.KAFKA_BROKERS) return process.env.KAFKA_BROKERS
  const script = join(ROOT, 'scripts', 'kafka.sh')
  const run = promisify(execFile)
  const fromEnv = await run('bash', [script, 'env']).catch(() => ({ stdout: '' }))
  const running = /KAFKA_BROKERS=(\S+)/.exec(fromEnv.stdout)?.[1]
  if (running) return running
  progress('relay: no broker running; starting one with scripts/kafka.sh start')
  const started = await run('bash', [script, 'start'], { timeout: 300_000 })
  const found = /KAFKA_BROKERS=(\S+)/.exec(started.stdout)?.[1]
  if (!found) throw new Error(`scripts/kafka.sh start printed no KAFKA_BROKERS:\n${started.stdout}`)
  return found
}

/** The client and producer settings of src/kafka/bridge.ts. */
const client = (list: string) =>
  new Kafka({
    clientId: 'governance-ledger-bench',
    brokers: list.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
  })

const producerOf = async (kafka: Kafka): Promise<Producer> => {
  const producer = kafka.producer({
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  return producer
}

/** A fresh ledger holding only verdicts: the VerdictIssued events of the fixture, appended again in order. */
const verdictLedger = async (source: string, target: string, count: number): Promise<StoredEvent[]> => {
  const from = openSqliteEventStore({ path: source })
  const to = openSqliteEventStore({ path: target })
  try {
    let copied = 0
    for (let after = 0; copied < count; ) {
      const batch = await from.readAll(after, 5000)
      const last = batch.at(-1)
      if (!last) break
      after = last.position
      const verdicts = batch.filter((e) => e.type === 'VerdictIssued').slice(0, count - copied)
      if (verdicts.length === 0) continue
      await to.appendMany(
        verdicts.map((e) => ({
          stream: e.stream,
          events: [{ type: e.type, data: e.data, metadata: e.metadata }],
          expectedVersion: 'any' as const,
        })),
      )
      copied += verdicts.length
    }
    const all: StoredEvent[] = []
    for (let after = 0; ; ) {
      const batch = await to.readAll(after, 5000)
      const last = batch.at(-1)
      if (!last) break
      all.push(...batch)
      after = last.position
    }
    return all
  } finally {
    await from.close()
    await to.close()
  }
}

/**
 * The broker's default limit on a record batch (1 MiB) is below what the baseline sends in one request: 500
 * verdicts of ~4.6 KB plus ~1 KB of ce_* headers each, over 3 partitions. The relay keeps each request under
 * 768 KiB on its own; so that the baseline is not refused, both sides get topics that accept 8 MiB.
 */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024

/** Topics of their own for one round; deleted only at the end, as the producers keep asking for their metadata. */
const freshTopics = async (admin: Admin, created: string[]): Promise<Topics> => {
  const topics = topicsFor(`bench-${randomUUID().slice(0, 8)}.`)
  await admin.createTopics({
    waitForLeaders: true,
    topics: Object.values(topics).map((topic) => ({
      topic,
      numPartitions: PARTITIONS,
      replicationFactor: 1,
      configEntries: [{ name: 'max.message.bytes', value: String(MAX_MESSAGE_BYTES) }],
    })),
  })
  created.push(...Object.values(topics))
  return topics
}

export const relayFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const count = options.quick ? 3_000 : 20_000
  const rounds = options.quick ? 3 : 4
  const list = await brokers()
  const fixture = await ledgerFixture(options.quick ? 10_000 : 100_000, progress)
  const folder = tempFolder('relay')
  const kafka = client(list)
  const admin = kafka.admin()
  await admin.connect()
  const [relayProducer, bareProducer] = await Promise.all([producerOf(kafka), producerOf(kafka)])
  const created: string[] = []
  try {
    const ledgerPath = join(folder.path, 'verdicts.db')
    const events = await verdictLedger(join(fixture.folder, 'ledger.db'), ledgerPath, count)
    const messages = events.map(toKafkaMessage)
    const sentBatches: number[] = []
    progress(`relay: ${rounds} rounds of ${events.length} verdicts per side, broker ${list}`)
    const store: SqliteEventStore = openSqliteEventStore({ path: ledgerPath })
    try {
      const result = await interleave(
        rounds,
        async () => {
          const topics = await freshTopics(admin, created)
          const started = now()
          for (let i = 0; i < messages.length; i += FEED_BATCH) {
            const batch = messages.slice(i, i + FEED_BATCH)
            await bareProducer.sendBatch({
              acks: -1,
              topicMessages: [
                { topic: topics.events, messages: batch },
                { topic: topics.verdicts, messages: batch },
              ],
            })
          }
          const seconds = (now() - started) / 1000
          return messages.length / seconds
        },
        async (round) => {
          const topics = await freshTopics(admin, created)
          const docs = openSqliteDocStore(join(folder.path, `relay-${round}.db`))
          const counting: Producer = {
            ...relayProducer,
            sendBatch: (batch) => {
              sentBatches.push(batch.topicMessages?.[0]?.messages.length ?? 0)
              return relayProducer.sendBatch(batch)
            },
          }
          const relay = new Relay(store, docs, counting, topics, pino({ level: 'warn' }))
          const started = now()
          relay.start()
          let last = { position: -1, at: now() }
          while (relay.position < events.length) {
            await sleep(1)
            if (relay.position !== last.position) last = { position: relay.position, at: now() }
            else if (now() - last.at > 60_000) {
              const { failedAttempts } = relay.stats()
              await relay.stop()
              throw new Error(
                `the relay made no progress for 60 s at position ${last.position} (${failedAttempts} failed sends)`,
              )
            }
          }
          const seconds = (now() - started) / 1000
          await relay.stop()
          const { sent } = relay.stats()
          docs.close()
          return sent / seconds
        },
      )
      const batches = [...new Set(sentBatches)].sort((a, b) => b - a).join(', ')
      return [
        ratioAtLeast(
          {
            name: 'verdicts relayed to Kafka',
            value: median(result.measured),
            unit: 'verdicts/s',
            baseline: `bare kafkajs producer, same broker, same messages (toKafkaMessage) to governance.events and governance.verdicts, batches of ${FEED_BATCH}, acks -1, maxInFlightRequests 1`,
            baselineValue: median(result.baseline),
            note: `${rounds} interleaved rounds; a ledger of ${events.length} VerdictIssued events (taken from a generated ledger); Relay from position 0 to the head, checkpoint in a fresh SQLite doc store, fresh topics of ${PARTITIONS} partitions each round, max.message.bytes raised to 8 MiB on both sides (the baseline's 500-verdict requests exceed the default 1 MiB; the relay cuts its own into chunks of at most 768 KiB) (relay batch sizes seen: ${batches})`,
            rounds: result,
          },
          0.8,
        ),
      ]
    } finally {
      await store.close()
    }
  } finally {
    await Promise.all([relayProducer.disconnect(), bareProducer.disconnect()])
    await admin.deleteTopics({ topics: created }).catch(() => undefined)
    await admin.disconnect()
    folder.remove()
  }
}
