import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CloudEvent, Kafka, type KafkaMessage } from 'cloudevents'
import pino from 'pino'
import { everyEvent } from '../../src/decision/replay.js'
import { DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner, generateSigningKey, verifyVerdictSignature } from '../../src/decision/signer.js'
import type { DataOf } from '../../src/domain/events.js'
import { ceType, VERDICT_TYPES } from '../../src/kafka/cloudevents.js'
import { Relay } from '../../src/kafka/relay.js'
import type { DocStore } from '../../src/store/docs.js'
import type { StoredEvent } from '../../src/store/port.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore, type SqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { FakeClock, History } from '../support/history.js'
import {
  collect,
  eventually,
  freshTopics,
  kafkaBrokers,
  kafkaClient,
  privateBroker,
  producerFor,
} from '../support/kafka.js'

const target = await kafkaBrokers()
const quiet = pino({ level: 'silent' })

const ledgerEvents = async (store: SqliteEventStore): Promise<StoredEvent[]> => {
  const all: StoredEvent[] = []
  for await (const e of everyEvent(store)) all.push(e)
  return all
}

describe('the Kafka relay, against a real broker', { skip: 'skip' in target ? target.skip : false }, () => {
  let dir: string
  let store: SqliteEventStore
  let docs: DocStore
  const clock = new FakeClock()
  const signer = createVerdictSigner(generateSigningKey())

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kafka-relay-'))
    store = openSqliteEventStore({ path: join(dir, 'ledger.db'), clock: clock.now })
    docs = openSqliteDocStore(join(dir, 'derived.db'))
    await new History(store, await DecisionService.answering(store, docs, signer), clock, 11).generate(400)
  })

  after(async () => {
    await store.close()
    docs.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('every event reaches governance.events and every verdict governance.verdicts, as CloudEvents keyed by stream', async () => {
    const brokers = 'brokers' in target ? target.brokers : ''
    const kafka = kafkaClient(brokers)
    const topics = await freshTopics(kafka)
    const producer = await producerFor(kafka)
    const relay = new Relay(store, docs, producer, topics, quiet, 'relay-a')
    const collector = await collect(kafka, [topics.events, topics.verdicts])
    try {
      relay.start()
      const events = await ledgerEvents(store)
      const verdicts = events.filter((e) => VERDICT_TYPES.has(e.type))
      await eventually(
        () => collector.messages.length >= events.length + verdicts.length,
        30_000,
        `all ${events.length + verdicts.length} messages`,
      )
      assert.equal(relay.position, events.length, 'the checkpoint reached the head after the acks')
      const onEvents = collector.messages.filter((m) => m.topic === topics.events)
      const onVerdicts = collector.messages.filter((m) => m.topic === topics.verdicts)
      assert.deepEqual(new Set(onEvents.map((m) => m.headers.ce_id)), new Set(events.map((e) => e.id)))
      assert.deepEqual(new Set(onVerdicts.map((m) => m.headers.ce_id)), new Set(verdicts.map((e) => e.id)))

      const issued = events.find((e) => e.type === 'VerdictIssued')
      assert.ok(issued)
      const message = onVerdicts.find((m) => m.headers.ce_id === issued.id)
      assert.ok(message)
      assert.equal(message.key, issued.stream)
      assert.deepEqual(
        {
          specversion: message.headers.ce_specversion,
          type: message.headers.ce_type,
          source: message.headers.ce_source,
          subject: message.headers.ce_subject,
          time: message.headers.ce_time,
          position: message.headers.ce_position,
          hash: message.headers.ce_hash,
          contentType: message.headers['content-type'],
        },
        {
          specversion: '1.0',
          type: ceType('VerdictIssued'),
          source: 'urn:governance-ledger',
          subject: issued.stream,
          time: issued.recordedAt,
          position: String(issued.position),
          hash: issued.hash,
          contentType: 'application/json',
        },
      )
      await verifyVerdictSignature(JSON.parse(message.value) as DataOf<'VerdictIssued'>, await signer.jwks())

      // what a consumer reads with the CloudEvents SDK: a valid event per message, every attribute it has set,
      // none sent empty (an event without a causation id has no ce_causationid header)
      const stored = new Map(events.map((e) => [e.id, e]))
      const causations = { with: 0, without: 0 }
      for (const m of collector.messages) {
        for (const [name, value] of Object.entries(m.headers)) assert.notEqual(value, '', `${name} is empty`)
        const message: KafkaMessage<string> = {
          key: m.key ?? '',
          value: m.value,
          headers: m.headers,
          body: m.value,
        }
        const event = Kafka.toEvent<unknown>(message)
        assert.ok(event instanceof CloudEvent)
        assert.equal(event.validate(), true)
        const e = stored.get(event.id)
        assert.ok(e, `event ${event.id} is in the ledger`)
        assert.deepEqual(
          [event.type, event.source, event.subject, event.time, event.datacontenttype, event.partitionkey],
          [ceType(e.type), 'urn:governance-ledger', e.stream, e.recordedAt, 'application/json', e.stream],
        )
        assert.deepEqual(event.data, e.data)
        assert.equal(event.position, String(e.position))
        assert.equal(event.causationid, e.metadata.causationId ?? undefined)
        assert.equal(event.correlationid, e.metadata.correlationId ?? undefined)
        causations[e.metadata.causationId ? 'with' : 'without'] += 1
      }
      assert.ok(causations.with > 0 && causations.without > 0, JSON.stringify(causations))
      console.log(
        `relay as CloudEvents: ${collector.messages.length} messages valid for the SDK; ce_causationid on ${causations.with}, absent on ${causations.without}`,
      )

      // one action's events stay in order: per key, stream versions only go up
      const lastVersion = new Map<string, number>()
      for (const m of onEvents) {
        const version = Number(m.headers.ce_streamversion)
        assert.ok(version > (lastVersion.get(String(m.key)) ?? 0), `stream ${m.key} out of order`)
        lastVersion.set(String(m.key), version)
      }
    } finally {
      await relay.stop()
      await collector.stop()
      await producer.disconnect()
    }
  })

  test('a batch larger than the broker accepts in one request is relayed in chunks, not retried for ever', async () => {
    const brokers = 'brokers' in target ? target.brokers : ''
    const kafka = kafkaClient(brokers)
    const topics = await freshTopics(kafka, 1)
    const big = openSqliteEventStore({ path: join(dir, 'big.db') })
    const bigDocs = openSqliteDocStore(join(dir, 'big-derived.db'))
    const producer = await producerFor(kafka)
    const relay = new Relay(big, bigDocs, producer, topics, quiet, 'relay-big')
    try {
      // 400 events of about 6 KiB: 2.4 MiB in one ledger batch, over the default 1 MiB request limit
      await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          big.append(
            `s-${i % 7}`,
            [{ type: 'StateObserved', data: { i, pad: 'x'.repeat(6000) }, metadata: { actor: 'bench' } }],
            'any',
          ),
        ),
      )
      await relay.relay(await big.readAll(0, 1000))
      assert.equal(relay.position, 400)
      const collector = await collect(kafka, [topics.events])
      await eventually(() => collector.messages.length >= 400, 30_000, 'all 400 events on the topic')
      await collector.stop()
      assert.equal(new Set(collector.messages.map((m) => m.headers.ce_id)).size, 400)
      assert.ok(relay.stats().failedAttempts === 0, 'no request was refused')
    } finally {
      await producer.disconnect()
      await big.close()
      bigDocs.close()
    }
  })

  test('the broker stopped and restarted while the relay runs: every verdict at least once, exactly once after deduplication', async () => {
    const broker = await privateBroker()
    const kafka = kafkaClient(broker.brokers)
    const topics = await freshTopics(kafka)
    const producer = await producerFor(kafka)
    const relay = new Relay(store, docs, producer, topics, quiet, 'relay-b')
    try {
      relay.start()
      const history = new History(
        store,
        await DecisionService.answering(store, docs, signer, 'decision-b'),
        clock,
        12,
      )
      // the ledger keeps growing while the broker is down and after it returns
      await eventually(() => relay.position > 0, 20_000, 'the relay started sending')
      await broker.stop()
      const stoppedAt = (await store.head()).position
      for (let i = 0; i < 15; i += 1) await history.lifecycle()
      const whileDown = (await store.head()).position - stoppedAt
      assert.ok(relay.position <= stoppedAt, 'nothing was acknowledged while the broker was down')
      await broker.startAgain()
      for (let i = 0; i < 15; i += 1) await history.lifecycle()
      const events = await ledgerEvents(store)
      await eventually(
        () => relay.position === events.length,
        60_000,
        'the relay caught up after the restart',
      )
      const verdicts = events.filter((e) => VERDICT_TYPES.has(e.type))
      const collector = await collect(kafkaClient(broker.brokers), [topics.verdicts])
      await eventually(
        () => collector.messages.length >= verdicts.length,
        30_000,
        `all ${verdicts.length} verdicts`,
      )
      await new Promise((r) => setTimeout(r, 1000)) // late duplicates, if any
      await collector.stop()
      const ids = collector.messages.map((m) => m.headers.ce_id)
      const unique = new Set(ids)
      assert.deepEqual(unique, new Set(verdicts.map((e) => e.id)), 'every verdict arrived, none invented')
      const stats = relay.stats()
      assert.ok(whileDown > 0, 'the ledger grew while the broker was down')
      console.log(
        `broker restart: ${verdicts.length} verdicts sent, ${ids.length} received, ` +
          `${ids.length - unique.size} duplicates removed, ${unique.size} after deduplication; ` +
          `${whileDown} events appended while the broker was down, ${stats.failedAttempts} failed send attempts`,
      )
    } finally {
      await relay.stop()
      await producer.disconnect().catch(() => undefined)
      await broker.dispose()
    }
  })

  test('the relay process killed and restarted resumes from its checkpoint with no gap', async () => {
    const brokers = 'brokers' in target ? target.brokers : ''
    const kafka = kafkaClient(brokers)
    const topics = await freshTopics(kafka)
    const relayDocs = join(dir, 'relay-child.db')
    const script = new URL('../support/relay-process.ts', import.meta.url).pathname
    const startChild = (): ChildProcess =>
      spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          script,
          join(dir, 'ledger.db'),
          relayDocs,
          brokers,
          topics.events.replace(/governance\.events$/, ''),
        ],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      )
    const history = new History(
      store,
      await DecisionService.answering(store, docs, signer, 'decision-c'),
      clock,
      13,
    )
    let child = startChild()
    try {
      const checkpoint = () => {
        const d = openSqliteDocStore(relayDocs)
        try {
          return d.checkpoint('relay')
        } finally {
          d.close()
        }
      }
      await eventually(() => checkpoint() > 0, 30_000, 'the relay process started sending')
      for (let i = 0; i < 5; i += 1) await history.lifecycle()
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
      const killedAt = checkpoint()
      for (let i = 0; i < 5; i += 1) await history.lifecycle()
      child = startChild()
      const head = (await store.head()).position
      await eventually(() => checkpoint() === head, 60_000, 'the restarted relay caught up')
      const collector = await collect(kafka, [topics.events])
      await eventually(
        () => new Set(collector.messages.map((m) => m.headers.ce_position)).size >= head,
        30_000,
        'every position received',
      )
      await collector.stop()
      const positions = new Set(collector.messages.map((m) => Number(m.headers.ce_position)))
      const missing = Array.from({ length: head }, (_, i) => i + 1).filter((p) => !positions.has(p))
      assert.deepEqual(missing, [], 'no gap')
      console.log(
        `relay kill: killed at checkpoint ${killedAt}, resumed to ${head}; ${collector.messages.length} messages for ${head} events ` +
          `(${collector.messages.length - positions.size} re-sent after the kill), no gap`,
      )
    } finally {
      child.kill('SIGTERM')
    }
  })
})
