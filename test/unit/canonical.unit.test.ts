import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type ActionIdentity,
  actionDigestOf,
  canonicalize,
  canonicalizeRecorded,
  isWellFormed,
  jsonText,
  planHashOf,
  sha256Hex,
} from '../../src/domain/canonical.js'
import { uuidFromName, uuidv7 } from '../../src/domain/ids.js'

test('canonical JSON follows the examples of RFC 8785', () => {
  // section 3.2.2: numbers, literals and strings in their ECMAScript forms, keys sorted
  // the input as the RFC writes it, parsed as JSON text
  const input = JSON.parse(
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
      ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
  )
  const rfc =
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
  assert.equal(canonicalizeRecorded(input), rfc)
  // RFC 8785 takes I-JSON (RFC 7493), whose numbers are exact within ±(2^53-1): 1E30 is refused, the rest holds
  assert.throws(() => canonicalize(input), { reason: 'unsafe-integer', path: '$.numbers.1' })
  input.numbers.splice(1, 1)
  assert.equal(canonicalize(input), rfc.replace('1e+30,', ''))
  // section 3.2.3: keys sorted by their UTF-16 code units, not by code points
  const sorting = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  }
  const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'] as const
  const expected = order.map((key) => `${JSON.stringify(key)}:${JSON.stringify(sorting[key])}`).join(',')
  assert.equal(canonicalize(sorting), `{${expected}}`)
})

test('canonical JSON writes every well-formed string, as a value or as a key, exactly as ECMAScript JSON does', () => {
  const strings = [
    ...Array.from({ length: 0x10000 }, (_, code) => String.fromCharCode(code)),
    '',
    'plain text with spaces: 1/2 @ [x]',
    'quote " inside',
    'back\\slash',
    'tab\tand newline\n',
    '\ud83d\ude00 astral',
    '\u007f delete',
  ]
  let lone = 0
  for (const text of strings) {
    if (/[\ud800-\udfff]/.test(text) && !/[\ud800-\udbff][\udc00-\udfff]/.test(text)) {
      // a lone surrogate has no UTF-8 form: refused, as a value and as a key, naming where
      lone += 1
      assert.throws(() => canonicalize({ a: [text] }), {
        name: 'CanonicalJsonError',
        reason: 'lone-surrogate',
        path: '$.a.0',
      })
      assert.throws(() => canonicalize({ [text]: 1 }), {
        name: 'CanonicalJsonError',
        reason: 'lone-surrogate',
      })
      // what an older ledger recorded is still written as it was hashed
      assert.equal(canonicalizeRecorded(text), JSON.stringify(text))
      continue
    }
    assert.equal(canonicalize(text), JSON.stringify(text), `the string ${JSON.stringify(text)}`)
    assert.equal(canonicalize({ [text]: 1 }), `{${JSON.stringify(text)}:1}`)
  }
  assert.equal(lone, 0x800, 'every lone surrogate code unit was refused')
  for (const text of ['lone \ud800 surrogate', '\udc00', 'x\udbff', '\ude00\ud83d']) {
    assert.throws(() => canonicalize(text), /lone surrogate/)
    assert.equal(isWellFormed(text), false)
  }
  assert.equal(isWellFormed('\ud83d\ude00 astral'), true)
})

test("canonical JSON holds finite numbers within ±(2^53-1) only; an older ledger's larger integers are written back as recorded", () => {
  const max = Number.MAX_SAFE_INTEGER
  assert.equal(canonicalize([max, -max, 0.5, 1e-7, 1e21 / 1e6]), `[${max},${-max},0.5,1e-7,1000000000000000]`)
  for (const big of [max + 1, -(max + 1), 1e21, 1.7976931348623157e308]) {
    assert.throws(() => canonicalize({ n: big }), {
      name: 'CanonicalJsonError',
      reason: 'unsafe-integer',
      path: '$.n',
    })
    assert.equal(canonicalizeRecorded({ n: big }), `{"n":${JSON.stringify(big)}}`)
  }
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    assert.throws(() => canonicalize([bad]), { reason: 'non-finite-number' })
    assert.throws(() => canonicalizeRecorded([bad]), { reason: 'non-finite-number' })
  }
})

test('canonical JSON writes any depth of nesting without recursion, and refuses a cycle', () => {
  const depth = 200_000
  const text = `${'{"a":['.repeat(depth)}1${']}'.repeat(depth)}`
  const deep = JSON.parse(text)
  assert.equal(canonicalize(deep), text)
  assert.equal(canonicalizeRecorded(deep), text)
  // the native writer gives up long before: the fallback writes it all the same
  assert.throws(() => JSON.stringify(deep), RangeError)
  assert.equal(jsonText(deep), text)
  assert.equal(jsonText({ b: 1, a: 2 }), '{"b":1,"a":2}')
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  assert.throws(() => canonicalize(cycle), { reason: 'not-json' })
})

const ACTION: ActionIdentity = {
  proposalId: 'p-1',
  tool: 'kubectl',
  action: 'scale',
  resource: 'deployment/web-a',
  environment: 'production',
  executingIdentity: 'svc-deployer',
  plan: { steps: ['scale to 3 replicas'], batch: 1 },
}

test('the action digest is a sha256 of the canonical action, in its own domain, stable under key order', () => {
  const digest = actionDigestOf(ACTION)
  assert.match(digest, /^sha256:[0-9a-f]{64}$/)
  const reordered: ActionIdentity = {
    plan: { batch: 1, steps: ['scale to 3 replicas'] },
    executingIdentity: 'svc-deployer',
    environment: 'production',
    resource: 'deployment/web-a',
    action: 'scale',
    tool: 'kubectl',
    proposalId: 'p-1',
  }
  assert.equal(actionDigestOf(reordered), digest)
  assert.equal(
    digest,
    `sha256:${sha256Hex(canonicalize({ domain: 'governance-ledger/action/v1', ...ACTION }))}`,
  )
  // never the plan hash: the same plan is not the same action
  assert.notEqual(digest, planHashOf(ACTION.plan))
  // fields beyond the action's are not part of it
  assert.equal(actionDigestOf({ ...ACTION, agentId: 'agent-9' } as ActionIdentity), digest)
})

test('the action digest differs when any one field of the action differs', () => {
  const digest = actionDigestOf(ACTION)
  const variants: Record<keyof ActionIdentity, unknown> = {
    proposalId: 'p-2',
    tool: 'helm',
    action: 'rollout',
    resource: 'database/payments-primary',
    environment: 'staging',
    executingIdentity: 'svc-other',
    plan: { steps: ['scale to 3 replicas'], batch: 2 },
  }
  const seen = new Set([digest])
  for (const [field, value] of Object.entries(variants)) {
    const other = actionDigestOf({ ...ACTION, [field]: value })
    assert.notEqual(other, digest, `a different ${field} is another action`)
    seen.add(other)
  }
  assert.equal(seen.size, 1 + Object.keys(variants).length, 'every variant has its own digest')
  // a field's value cannot be moved into another field to forge the same digest
  assert.notEqual(
    actionDigestOf({ ...ACTION, tool: 'kubectl', action: 'scale' }),
    actionDigestOf({ ...ACTION, tool: 'kubectl-scale', action: '' }),
  )
})

test('uuidv7 carries the millisecond timestamp, the version and the variant, and never repeats', () => {
  const at = Date.parse('2026-11-25T12:00:00.123Z')
  const seen = new Set<string>()
  for (let i = 0; i < 20_000; i += 1) {
    const id = uuidv7(at)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.equal(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16), at)
    seen.add(id)
  }
  assert.equal(seen.size, 20_000, 'every id is distinct across many pages of pooled randomness')
  // the random bits are spread: every hex digit turns up in the last group
  const digits = new Set([...seen].flatMap((id) => [...id.slice(24)]))
  assert.equal(digits.size, 16)
})

test('uuidFromName is a UUIDv8 that depends on the name alone', () => {
  const id = uuidFromName('decision:abc')
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.equal(uuidFromName('decision:abc'), id)
  assert.notEqual(uuidFromName('decision:abd'), id)
})
