import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { Kafka, logLevel } from 'kafkajs'
import pino from 'pino'
import { toKafkaMessage } from '../../src/kafka/cloudevents.js'
import { dlqHeaders } from '../../src/kafka/ingress.js'
import { kafkaLogCreator } from '../../src/kafka/log.js'
import type { StoredEvent } from '../../src/store/port.js'

const event = (metadata: Partial<StoredEvent['metadata']>): StoredEvent => ({
  id: '0190a000-0000-7000-8000-000000000001',
  type: 'ProposalSubmitted',
  stream: 'proposal-p-1',
  streamVersion: 1,
  position: 7,
  recordedAt: '2025-01-01T00:00:00.000Z',
  data: { proposalId: 'p-1' },
  metadata: { actor: 'agent-1', correlationId: null, causationId: null, idempotencyKey: null, ...metadata },
  prevHash: '0'.repeat(64),
  hash: '1'.repeat(64),
})

describe('the messages the service produces', () => {
  it('leave out a correlation or causation id the event does not have, never send it empty', () => {
    const without = toKafkaMessage(event({}))
    assert.equal('ce_correlationid' in without.headers, false)
    assert.equal('ce_causationid' in without.headers, false)
    for (const [name, value] of Object.entries(without.headers)) assert.notEqual(value, '', name)
    const withIds = toKafkaMessage(event({ correlationId: 'c-1', causationId: 'e-0' }))
    assert.equal(withIds.headers.ce_correlationid, 'c-1')
    assert.equal(withIds.headers.ce_causationid, 'e-0')
  })

  it('a DLQ entry leaves out an empty CloudEvent header it would copy', () => {
    const headers = dlqHeaders({ ce_id: 'e-1', ce_subject: '', ce_dataschema: Buffer.alloc(0) })
    assert.deepEqual(headers, { ce_id: 'e-1' })
  })
})

describe("kafkajs's log lines", () => {
  const capture = () => {
    const lines: Array<Record<string, unknown>> = []
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) {
          // one key once: JSON.parse would hide a duplicate
          assert.equal(line.match(/"component":/g)?.length, 1, line)
          lines.push(JSON.parse(line))
        }
        done()
      },
    })
    const log = pino({ level: 'debug' }, destination).child({ component: 'kafka' })
    const kafka = new Kafka({
      brokers: ['127.0.0.1:9'],
      logLevel: logLevel.DEBUG,
      logCreator: kafkaLogCreator(log),
    })
    return { lines, logger: kafka.logger() }
  }

  it("go through the service's pino logger, as JSON, at the matching level, with the component and kafkajs's namespace", () => {
    const { lines, logger } = capture()
    const consumer = logger.namespace('Consumer')
    consumer.error('Crash: KafkaJSNumberOfRetriesExceeded', { groupId: 'g-1', error: 'broker gone' })
    consumer.warn('rebalancing', { groupId: 'g-1' })
    consumer.info('Starting', { groupId: 'g-1' })
    consumer.debug('Request Fetch', { broker: '127.0.0.1:9' })
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.component, l.kafkajs]),
      [
        [50, 'Crash: KafkaJSNumberOfRetriesExceeded', 'kafka', 'Consumer'],
        [40, 'rebalancing', 'kafka', 'Consumer'],
        [30, 'Starting', 'kafka', 'Consumer'],
        [20, 'Request Fetch', 'kafka', 'Consumer'],
      ],
    )
    const [crash] = lines
    assert.equal(crash?.groupId, 'g-1')
    assert.equal(crash?.error, 'broker gone')
    assert.equal(typeof crash?.time, 'number', "pino's time")
    assert.equal(crash?.timestamp, undefined, "kafkajs's own timestamp gives way")
    assert.equal(crash?.logger, undefined)
  })

  it('never log a SASL password, a token or TLS material', () => {
    const { lines, logger } = capture()
    logger.info('connecting', {
      broker: 'b:9092',
      sasl: { mechanism: 'plain', username: 'svc', password: 'hunter2' },
      ssl: { key: 'PRIVATE-KEY-PEM' },
      nested: { authenticationToken: 'tok-123', deeper: { clientSecret: 's3cr3t' } },
      password: 'top-level-pw',
    })
    const text = JSON.stringify(lines)
    for (const secret of ['hunter2', 'PRIVATE-KEY-PEM', 'tok-123', 's3cr3t', 'top-level-pw'])
      assert.ok(!text.includes(secret), secret)
    assert.equal(lines[0]?.broker, 'b:9092')
    assert.equal(lines[0]?.sasl, '[redacted]')
  })
})
