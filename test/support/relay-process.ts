// A relay in a process of its own, so that a test can kill it with SIGKILL: ledger, relay docs, brokers, topic prefix.
import pino from 'pino'
import { topicsFor } from '../../src/kafka/cloudevents.js'
import { Relay } from '../../src/kafka/relay.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { kafkaClient, producerFor } from './kafka.js'

const [ledgerPath, docsPath, brokers, prefix = ''] = process.argv.slice(2)
if (!ledgerPath || !docsPath || !brokers) throw new Error('usage: relay-process LEDGER DOCS BROKERS [PREFIX]')
const store = openSqliteEventStore({ path: ledgerPath })
const docs = openSqliteDocStore(docsPath)
const producer = await producerFor(kafkaClient(brokers, 'relay-process'))
const relay = new Relay(store, docs, producer, topicsFor(prefix), pino({ level: 'warn' }))
relay.start()
process.once('SIGTERM', () => {
  void relay
    .stop()
    .then(() => producer.disconnect())
    .then(() => process.exit(0))
})
