import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ROLES } from '../../src/auth/tokens.js'
import { AuditorClient, type LedgerHead } from '../../src/sdk/index.js'
import { example, type JsonSchema, type Operation, operationsOf, type Parameter } from '../support/openapi.js'
import { proposeWithEvidence, type RunningService, setUpWorld, startService } from '../support/service.js'

const BODY_LIMIT = 4096

/** A value of the wrong JSON type for the schema. */
const wrongType = (schema: JsonSchema): unknown => {
  switch (schema.anyOf?.[0]?.type ?? schema.type) {
    case 'string':
      return 12345
    case 'integer':
    case 'number':
      return 'twelve'
    case 'boolean':
      return 'yes'
    case 'array':
      return { not: 'an array' }
    default:
      return 'not an object'
  }
}

/** A value of the right JSON type that the schema refuses, for a query or path parameter; null when any is fine. */
const badParameter = (schema: JsonSchema): string | null => {
  if (schema.enum) return 'not-one-of-them'
  if (schema.type === 'integer' || schema.type === 'number') return 'twelve'
  if (schema.format === 'date-time') return 'yesterday'
  if (schema.pattern) return '!!'
  return null
}

/** A path parameter naming something that does not exist, in a valid form. */
const unknownId = (p: Parameter): string => {
  if (p.schema.type === 'integer') return '99999'
  if (p.name === 'environment') return 'nowhere'
  if (p.name === 'resource') return 'no/such/resource'
  if (p.name === 'workflow') return 'no-such-tool.no-such-action'
  return `no-such-${p.name.toLowerCase()}`
}

describe('bad input on every operation of the OpenAPI document', () => {
  let svc: RunningService
  let auditor: AuditorClient
  let token: string
  let operations: Operation[]
  let headBefore: LedgerHead
  const statuses: Record<string, number> = {}
  let requests = 0

  before(async () => {
    svc = await startService({ BODY_LIMIT_BYTES: String(BODY_LIMIT), LOG_LEVEL: 'warn' })
    const cast = await setUpWorld(svc)
    await proposeWithEvidence(cast, 'deployment/web', { replicas: 2 })
    auditor = new AuditorClient({ baseUrl: svc.url, token: await svc.tokenFor('auditor-1', 'auditor') })
    // every role at once, so that only the input can be what is wrong
    token = await svc.tokenFor('fuzzer', ...ROLES)
    operations = operationsOf(await (await fetch(`${svc.url}/docs/json`)).json())
    // let the decision service and the views finish, so the head can only move by our requests
    for (let stable = 0, last = -1; stable < 3; ) {
      const head = await auditor.ledgerHead()
      stable = head.position === last ? stable + 1 : 0
      last = head.position
      await new Promise((r) => setTimeout(r, 150))
    }
    headBefore = await auditor.ledgerHead()
  })

  after(async () => {
    console.log(
      `e2e bad input: ${JSON.stringify({ operations: operations?.length, requests, statuses, head: headBefore?.position })}`,
    )
    await svc?.close()
  })

  /** The URL of an operation, with the given (or unknown) path parameters and query. */
  const urlOf = (op: Operation, path: Record<string, string> = {}, query: Record<string, string> = {}) => {
    let url = op.path
    for (const p of op.parameters.filter((x) => x.in === 'path')) {
      url = url.replace(`{${p.name}}`, encodeURIComponent(path[p.name] ?? unknownId(p)))
    }
    const required = Object.fromEntries(
      op.parameters
        .filter((p) => p.in === 'query' && p.required)
        .map((p) => [p.name, String(example(p.schema))]),
    )
    const search = new URLSearchParams({ ...required, ...query }).toString()
    return `${svc.url}${url}${search ? `?${search}` : ''}`
  }

  /** Sends one request and checks the answer: never a 5xx, one of `expected`, in the one error shape. */
  const expectRefused = async (
    what: string,
    op: Operation,
    init: { url?: string; body?: string; contentType?: string; headers?: Record<string, string> },
    expected: readonly number[],
  ) => {
    const response = await fetch(init.url ?? urlOf(op), {
      method: op.method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { 'content-type': init.contentType ?? 'application/json' }),
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    })
    requests++
    statuses[response.status] = (statuses[response.status] ?? 0) + 1
    const text = await response.text()
    const label = `${op.method} ${op.path}: ${what} -> ${response.status} ${text.slice(0, 300)}`
    assert.ok(response.status < 500, label)
    assert.ok(expected.includes(response.status), label)
    const body = JSON.parse(text) as { error?: unknown; message?: unknown; details?: unknown }
    assert.equal(typeof body.error, 'string', label)
    assert.equal(typeof body.message, 'string', label)
    assert.ok('details' in body, label)
    return body as { error: string; message: string; details: { fields?: { field: string }[] } | null }
  }

  it('refuses malformed JSON, a wrong media type and an oversized body on every operation with a body', async () => {
    for (const op of operations.filter((o) => o.body !== null)) {
      await expectRefused('malformed JSON', op, { body: '{"broken": ' }, [400])
      await expectRefused('truncated JSON', op, { body: '[' }, [400])
      await expectRefused('application/xml', op, { body: '<a/>', contentType: 'application/xml' }, [415])
      // Fastify parses text/plain itself, so the body arrives as a string: invalid rather than unsupported
      await expectRefused('text/plain', op, { body: 'hello', contentType: 'text/plain' }, [400, 415])
      const pad = 'x'.repeat(BODY_LIMIT + 100)
      const big = await expectRefused('oversized body', op, { body: JSON.stringify({ pad }) }, [413])
      assert.equal(big.error, 'payload-too-large')
    }
  })

  it('refuses wrong types and missing fields, naming the fields', async () => {
    for (const op of operations.filter((o) => o.body !== null)) {
      const schema = op.body as JsonSchema
      const props = Object.entries(schema.properties ?? {})
      await expectRefused('a JSON array for an object', op, { body: '[1, 2]' }, [400])
      if (props.length > 0) {
        const wrong = Object.fromEntries(props.map(([k, s]) => [k, wrongType(s)]))
        const answer = await expectRefused(
          'every field of the wrong type',
          op,
          { body: JSON.stringify(wrong) },
          [400],
        )
        assert.ok((answer.details?.fields?.length ?? 0) >= 1, `${op.path}: the fields are named`)
      }
      const required = schema.required ?? []
      if (required.length > 0) {
        const answer = await expectRefused('every required field missing', op, { body: '{}' }, [400])
        const named = (answer.details?.fields ?? []).map((f) => f.field).join(' ')
        for (const field of required)
          assert.match(named, new RegExp(`body\\.${field}\\b`), `${op.path} names ${field}`)
      }
      if (schema.additionalProperties === false) {
        const extra = { ...(example(schema) as object), unexpected: 1 }
        await expectRefused('an unknown field', op, { body: JSON.stringify(extra) }, [400])
      }
      await expectRefused(
        'an idempotency key with a space',
        op,
        { body: JSON.stringify(example(schema)), headers: { 'idempotency-key': 'not a key' } },
        [400],
      )
    }
  })

  it('refuses badly formed path and query parameters, and missing required ones', async () => {
    for (const op of operations) {
      for (const p of op.parameters) {
        const bad = p.in === 'header' ? null : badParameter(p.schema)
        if (bad === null) continue
        const body = op.body === null ? {} : { body: JSON.stringify(example(op.body)) }
        const url = p.in === 'path' ? urlOf(op, { [p.name]: bad }) : urlOf(op, {}, { [p.name]: bad })
        await expectRefused(`${p.in} ${p.name}=${bad}`, op, { url, ...body }, [400])
      }
      for (const p of op.parameters.filter((x) => x.in === 'query' && x.required)) {
        const url = urlOf(op)
          .replace(new RegExp(`([?&])${p.name}=[^&]*&?`), '$1')
          .replace(/[?&]$/, '')
        await expectRefused(`query ${p.name} missing`, op, { url }, [400])
      }
    }
    const stream = operations.find((o) => o.path === '/v1/verdicts/stream')
    assert.ok(stream)
    await expectRefused(
      'last-event-id not a position',
      stream,
      { headers: { 'last-event-id': 'twelve' } },
      [400],
    )
  })

  it('answers 404 for unknown ids with an otherwise valid request', async () => {
    const withIds = operations.filter(
      (o) =>
        o.parameters.some((p) => p.in === 'path') &&
        // PUT /inventory registers whatever it names: there is no unknown id to send it
        o.method !== 'PUT',
    )
    assert.ok(withIds.length >= 20, `${withIds.length} operations take ids`)
    for (const op of withIds) {
      const body = op.body === null ? {} : { body: JSON.stringify(example(op.body)) }
      const answer = await expectRefused('unknown ids', op, body, [404])
      assert.equal(answer.error, 'not-found')
    }
  })

  it('never answers a 5xx to junk on the operations without input, and appended nothing at all', async () => {
    for (const op of operations.filter((o) => o.parameters.length === 0 && o.body === null)) {
      const response = await fetch(`${urlOf(op)}?junk=%ff%fe&limit=-1`, {
        method: op.method,
        headers: { authorization: `Bearer ${token}` },
      })
      requests++
      statuses[response.status] = (statuses[response.status] ?? 0) + 1
      assert.ok(response.status < 500, `${op.method} ${op.path} with junk: ${response.status}`)
      await response.body?.cancel()
    }
    const headAfter = await auditor.ledgerHead()
    assert.deepEqual(
      { position: headAfter.position, hash: headAfter.hash },
      { position: headBefore.position, hash: headBefore.hash },
      'the ledger head did not move: no event came from invalid input',
    )
  })
})
