// Proposal messages for governance.proposals as an attacker or a careless publisher writes them: valid ones,
// near misses, number, unicode, depth and size edge cases, every content type and token, both CloudEvent modes.
import fc from 'fast-check'
import { PROPOSAL_CE_TYPE } from '../../src/kafka/cloudevents.js'
import { SEED } from './api.js'

export interface FuzzMessage {
  readonly value: Buffer | null
  readonly headers: Record<string, string>
}

/** The tokens a message may carry: the Kafka tokens of the world's agents and worse. */
export interface FuzzTokens {
  /** Kafka-audience tokens by agent: registered ones (at execute, at recommend) and one that is not */
  readonly agents: Readonly<Record<string, string>>
  /** an HTTP token of the same agent: refused on Kafka */
  readonly http: string
  /** a Kafka token of a principal that is not an agent */
  readonly observer: string
}

/** How deep a plan may be nested, and the identity the world's agents act through. */
export interface FuzzWorld {
  readonly maxDepth: number
  readonly identity: string
}

/** Raw JSON text that JSON.stringify never writes: numbers, strings and shapes at the edges. */
const NASTY = [
  '1e400',
  '-1e400',
  '1e-400',
  '-0',
  '9007199254740993',
  '-9007199254740993',
  '123456789012345678901234567890',
  '1.7976931348623157e308',
  '5e-324',
  '"\\ud800"',
  '"\\udfff tail"',
  '"\\u0000"',
  '"\\uFEFF"',
  '{"a":1,"a":2}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{}}}',
  '[]',
  'null',
  'true',
  '""',
  `"${'x'.repeat(20_000)}"`,
  `"${'é'.repeat(3000)}"`,
  '"😀\\ud83d"',
]

const nested = (depth: number, open: string, close: string, inner: string) =>
  `${open.repeat(depth)}${inner}${close.repeat(depth)}`

/** A plan's JSON text: ordinary values, a nasty snippet, or nesting up to `maxDepth` deep. */
const planText = (maxDepth: number): fc.Arbitrary<string> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })).map((p) => JSON.stringify(p)),
    },
    { weight: 2, arbitrary: fc.constantFrom(...NASTY).map((n) => `{"x":${n}}`) },
    { weight: 1, arbitrary: fc.constantFrom(...NASTY) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: maxDepth }), fc.boolean())
        .map(
          ([depth, arrays]) =>
            `{"x":${arrays ? nested(depth, '[', ']', '1') : nested(depth, '{"a":', '}', '1')}}`,
        ),
    },
    {
      weight: 1,
      arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `{"s":${JSON.stringify(s)}}`),
    },
  )

/** Mostly the valid value, now and then one of the others: so that the cases reach deep into the ingress. */
const usually = <T>(valid: T, ...others: T[]): fc.Arbitrary<T> =>
  fc.oneof(
    { weight: 12, arbitrary: fc.constant(valid) },
    { weight: 1, arbitrary: fc.constantFrom(...others) },
  )

const identifier = fc.oneof(
  { weight: 4, arbitrary: fc.uuid() },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,30}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 250 }) },
)

/**
 * A proposal's JSON text, mostly well formed, the plan from `planText`, a field now and then wrong; the
 * agent is the principal's own (`self`) unless another is drawn.
 */
const proposalText = (self: string, { maxDepth, identity }: FuzzWorld): fc.Arbitrary<string> =>
  fc
    .record({
      proposalId: fc.option(identifier, { nil: undefined }),
      agentId: usually<string | null>(null, 'agent-1', 'agent-2', 'agent-x', ''),
      tool: fc.constantFrom(...SEED.toolActions.map((t) => `${t.tool}.${t.action}`), 'nope.nope'),
      environment: usually('production', 'staging', 'moon'),
      expectedImpact: usually('high', 'read', 'low', 'medium', 'critical', 'huge'),
      plan: planText(maxDepth),
      broken: fc.oneof(
        { weight: 8, arbitrary: fc.constant(undefined) },
        {
          weight: 1,
          arbitrary: fc.record({
            field: fc.constantFrom('resource', 'snapshot', 'executingIdentity', 'extra'),
            value: fc.jsonValue(),
          }),
        },
      ),
    })
    .map(({ proposalId, agentId, tool, environment, expectedImpact, plan, broken }) => {
      const [toolName, action] = tool.split('.')
      const fields: Record<string, unknown> = {
        ...(proposalId === undefined ? {} : { proposalId }),
        agentId: agentId ?? self,
        executingIdentity: identity,
        tool: toolName,
        action,
        resource: SEED.resource,
        environment,
        expectedImpact,
        snapshot: { version: 'v1' },
      }
      if (broken) fields[broken.field] = broken.value
      const text = JSON.stringify(fields)
      return `${text.slice(0, -1)},"plan":${plan}}`
    })

/** The value's bytes: the proposal, cut short, any JSON, any text, any bytes. */
const valueText = (self: string, world: FuzzWorld): fc.Arbitrary<string | Buffer | null> =>
  fc.oneof(
    { weight: 12, arbitrary: proposalText(self, world) },
    {
      weight: 1,
      arbitrary: proposalText(self, world).chain((t) => fc.nat(t.length).map((n) => t.slice(0, n))),
    },
    { weight: 1, arbitrary: fc.json() },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: fc.constant(null) },
  )

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON;CHARSET="UTF-8"',
  'application/json; charset=latin1',
  'application/json;;',
  'text/plain',
  'application/*',
  '',
  'application/cloudevents+json',
]

/** Every way a message of governance.proposals can be written, as far as the ingress is concerned. */
export const proposalMessages = (tokens: FuzzTokens, world: FuzzWorld): fc.Arbitrary<FuzzMessage> =>
  fc
    .constantFrom(...Object.keys(tokens.agents))
    .chain((self) =>
      fc.record({
        value: valueText(self, world),
        structured: fc.boolean(),
        // the right one for the mode unless another is drawn
        contentType: fc.oneof(
          { weight: 10, arbitrary: fc.constant(undefined) },
          { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
          { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
        ),
        token: fc.oneof(
          { weight: 12, arbitrary: fc.constant(tokens.agents[self] ?? '') },
          {
            weight: 1,
            arbitrary: fc.constantFrom(tokens.http, tokens.observer, ...Object.values(tokens.agents)),
          },
          { weight: 1, arbitrary: fc.constant(`${(tokens.agents[self] ?? '').slice(0, -3)}AAA`) },
          { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
        ),
        bearer: usually('Bearer ', 'bearer ', 'Basic ', ''),
        specversion: usually<string | undefined>('1.0', '0.3', undefined),
        type: usually<string | undefined>(PROPOSAL_CE_TYPE, 'governance.other', undefined),
        id: fc.oneof(
          { weight: 6, arbitrary: fc.uuid() },
          { weight: 1, arbitrary: identifier },
          { weight: 1, arbitrary: fc.constant('') },
        ),
        extra: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 }), {
          maxKeys: 3,
        }),
      }),
    )
    .map(({ value, structured, contentType, token, bearer, specversion, type, id, extra }) => {
      const asText = typeof value === 'string' ? value : null
      const headers: Record<string, string> = { ...extra, authorization: `${bearer}${token}` }
      if (structured && asText !== null) {
        // the whole event is the value, the data spliced in as text so that its edge cases survive
        const envelope = JSON.stringify({ specversion, id, source: 'urn:fuzz', type })
        headers['content-type'] = contentType ?? 'application/cloudevents+json'
        return { value: Buffer.from(`${envelope.slice(0, -1)},"data":${asText}}`), headers }
      }
      if (specversion !== undefined) headers.ce_specversion = specversion
      if (type !== undefined) headers.ce_type = type
      headers.ce_id = id
      headers.ce_source = 'urn:fuzz'
      headers['content-type'] = contentType ?? 'application/json'
      return { value: value === null ? null : Buffer.from(value), headers }
    })
