// Property-based fuzzing of every HTTP body: valid-shaped bodies mutated with depth, size, number and unicode
// edge cases, duplicate keys as raw text and wrong types. Never a 5xx; a refused input appends nothing; what
// is accepted, every consumer processes, and its canonical JSON reads back as it was hashed.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { ROLES } from '../../src/auth/tokens.js'
import { canonicalize, planHashOf } from '../../src/domain/canonical.js'
import { DECISION_OUTPUT_TYPES } from '../../src/domain/events.js'
import { PLAN_LIMITS } from '../../src/domain/limits.js'
import type { StoredEvent } from '../../src/store/port.js'
import { verifyLedger } from '../../src/store/verify.js'
import { proposalBody, seedWorld, startTestApi, type TestApi, type World } from '../support/api.js'
import { wholeLedger } from '../support/ledger-events.js'
import { example, type Operation, operationsOf } from '../support/openapi.js'

/** At least 10,000 cases per run; FUZZ_RUNS raises it. */
const RUNS = Math.max(10_000, Number(process.env.FUZZ_RUNS ?? 0))
const MARK = '"\u0000fuzz\u0000"'

/** Raw JSON text for one value: the edge cases the parser and the limits must tell apart. */
const edgeValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '1e400',
    '-1e400',
    '1E+309',
    '9007199254740991',
    '9007199254740992',
    '-9007199254740993',
    '123456789012345678901234567890',
    '1e21',
    '-0',
    '0.1',
    '1e-400',
    '5e-324',
    '"\\ud800"',
    '"\\udfff"',
    '"x\\ud83d"',
    '"\\ude00\\ud83d"',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"\u2028\u2029"',
    '"\ufeff"',
    '"\ud800"',
    '"e\u0301"',
    '"😀"',
    'null',
    'true',
    '[]',
    '{}',
    '""',
    '{"a":1,"a":2}',
    '{"a":1,"\\u0061":2}',
    '{"__proto__":{"admin":true}}',
    '{"constructor":{"prototype":{}}}',
  ),
  fc.double().map((d) => (Number.isFinite(d) ? String(d) : 'null')),
  fc.bigInt().map(String),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  // nesting around the limits and far beyond them
  fc
    .constantFrom(
      PLAN_LIMITS.maxDepth - 1,
      PLAN_LIMITS.maxDepth,
      PLAN_LIMITS.maxDepth + 1,
      63,
      64,
      65,
      6000,
      100_000,
    )
    .chain((depth) =>
      fc
        .boolean()
        .map((arrays) =>
          arrays
            ? `${'['.repeat(depth)}1${']'.repeat(depth)}`
            : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
        ),
    ),
  // sizes around the limits and beyond the body limit
  fc
    .constantFrom(PLAN_LIMITS.maxStringLength, PLAN_LIMITS.maxStringLength + 1, 70_000, 1_100_000)
    .map((n) => JSON.stringify('x'.repeat(n))),
  fc
    .constantFrom(PLAN_LIMITS.maxArrayLength, PLAN_LIMITS.maxArrayLength + 1)
    .map((n) => `[${Array.from({ length: n }, () => '0').join(',')}]`),
  fc
    .constantFrom(PLAN_LIMITS.maxKeys, PLAN_LIMITS.maxKeys + 1)
    .map((n) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])))),
)

/** How one case changes its operation's valid-shaped body. */
type Mutation =
  | { readonly kind: 'as-is' }
  | { readonly kind: 'field'; readonly pick: number; readonly value: string }
  | { readonly kind: 'plan'; readonly value: string }
  | { readonly kind: 'plan-json'; readonly plan: Record<string, unknown> }
  | { readonly kind: 'duplicate'; readonly pick: number; readonly value: string }
  | { readonly kind: 'whole'; readonly text: string }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'as-is' } as const) },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('field' as const), pick: fc.nat(), value: edgeValue }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('plan' as const), value: edgeValue }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('plan-json' as const),
      plan: fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.jsonValue({ maxDepth: 6 }), {
        maxKeys: 8,
      }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('duplicate' as const), pick: fc.nat(), value: edgeValue }),
  },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.jsonValue({ maxDepth: 5 }).map((v) => ({ kind: 'whole' as const, text: JSON.stringify(v) })),
      fc.string({ unit: 'binary', maxLength: 60 }).map((text) => ({ kind: 'whole' as const, text })),
      edgeValue.map((text) => ({ kind: 'whole' as const, text })),
    ),
  },
)

/** The body text of one case: the base body, with the mutation applied to its JSON text. */
const bodyText = (base: Record<string, unknown>, m: Mutation): string => {
  const keys = Object.keys(base)
  const key = (pick: number) => keys[pick % Math.max(1, keys.length)] ?? 'field'
  switch (m.kind) {
    case 'as-is':
      return JSON.stringify(base)
    case 'field':
      return JSON.stringify({ ...base, [key(m.pick)]: MARK }).replace(JSON.stringify(MARK), m.value)
    case 'plan':
      return JSON.stringify({ ...base, plan: { step: MARK } }).replace(JSON.stringify(MARK), m.value)
    case 'plan-json':
      return JSON.stringify({ ...base, plan: m.plan })
    case 'duplicate': {
      const text = JSON.stringify(base)
      return `${text.slice(0, -1)}${keys.length > 0 ? ',' : ''}${JSON.stringify(key(m.pick))}:${m.value}}`
    }
    case 'whole':
      return m.text
  }
}

describe('fuzzing every HTTP body', () => {
  let api: TestApi
  let world: World
  let operations: Operation[]
  let proposalId: string
  let headBefore: number

  before(async () => {
    // the per-principal limits would answer most cases with 429 before their bodies are read: raised to the top
    api = await startTestApi({
      RATE_LIMIT_REQUESTS_PER_SECOND: '100000',
      RATE_LIMIT_COMMANDS_PER_MINUTE: '1000000',
    })
    world = await seedWorld(api)
    const doc = (await api.app.inject({ method: 'GET', url: '/docs/json' })).json()
    operations = operationsOf(doc).filter((op) => op.body !== null)
    const submitted = await api
      .as('agent-1', 'agent')
      .post('/v1/proposals', proposalBody(world, { replicas: 2 }))
    assert.equal(submitted.statusCode, 201, submitted.body)
    proposalId = submitted.json().proposalId
    await api.settle()
    headBefore = await api.head()
  })
  after(() => api?.close())

  test(`${RUNS} cases over every operation with a body: no 5xx, nothing from a refusal, every consumer keeps up`, async () => {
    assert.ok(operations.length >= 20, `${operations.length} operations with a body`)
    const fuzzer = await api.tokenFor('fuzzer', ...ROLES)
    const agent = await api.tokenFor('agent-1', 'agent')
    const statuses: Record<string, number> = {}
    const byKind: Record<string, number> = {}
    const refused = new Map<string, string>()
    const accepted = new Set<string>()
    let n = 0
    const started = Date.now()
    // a quarter of the cases submit proposals, the one free-form body, so that much of what is accepted is new
    const submission = operations.find((op) => op.path === '/v1/proposals' && op.method === 'POST')
    assert.ok(submission)
    const operation = fc.oneof(
      { weight: 1, arbitrary: fc.constant('submission' as const) },
      { weight: 3, arbitrary: fc.nat() },
    )

    const pathOf = (op: Operation): string =>
      op.path
        .replace('{proposalId}', proposalId)
        .replace('{agentId}', 'agent-1')
        .replace('{tool}', 'kubectl')
        .replace('{action}', 'scale')
        .replace(/\{(\w+)\}/g, (_, name: string) => `fuzz-${name}`)

    await fc.assert(
      fc.asyncProperty(operation, mutation, async (pick, m) => {
        const op = (pick === 'submission' ? submission : operations[pick % operations.length]) as Operation
        const isSubmission = op === submission
        const base = isSubmission
          ? proposalBody(world, { replicas: 3 })
          : (example(op.body ?? {}) as Record<string, unknown>)
        const payload = bodyText(base, m)
        n += 1
        const id = `fuzz-${n}`
        const answer = await api.app.inject({
          method: op.method as 'POST' | 'PUT',
          url: pathOf(op),
          headers: {
            authorization: `Bearer ${isSubmission ? agent : fuzzer}`,
            'content-type': 'application/json',
            'x-request-id': id,
          },
          payload,
        })
        statuses[answer.statusCode] = (statuses[answer.statusCode] ?? 0) + 1
        byKind[m.kind] = (byKind[m.kind] ?? 0) + 1
        const label = `${op.method} ${op.path} ${m.kind}: ${payload.slice(0, 200)} -> ${answer.statusCode} ${answer.body.slice(0, 300)}`
        assert.ok(answer.statusCode < 500, label)
        if (answer.statusCode >= 400) {
          const body = answer.json() as { error?: unknown; message?: unknown }
          assert.equal(typeof body.error, 'string', label)
          assert.equal(typeof body.message, 'string', label)
          refused.set(id, op.path)
        } else accepted.add(id)
      }),
      { numRuns: RUNS },
    )
    const seconds = (Date.now() - started) / 1000

    // every consumer (the decision service and the four views) gets through whatever was accepted
    await api.settle(120_000)
    const events: StoredEvent[] = await wholeLedger(api.runtime.store)
    const report = await verifyLedger(api.runtime.store)
    assert.ok(report.ok, `the chain verifies: ${JSON.stringify(report.firstFault)}`)

    const byRequest = new Map<string, StoredEvent[]>()
    for (const event of events) {
      // what was stored is its own canonical form, and reads back as it was hashed
      const text = canonicalize(event.data)
      assert.equal(canonicalize(JSON.parse(text)), text, `event ${event.position}`)
      if (event.type === 'ProposalSubmitted') {
        const data = event.data as { plan: unknown; planHash: string }
        assert.equal(planHashOf(data.plan), data.planHash, `the plan hash of event ${event.position}`)
      }
      const correlation = event.metadata.correlationId
      if (correlation === null) continue
      const list = byRequest.get(correlation)
      if (list) list.push(event)
      else byRequest.set(correlation, [event])
    }
    let refusedWithRecord = 0
    for (const [id, path] of refused) {
      const recorded = byRequest.get(id) ?? []
      if (recorded.length === 0) continue
      // a start the gate refused is recorded on purpose (ExecutionRefused), with what the decision service says of it
      assert.ok(
        path.endsWith('/executions'),
        `${id} on ${path} was refused yet appended ${recorded.map((e) => e.type)}`,
      )
      assert.ok(
        recorded.every((e) => e.type === 'ExecutionRefused' || DECISION_OUTPUT_TYPES.has(e.type as never)),
        `${id}: ${recorded.map((e) => e.type)}`,
      )
      refusedWithRecord += 1
    }
    const acceptedWithEvents = [...accepted].filter((id) => byRequest.has(id)).length
    console.log(
      `fuzz bodies: ${JSON.stringify({
        cases: n,
        seconds,
        operations: operations.length,
        statuses,
        mutations: byKind,
        accepted: accepted.size,
        acceptedWithEvents,
        refused: refused.size,
        refusedRecordedAsExecutionRefused: refusedWithRecord,
        headBefore,
        headAfter: await api.head(),
      })}`,
    )
    assert.ok(n >= RUNS, `${n} cases`)
    assert.ok(accepted.size > 0 && refused.size > 0, 'both accepted and refused inputs were tried')
    assert.equal(statuses[429] ?? 0, 0, 'no case was turned away before its body was read')
  })
})
