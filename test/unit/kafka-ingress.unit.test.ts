import assert from 'node:assert/strict'
import { test } from 'node:test'
import { mediaTypeOf } from '../../src/kafka/cloudevents.js'
import { dlqHeaders, ledgerCalls, Unavailable } from '../../src/kafka/ingress.js'
import { type EventStore, WrongExpectedVersionError } from '../../src/store/port.js'

test('a content type is read as HTTP reads one: the media type in any case, the charset unquoted', () => {
  assert.deepEqual(mediaTypeOf('application/json'), { type: 'application/json', charset: null })
  assert.deepEqual(mediaTypeOf('Application/JSON; charset="UTF-8"'), {
    type: 'application/json',
    charset: 'utf-8',
  })
  assert.deepEqual(mediaTypeOf('application/cloudevents+json;charset=utf-8; foo=bar'), {
    type: 'application/cloudevents+json',
    charset: 'utf-8',
  })
  assert.deepEqual(mediaTypeOf('application/json; charset=latin1'), {
    type: 'application/json',
    charset: 'latin1',
  })
  for (const bad of [undefined, '', 'json', 'application/', '/json', 'application json', 'a/b/c'])
    assert.equal(mediaTypeOf(bad), null, String(bad))
})

test('a DLQ entry copies the CloudEvent headers and the content type, and names the others only', () => {
  const headers = dlqHeaders({
    ce_id: 'e-1',
    'Content-Type': 'application/json',
    Authorization: 'Bearer secret',
    'x-trace': Buffer.from('t'),
    'weird name\n': 'v',
    missing: undefined,
  })
  assert.deepEqual(Object.keys(headers).sort(), ['Content-Type', 'ce_id', 'dlq_redacted'])
  assert.equal(headers.dlq_redacted, 'Authorization,x-trace,weird?name?')
})

test('the ledger as the ingress calls it: its own failures are an outage; a value error or a version race is not', async () => {
  const failing = (error: unknown) =>
    ledgerCalls({
      head: () => Promise.reject(error),
      readStream: () => Promise.reject(error),
    } as unknown as EventStore)
  await assert.rejects(failing(new Error('SQLITE_BUSY: database is locked')).head(), Unavailable)
  await assert.rejects(
    failing(Object.assign(new Error('terminating connection'), { code: '57P01' })).head(),
    Unavailable,
  )
  await assert.rejects(
    failing(new TypeError('canonical JSON has no form for non-finite numbers')).head(),
    TypeError,
  )
  await assert.rejects(
    failing(new RangeError('Maximum call stack size exceeded')).readStream('s'),
    RangeError,
  )
  await assert.rejects(failing(new WrongExpectedVersionError('s', 1, 2)).head(), WrongExpectedVersionError)
  const thrown = ledgerCalls({
    head: () => {
      throw new Error('the event store is closed')
    },
  } as unknown as EventStore)
  assert.throws(() => thrown.head(), Unavailable)
})
