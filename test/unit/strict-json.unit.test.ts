import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import fc from 'fast-check'
import { CanonicalJsonError, canonicalize } from '../../src/domain/canonical.js'
import {
  DEFAULT_EVENT_LIMITS,
  EDGE_JSON_MAX_DEPTH,
  eventLimitViolation,
  jsonLimitViolation,
  LARGER_EVENT_TYPES,
  limitsOf,
  PLAN_LIMITS,
} from '../../src/domain/limits.js'
import { parseJsonStrictly, StrictJsonError } from '../../src/domain/strict-json.js'

const refused = (text: string, reason: string, path?: string) =>
  assert.throws(
    () => parseJsonStrictly(text),
    (error: unknown) => {
      assert.ok(error instanceof StrictJsonError, `${text.slice(0, 60)}: ${String(error)}`)
      assert.equal(error.reason, reason, `${text.slice(0, 60)}: ${error.message}`)
      if (path !== undefined) assert.equal(error.path, path)
      return true
    },
  )

test('strict JSON reads what JSON.parse reads, when it has one exact meaning', () => {
  const texts = [
    '{"a":1,"b":[true,false,null],"c":{"d":"e"}}',
    '[]',
    '"text"',
    '1.5e-7',
    '1.50E-7',
    '0.1',
    '-0.30',
    '1E2',
    '0e5',
    `[${Number.MAX_SAFE_INTEGER},${-Number.MAX_SAFE_INTEGER}]`,
    '{"emoji":"\\ud83d\\ude00","raw":"😀","mixed":"\\ud83d\ude00"}',
    '{"a":{"b":1},"b":{"a":1}}',
    '{"constructor":{"name":"x"},"prototype":1}',
    ' \n{ "spaced" : [ 1 , 2 ] }\t',
    '{"quote\\"d":"\\\\","\\u0061b":1,"ab\\u0000":2}',
  ]
  for (const text of texts) assert.deepEqual(parseJsonStrictly(text), JSON.parse(text), text)
})

test('strict JSON refuses duplicate keys, however they are written, naming where', () => {
  refused('{"a":1,"a":2}', 'duplicate-key', '$.a')
  refused('{"a":1,"\\u0061":2}', 'duplicate-key', '$.a')
  refused('{"x":[{"k":1},{"k":2,"k":3}]}', 'duplicate-key', '$.x.1.k')
  refused('{"x":{"y":{},"y":{}}}', 'duplicate-key', '$.x.y')
})

test('strict JSON refuses lone surrogates, escaped or raw, as keys and as values', () => {
  refused('{"x":"\\ud800"}', 'lone-surrogate', '$.x')
  refused('{"x":"\\udc00"}', 'lone-surrogate', '$.x')
  refused('{"x":"a\\ud83d"}', 'lone-surrogate', '$.x')
  refused('{"x":"\\ud83d\\n"}', 'lone-surrogate')
  refused('{"x":"\\ude00\\ud83d"}', 'lone-surrogate')
  refused('["\ud800"]', 'lone-surrogate', '$.0')
  refused('{"\\udfff":1}', 'lone-surrogate')
})

test('strict JSON refuses numbers beyond a double and beyond ±(2^53-1), as literals, with a precise reason', () => {
  refused('{"x":1e400}', 'non-finite-number', '$.x')
  refused('[-1e400]', 'non-finite-number', '$.0')
  refused(`{"n":${Number.MAX_SAFE_INTEGER + 1}}`, 'unsafe-integer', '$.n')
  refused('{"n":9007199254740993}', 'unsafe-integer')
  refused('{"n":-9007199254740993}', 'unsafe-integer')
  refused('{"n":12345678901234567890123}', 'unsafe-integer')
  refused('{"n":1e30}', 'unsafe-integer')
  // a literal saying more or less than its double would share a hash with another number
  refused('{"x":1e-400}', 'inexact-number', '$.x')
  refused('{"x":-0}', 'inexact-number', '$.x')
  refused('[-0.0e3]', 'inexact-number', '$.0')
  refused('{"x":0.30000000000000000001}', 'inexact-number')
  refused('{"x":0.1000000000000000055511151231257827}', 'inexact-number')
  assert.match(
    (() => {
      try {
        parseJsonStrictly('{"n":9007199254740993}')
        return ''
      } catch (error) {
        return (error as Error).message
      }
    })(),
    /9007199254740993 is beyond ±\(2\^53-1\).*as a string/,
  )
})

test('strict JSON refuses nesting deeper than its limit, at any depth, without recursion', () => {
  const nested = (depth: number) => `${'{"a":['.repeat(depth / 2)}0${']}'.repeat(depth / 2)}`
  assert.ok(parseJsonStrictly(nested(EDGE_JSON_MAX_DEPTH)))
  refused(nested(EDGE_JSON_MAX_DEPTH + 2), 'too-deep')
  for (const depth of [6_000, 200_000]) refused(nested(depth), 'too-deep')
  assert.throws(() => parseJsonStrictly('[[[1]]]', { maxDepth: 2 }), { reason: 'too-deep', limit: 2 })
  assert.deepEqual(parseJsonStrictly('[[1]]', { maxDepth: 2 }), [[1]])
})

test('strict JSON refuses keys that reach an object prototype, and text that is not JSON', () => {
  refused('{"__proto__":{"admin":true}}', 'forbidden-key', '$.__proto__')
  refused('{"a":{"constructor":{"prototype":{"x":1}}}}', 'forbidden-key')
  for (const text of ['', '  ', '{"a":', '[1,]', "{'a':1}", 'NaN', '{"a":1}x', '01']) refused(text, 'syntax')
})

/** Whether a value holds a `__proto__` key, or a `prototype` key under `constructor`, at any depth. */
const hasForbiddenKey = (value: unknown, under: string | null = null): boolean => {
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.some((item) => hasForbiddenKey(item))
  return Object.entries(value).some(
    ([key, item]) =>
      key === '__proto__' || (key === 'prototype' && under === 'constructor') || hasForbiddenKey(item, key),
  )
}

test('property: strict JSON accepts exactly what canonical JSON can write, and reads back what it wrote', () => {
  let accepted = 0
  let refusedCount = 0
  let forbidden = 0
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const text = JSON.stringify(value)
      let canonical: string | null = null
      try {
        canonical = canonicalize(value)
      } catch (error) {
        assert.ok(error instanceof CanonicalJsonError)
      }
      if (canonical === null) {
        refusedCount += 1
        assert.throws(() => parseJsonStrictly(text), StrictJsonError)
        return
      }
      // the one deliberate difference: keys that reach an object's prototype are refused, written or not
      if (hasForbiddenKey(value)) {
        forbidden += 1
        assert.throws(() => parseJsonStrictly(text), { reason: 'forbidden-key' })
        return
      }
      accepted += 1
      const parsed = parseJsonStrictly(text)
      assert.equal(canonicalize(parsed), canonical)
      assert.equal(canonicalize(parseJsonStrictly(canonical)), canonical)
    }),
    {
      numRuns: 3000,
      // values fast-check finds now and then, always tried
      examples: [[JSON.parse('{"__proto__":null}')], [JSON.parse('{"constructor":{"prototype":[1]}}')]],
    },
  )
  console.log(
    `strict JSON property: ${accepted} values accepted, ${refusedCount} refused by both, ${forbidden} with a prototype key`,
  )
  assert.ok(accepted > 0)
})

test('every limit of a plan is named with its figure at its boundary, and refused one past it', () => {
  const within = (value: unknown) => assert.equal(jsonLimitViolation(value, PLAN_LIMITS), null)
  const beyond = (value: unknown, limit: string, message: RegExp) => {
    const violation = jsonLimitViolation(value, PLAN_LIMITS)
    assert.equal(violation?.limit, limit)
    assert.match(violation?.message ?? '', message)
  }
  const nest = (depth: number): unknown => {
    let value: unknown = 1
    for (let i = 1; i < depth; i += 1) value = { a: value }
    return { a: value }
  }
  within(nest(PLAN_LIMITS.maxDepth))
  beyond(nest(PLAN_LIMITS.maxDepth + 1), 'maxDepth', /deeper than 32 levels \(at \$\.a\.a/)
  beyond(nest(6000), 'maxDepth', /deeper than 32 levels/)
  const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))
  within(keys(PLAN_LIMITS.maxKeys))
  beyond({ x: keys(PLAN_LIMITS.maxKeys + 1) }, 'maxKeys', /more than 256 keys \(at \$\.x\)/)
  within({ s: 'x'.repeat(PLAN_LIMITS.maxStringLength) })
  beyond(
    { s: ['x'.repeat(PLAN_LIMITS.maxStringLength + 1)] },
    'maxStringLength',
    /longer than 16384 characters \(at \$\.s\.0\)/,
  )
  beyond({ ['k'.repeat(PLAN_LIMITS.maxStringLength + 1)]: 1 }, 'maxStringLength', /a key longer than 16384/)
  within({ a: Array.from({ length: PLAN_LIMITS.maxArrayLength }, () => 0) })
  beyond(
    { a: Array.from({ length: PLAN_LIMITS.maxArrayLength + 1 }, () => 0) },
    'maxArrayLength',
    /longer than 1024 items/,
  )
  const big = { a: Array.from({ length: 5 }, () => 'x'.repeat(PLAN_LIMITS.maxStringLength)) }
  const violation = jsonLimitViolation(big, PLAN_LIMITS)
  assert.deepEqual([violation?.limit, violation?.tooLarge], ['maxBytes', true])
  assert.match(violation?.message ?? '', /larger than 65536 bytes of canonical JSON \(\d+\)/)
  beyond({ x: Number.MAX_SAFE_INTEGER + 2 }, 'canonical', /2\^53-1/)
  beyond({ x: 'lone \ud800' }, 'canonical', /lone surrogate/)
})

test('each event type has its byte limit; the larger ones are few and a new append beyond one is named', () => {
  assert.ok(LARGER_EVENT_TYPES.includes('ProposalSubmitted'))
  assert.equal(limitsOf('AgentRegistered').maxBytes, DEFAULT_EVENT_LIMITS.maxBytes)
  for (const type of LARGER_EVENT_TYPES)
    assert.ok(limitsOf(type).maxBytes > DEFAULT_EVENT_LIMITS.maxBytes, type)
  const branch = {
    name: 'b',
    kind: 'baseline',
    counterfactual: 'x'.repeat(2000),
    outcome: 'survived',
    detail: 'y'.repeat(4000),
  }
  const simulation = (n: number) => ({
    type: 'SimulationRecorded' as const,
    data: {
      proposalId: 'p',
      simulationId: 's',
      requestId: 'r',
      actionDigest: 'd',
      simulatedBy: 'sim',
      branches: Array.from({ length: n }, () => branch),
    },
  })
  assert.equal(eventLimitViolation(simulation(10)), null)
  const over = eventLimitViolation(simulation(100))
  assert.equal(over?.tooLarge, true)
  assert.match(
    over?.message ?? '',
    /a SimulationRecorded takes at most 262144 bytes of canonical JSON; this one takes \d+/,
  )
  const proposal = (plan: unknown) => ({
    type: 'ProposalSubmitted' as const,
    data: { proposalId: 'p', plan },
  })
  assert.equal(eventLimitViolation(proposal({ steps: ['one'] })), null)
  assert.equal(eventLimitViolation(proposal({ a: { a: { a: 1 } } })), null)
  let deep: unknown = 1
  for (let i = 0; i < 40; i += 1) deep = { a: deep }
  assert.match(eventLimitViolation(proposal(deep))?.message ?? '', /^plan is deeper than 32 levels/)
})

test('the operations guide states every limit as the table defines it', () => {
  const guide = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
  const start = guide.indexOf('## Bounded input')
  const section = guide.slice(start, guide.indexOf('\n## ', start + 1))
  assert.ok(section.length > 100, 'the section is there')
  assert.match(section, new RegExp(`nesting deeper than ${EDGE_JSON_MAX_DEPTH} levels`))
  for (const [limit, value] of Object.entries(PLAN_LIMITS)) {
    assert.match(section, new RegExp(`\\| \`${limit}\` +\\| ${value} `), `plan ${limit}`)
  }
  assert.match(section, new RegExp(`at most ${DEFAULT_EVENT_LIMITS.maxBytes} bytes`))
  const rows = section.split('\n').filter((line) => /^\| `[A-Z]\w+` +\| \d+/.test(line))
  assert.equal(rows.length, LARGER_EVENT_TYPES.length, 'one row per larger event type')
  for (const type of LARGER_EVENT_TYPES) {
    assert.ok(
      rows.some((row) => new RegExp(`^\\| \`${type}\` +\\| ${limitsOf(type).maxBytes} `).test(row)),
      `${type}: ${limitsOf(type).maxBytes}`,
    )
  }
})
