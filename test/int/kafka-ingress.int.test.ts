import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { CloudEvent, Kafka, type KafkaMessage } from 'cloudevents'
import fc from 'fast-check'
import type { Producer } from 'kafkajs'
import pino from 'pino'
import { approveChange, govern } from '../../src/application/govern.js'
import { handle } from '../../src/application/handle.js'
import { approvePromotion, requestPromotion } from '../../src/application/promotions.js'
import { agentLevel } from '../../src/application/queries.js'
import { createTokenVerifier, issueToken, verifierKeys } from '../../src/auth/tokens.js'
import { loadConfig } from '../../src/config.js'
import type { Actor } from '../../src/domain/actor.js'
import { agent } from '../../src/domain/deciders/index.js'
import { defaultPolicy } from '../../src/domain/eligibility.js'
import {
  type GovernanceChange,
  type PolicyDraft,
  streams,
  type TrackRecord,
} from '../../src/domain/events.js'
import { buildApp } from '../../src/http/app.js'
import { kafkaTokenConfig } from '../../src/kafka/bridge.js'
import { PROPOSAL_CE_TYPE, toKafkaMessage, topicsFor } from '../../src/kafka/cloudevents.js'
import { DLQ_HEADERS, Ingress, Intake } from '../../src/kafka/ingress.js'
import { type Runtime, startRuntime } from '../../src/runtime.js'
import { ExecutorClient } from '../../src/sdk/executor.js'
import { KafkaVerdictSubscriber } from '../../src/sdk/kafka.js'
import {
  collect,
  eventually,
  freshTopics,
  kafkaBrokers,
  kafkaClient,
  producerFor,
  type Received,
  uniquePrefix,
} from '../support/kafka.js'
import { proposalMessages } from '../support/kafka-fuzz.js'

const target = await kafkaBrokers()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const proposalBody = (proposalId: string, agentId = 'agent-k') => ({
  proposalId,
  agentId,
  executingIdentity: `svc-${agentId}`,
  tool: 'kubectl',
  action: 'scale',
  resource: 'deployment/web',
  environment: 'production',
  plan: { replicas: 3 },
  expectedImpact: 'high',
  snapshot: { version: 'v1' },
})

const cloudEvent = (token: string | null, id: string = randomUUID()) => ({
  ce_specversion: '1.0',
  ce_id: id,
  ce_source: 'urn:test-agent',
  ce_type: PROPOSAL_CE_TYPE,
  'content-type': 'application/json',
  ...(token === null ? {} : { authorization: `Bearer ${token}` }),
})

describe('the Kafka ingress, against a real broker', { skip: 'skip' in target ? target.skip : false }, () => {
  let dir: string
  let runtime: Runtime
  let producer: Producer
  let agentToken: string
  const prefix = uniquePrefix()
  const topics = topicsFor(prefix)
  const brokers = 'brokers' in target ? target.brokers : ''

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kafka-ingress-'))
    const config = loadConfig({
      DATA_DIR: dir,
      LOG_LEVEL: 'silent',
      KAFKA_BROKERS: brokers,
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_MAX_MESSAGE_BYTES: '16384',
    })
    runtime = await startRuntime(config, pino({ level: 'silent' }))
    // the world a real service would hold: a policy, the inventory, the agent bound to its identity, at recommend
    const admins: Actor[] = ['admin-1', 'admin-2'].map((sub) => ({
      sub,
      roles: ['policy-admin'],
      approvalRoles: [],
    }))
    const [first, second] = admins as [Actor, Actor]
    const governed = async (change: GovernanceChange, draft: PolicyDraft | null = null) => {
      const outcome = await govern(runtime.store, first, change, draft)
      if (outcome.status === 'pending') await approveChange(runtime.store, second, outcome.requestId)
    }
    await governed({ kind: 'publish-policy', policyVersion: 1 }, defaultPolicy('risk-office'))
    await governed({
      kind: 'register-tool-action',
      tool: 'kubectl',
      action: 'scale',
      impact: 'high',
      reversible: true,
      description: '',
    })
    await handle(
      runtime.store,
      agent,
      streams.agent('agent-k'),
      { type: 'RegisterAgent', actor: first, agentId: 'agent-k', owner: 'team', description: '' },
      { actor: first.sub },
    )
    await governed({ kind: 'bind-identity', principal: 'agent-k', role: 'agent', identity: 'svc-agent-k' })
    const agentK: Actor = { sub: 'agent-k', roles: ['agent'], approvalRoles: [] }
    const noRecord = (days: number): Promise<TrackRecord> => {
      const windowEnd = new Date().toISOString()
      const windowStart = new Date(Date.now() - days * 86_400_000).toISOString()
      return Promise.resolve({
        windowStart,
        windowEnd,
        proposals: 0,
        simulationsPassed: 0,
        simulationSurvivalRate: 1,
        violations: 0,
        failedExecutions: 0,
      })
    }
    await requestPromotion(
      runtime.store,
      agentK,
      'agent-k',
      { requestId: 'r1', environment: 'production', to: 'recommend' },
      noRecord,
    )
    for (const admin of admins) {
      await approvePromotion(runtime.store, admin, 'agent-k', 'r1', (_environment, days) => noRecord(days))
    }
    assert.equal(await agentLevel(runtime.store, 'agent-k', 'production'), 'recommend')
    agentToken = await issueToken(
      runtime.tokenKey as NonNullable<Runtime['tokenKey']>,
      kafkaTokenConfig(config),
      {
        sub: 'agent-k',
        roles: ['agent'],
        expiresIn: '15m',
      },
    )
    producer = await producerFor(kafkaClient(brokers))
  })

  after(async () => {
    await producer?.disconnect()
    await runtime?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('a proposal published on governance.proposals becomes a verdict on governance.verdicts', async () => {
    const collector = await collect(kafkaClient(brokers), [topics.verdicts])
    try {
      const proposalId = `p-${randomUUID()}`
      await producer.send({
        topic: topics.proposals,
        messages: [
          {
            key: proposalId,
            value: JSON.stringify(proposalBody(proposalId)),
            headers: cloudEvent(agentToken),
          },
        ],
      })
      await eventually(
        () =>
          collector.messages.some(
            (m) => (JSON.parse(m.value) as { proposalId?: string }).proposalId === proposalId,
          ),
        30_000,
        'the verdict on governance.verdicts',
      )
      const verdict = JSON.parse(collector.messages.find((m) => m.value.includes(proposalId))?.value ?? '{}')
      assert.equal(verdict.decision, 'block', 'an agent at recommend is blocked')
      assert.match(verdict.checks.find((c: { check: string }) => c.check === 'authority').reason, /recommend/)
      const stored = await runtime.store.readStream(streams.proposal(proposalId))
      assert.equal(stored[0]?.metadata.actor, 'agent-k', 'the actor is the token subject')
      // the same message again (at-least-once delivery upstream) appends nothing
      const before = await runtime.store.head()
      await producer.send({
        topic: topics.proposals,
        messages: [
          {
            key: proposalId,
            value: JSON.stringify(proposalBody(proposalId)),
            headers: cloudEvent(agentToken),
          },
        ],
      })
      await eventually(() => runtime.kafka?.ingress.stats().accepted === 2, 20_000, 'the repeat was taken')
      assert.deepEqual(await runtime.store.head(), before)
    } finally {
      await collector.stop()
    }
  })

  test('a proposal published with the CloudEvents SDK (the example of docs/operations.md) is taken', async () => {
    const accepted = runtime.kafka?.ingress.stats().accepted ?? 0
    const proposal = proposalBody(`p-${randomUUID()}`)
    const KAFKA_TOKEN = agentToken
    // from here to the send, as docs/operations.md ("Publishing a proposal") shows it
    const event = new CloudEvent({
      id: proposal.proposalId, // the proposal id: the same proposal sent again appends nothing
      source: 'urn:agent:agent-k',
      type: 'governance.proposal.submit',
      datacontenttype: 'application/json',
      data: proposal,
    })
    const message = Kafka.binary(event)
    // Kafka.binary names every attribute, set or not: kafkajs takes only headers with a value
    const headers = Object.fromEntries(
      Object.entries(message.headers).filter(([, value]) => value !== undefined),
    )
    await producer.send({
      topic: topics.proposals,
      messages: [
        {
          key: event.id,
          value: JSON.stringify(message.value),
          headers: { ...headers, authorization: `Bearer ${KAFKA_TOKEN}` },
        },
      ],
    })
    await eventually(
      async () =>
        (await runtime.store.readStream(streams.proposal(proposal.proposalId))).some(
          (e) => e.type === 'VerdictIssued',
        ),
      20_000,
      'the proposal appended and decided (the next test reads a quiet head)',
    )
    const [submitted] = await runtime.store.readStream(streams.proposal(proposal.proposalId))
    assert.equal(submitted?.type, 'ProposalSubmitted')
    assert.equal(submitted?.metadata.actor, 'agent-k')
    assert.equal(submitted?.metadata.correlationId, proposal.proposalId, 'ce_id correlates')
    assert.equal(runtime.kafka?.ingress.stats().accepted, accepted + 1)
    // the docs' example holds these very calls
    const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
    for (const line of [
      "type: 'governance.proposal.submit',",
      'const message = Kafka.binary(event)',
      'Object.entries(message.headers).filter(([, value]) => value !== undefined)',
      'value: JSON.stringify(message.value),',
      'headers: { ...headers, authorization: `Bearer ',
    ])
      assert.ok(doc.includes(line), `docs/operations.md shows ${line}`)
  })

  test('a thousand malformed, unauthenticated and oversized messages: all in the DLQ with reasons, none in the ledger', async () => {
    const before = await runtime.store.head()
    const otherAgentToken = await issueToken(
      runtime.tokenKey as NonNullable<Runtime['tokenKey']>,
      kafkaTokenConfig(runtime.config),
      { sub: 'agent-x', roles: ['agent'] },
    )
    const observerToken = await issueToken(
      runtime.tokenKey as NonNullable<Runtime['tokenKey']>,
      kafkaTokenConfig(runtime.config),
      { sub: 'agent-k', roles: ['observer'] },
    )
    const kinds: Array<[string, (i: number) => { value: string | Buffer; headers: Record<string, string> }]> =
      [
        ['not JSON', () => ({ value: '{"proposalId": ', headers: cloudEvent(agentToken) })],
        ['no token', (i) => ({ value: JSON.stringify(proposalBody(`bad-${i}`)), headers: cloudEvent(null) })],
        [
          'forged token',
          (i) => ({
            value: JSON.stringify(proposalBody(`bad-${i}`)),
            headers: cloudEvent(`${agentToken.slice(0, -4)}AAAA`),
          }),
        ],
        [
          'another agent',
          (i) => ({ value: JSON.stringify(proposalBody(`bad-${i}`)), headers: cloudEvent(otherAgentToken) }),
        ],
        [
          'wrong role',
          (i) => ({ value: JSON.stringify(proposalBody(`bad-${i}`)), headers: cloudEvent(observerToken) }),
        ],
        [
          'missing field',
          (i) => ({
            value: JSON.stringify({ ...proposalBody(`bad-${i}`), tool: undefined }),
            headers: cloudEvent(agentToken),
          }),
        ],
        [
          'wrong type',
          (i) => ({
            value: JSON.stringify({ ...proposalBody(`bad-${i}`), plan: 'drop table' }),
            headers: cloudEvent(agentToken),
          }),
        ],
        [
          'not a CloudEvent',
          (i) => ({
            value: JSON.stringify(proposalBody(`bad-${i}`)),
            headers: { authorization: `Bearer ${agentToken}` },
          }),
        ],
        [
          'oversized',
          (i) => ({
            value: JSON.stringify({ ...proposalBody(`bad-${i}`), description: 'x'.repeat(20_000) }),
            headers: cloudEvent(agentToken),
          }),
        ],
        [
          'unknown agent level',
          (i) => ({
            value: JSON.stringify(proposalBody(`bad-${i}`, 'agent-x')),
            headers: cloudEvent(otherAgentToken),
          }),
        ],
      ]
    const dlq = await collect(kafkaClient(brokers), [topics.proposalsDlq])
    try {
      const messages = Array.from({ length: 1000 }, (_, i) => {
        const [, make] = kinds[i % kinds.length] as (typeof kinds)[number]
        return { key: `bad-${i}`, ...make(i) }
      })
      for (let i = 0; i < messages.length; i += 100)
        await producer.send({ topic: topics.proposals, messages: messages.slice(i, i + 100) })
      await eventually(
        () => dlq.messages.filter((m) => m.key?.startsWith('bad-')).length >= 1000,
        60_000,
        '1000 messages in the DLQ',
      )
      const dead = dlq.messages.filter((m) => m.key?.startsWith('bad-'))
      assert.equal(new Set(dead.map((m) => m.key)).size, 1000, 'each bad message once')
      for (const m of dead) {
        assert.ok(m.headers.dlq_reason && m.headers.dlq_code, `message ${m.key} has a reason`)
        assert.notEqual(
          m.headers.authorization?.startsWith('Bearer '),
          true,
          'no token is copied into the DLQ',
        )
      }
      const codes = new Map<string, number>()
      for (const m of dead)
        codes.set(String(m.headers.dlq_code), (codes.get(String(m.headers.dlq_code)) ?? 0) + 1)
      assert.deepEqual([...codes.keys()].sort(), [
        'forbidden',
        'invalid',
        'not-a-cloudevent',
        'not-found',
        'oversized',
        'unauthenticated',
      ])
      assert.deepEqual(await runtime.store.head(), before, 'nothing appended from invalid input')
      console.log(
        `ingress DLQ: 1000 bad messages, 1000 in the DLQ (${[...codes].map(([c, n]) => `${c}=${n}`).join(' ')}), 0 appended`,
      )

      // still healthy: a good message after all that is taken
      const proposalId = `p-${randomUUID()}`
      await producer.send({
        topic: topics.proposals,
        messages: [
          {
            key: proposalId,
            value: JSON.stringify(proposalBody(proposalId)),
            headers: cloudEvent(agentToken),
          },
        ],
      })
      await eventually(
        async () => (await runtime.store.readStream(streams.proposal(proposalId))).length > 0,
        20_000,
        'the good proposal appended',
      )
    } finally {
      await dlq.stop()
    }
  })

  test('executors follow governance.verdicts through the SDK: every verdict verified, duplicates and forgeries dropped', async () => {
    const app = await buildApp(runtime, { logger: false })
    const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
    const executorToken = await issueToken(
      runtime.tokenKey as NonNullable<Runtime['tokenKey']>,
      runtime.config,
      { sub: 'executor-1', roles: ['executor'] },
    )
    const executor = new ExecutorClient({ baseUrl, token: executorToken })
    const subscriber = new KafkaVerdictSubscriber(kafkaClient(brokers), executor, {
      groupId: `exec-${randomUUID()}`,
      topicPrefix: prefix,
    })
    const delivered: string[] = []
    const rejected: string[] = []
    try {
      const ready = await app.inject({ method: 'GET', url: '/ready' })
      assert.equal(ready.statusCode, 200)
      assert.equal(ready.json().kafka.reachable, true)

      await subscriber.start(
        (event) => void delivered.push(event.eventId),
        (reason) => void rejected.push(reason),
      )
      const ledgerVerdicts = (await runtime.store.readAll(0, 100_000)).filter(
        (e) => e.type === 'VerdictIssued',
      )
      await eventually(() => delivered.length >= ledgerVerdicts.length, 30_000, 'every verdict delivered')
      assert.deepEqual(new Set(delivered), new Set(ledgerVerdicts.map((e) => e.id)))

      // a redelivered message and a forged one (decision flipped after signing) on the same topic
      const original = ledgerVerdicts[0]
      assert.ok(original)
      const message = toKafkaMessage(original)
      const forged = {
        ...toKafkaMessage({ ...original, id: randomUUID() }),
        value: JSON.stringify({ ...(original.data as object), decision: 'allow' }),
      }
      await producer.send({ topic: topics.verdicts, messages: [message, forged] })
      await eventually(
        () => subscriber.stats().duplicates >= 1 && rejected.length >= 1,
        20_000,
        'the duplicate and the forgery seen',
      )
      assert.equal(
        delivered.length,
        ledgerVerdicts.length,
        'nothing delivered twice, nothing forged delivered',
      )
      assert.match(rejected[0] ?? '', /^signature/)
      console.log(`kafka SDK: ${JSON.stringify(subscriber.stats())}`)
    } finally {
      await subscriber.stop()
      await app.close()
    }
  })

  /** The DLQ entries with this key, once there are `count` of them. */
  const deadLettered = async (dlq: { messages: Received[] }, key: string, count: number) => {
    await eventually(
      () => dlq.messages.filter((m) => m.key === key).length >= count,
      30_000,
      `${count} DLQ entries for ${key}`,
    )
    return dlq.messages.filter((m) => m.key === key)
  }
  const byId = (entries: Received[]) => new Map(entries.map((m) => [m.headers.ce_id, m.headers]))
  const proposalStream = (proposalId: string) => runtime.store.readStream(streams.proposal(proposalId))
  const taken = (proposalId: string) =>
    eventually(async () => (await proposalStream(proposalId)).length > 0, 30_000, `${proposalId} appended`)

  test('a plan with 1e400, a text/plain and a latin1 message go to the DLQ with their reasons; the partition moves on to the next message', async () => {
    const dlq = await collect(kafkaClient(brokers), [topics.proposalsDlq])
    try {
      const key = `poison-${randomUUID()}` // one key: one partition, in this order
      const [poison, plain, latin1, good] = [1, 2, 3, 4].map(() => `p-${randomUUID()}`) as [
        string,
        string,
        string,
        string,
      ]
      const poisonText = JSON.stringify(proposalBody(poison)).replace(
        '"plan":{"replicas":3}',
        '"plan":{"x":1e400}',
      )
      assert.match(poisonText, /1e400/)
      const restartsBefore = runtime.kafka?.ingress.stats().restarts
      await producer.send({
        topic: topics.proposals,
        messages: [
          { key, value: poisonText, headers: cloudEvent(agentToken, poison) },
          {
            key,
            value: JSON.stringify(proposalBody(plain)),
            headers: { ...cloudEvent(agentToken, plain), 'content-type': 'text/plain' },
          },
          {
            key,
            value: JSON.stringify(proposalBody(latin1)),
            headers: {
              ...cloudEvent(agentToken, latin1),
              'content-type': 'application/json; charset=latin1',
            },
          },
          {
            key,
            value: JSON.stringify(proposalBody(good)),
            headers: { ...cloudEvent(agentToken, good), 'content-type': 'Application/JSON; charset="UTF-8"' },
          },
        ],
      })
      await taken(good)
      const dead = byId(await deadLettered(dlq, key, 3))
      assert.ok(['invalid', 'unprocessable'].includes(String(dead.get(poison)?.dlq_code)))
      assert.ok(String(dead.get(poison)?.dlq_reason).length > 0)
      assert.equal(dead.get(plain)?.dlq_code, 'unsupported-media-type')
      assert.match(String(dead.get(plain)?.dlq_reason), /text\/plain/)
      assert.equal(dead.get(latin1)?.dlq_code, 'unsupported-media-type')
      assert.match(String(dead.get(latin1)?.dlq_reason), /charset "latin1"/)
      for (const refused of [poison, plain, latin1]) assert.deepEqual(await proposalStream(refused), [])
      assert.equal(runtime.kafka?.ingress.failure, null, 'the ingress kept consuming')
      assert.equal(runtime.kafka?.ingress.stats().restarts, restartsBefore, 'no consumer crashed')
      console.log(
        `kafka poison: 1e400 -> ${dead.get(poison)?.dlq_code} (${dead.get(poison)?.dlq_reason}); ` +
          `text/plain -> ${dead.get(plain)?.dlq_code}; latin1 -> ${dead.get(latin1)?.dlq_code}; the next message taken`,
      )
    } finally {
      await dlq.stop()
    }
  })

  test('structured-mode CloudEvents: a proposal in data is taken; each malformed event is refused with its reason', async () => {
    const dlq = await collect(kafkaClient(brokers), [topics.proposalsDlq])
    try {
      const key = `structured-${randomUUID()}`
      const headers = {
        'content-type': 'application/cloudevents+json; charset=utf-8',
        authorization: `Bearer ${agentToken}`,
      }
      const event = (id: string, data: unknown, extra: Record<string, unknown> = {}) =>
        JSON.stringify({
          specversion: '1.0',
          id,
          source: 'urn:test-agent',
          type: PROPOSAL_CE_TYPE,
          datacontenttype: 'application/json',
          data,
          ...extra,
        })
      const good = `p-${randomUUID()}`
      const cases: Array<[string, string, string]> = [
        [`ce-${randomUUID()}`, 'unsupported-media-type', event('', undefined, { data_base64: 'e30=' })],
        [
          `ce-${randomUUID()}`,
          'unexpected-type',
          event('', proposalBody(`p-${randomUUID()}`), { type: 'x' }),
        ],
        [
          `ce-${randomUUID()}`,
          'not-a-cloudevent',
          event('', proposalBody(`p-${randomUUID()}`), { specversion: '0.3' }),
        ],
        [`ce-${randomUUID()}`, 'invalid', event('', undefined)],
        [
          `ce-${randomUUID()}`,
          'unsupported-media-type',
          event('', proposalBody(`p-${randomUUID()}`), { datacontenttype: 'text/xml' }),
        ],
        [`ce-${randomUUID()}`, 'invalid', event('', { ...proposalBody(`p-${randomUUID()}`), tool: 7 })],
        [`ce-${randomUUID()}`, 'not-a-cloudevent', '[1, 2]'],
      ]
      const ceId = `ce-${randomUUID()}`
      await producer.send({
        topic: topics.proposals,
        messages: [
          ...cases.map(([id, , value]) => ({
            key,
            value: value.replace('"id":""', `"id":${JSON.stringify(id)}`),
            headers: { ...headers, ce_id: id },
          })),
          { key, value: event(ceId, proposalBody(good)), headers },
        ],
      })
      await taken(good)
      const [submitted] = await proposalStream(good)
      assert.equal(submitted?.metadata.actor, 'agent-k')
      assert.equal(submitted?.metadata.correlationId, ceId, 'the event id correlates')
      const dead = byId(await deadLettered(dlq, key, cases.length))
      for (const [id, code] of cases)
        assert.equal(dead.get(id)?.dlq_code, code, `${id}: ${dead.get(id)?.dlq_reason}`)
      console.log(
        `kafka structured mode: 1 taken; refused: ${cases.map(([id]) => `${dead.get(id)?.dlq_code} (${dead.get(id)?.dlq_reason})`).join('; ')}`,
      )
    } finally {
      await dlq.stop()
    }
  })

  test('a DLQ entry keeps only the CloudEvent headers and the content type: the token and unknown headers are named, never copied', async () => {
    const dlq = await collect(kafkaClient(brokers), [topics.proposalsDlq])
    try {
      const key = `redact-${randomUUID()}`
      const secrets = ['s3cr3t-cookie', 's3cr3t-api-key', 's3cr3t-proxy']
      await producer.send({
        topic: topics.proposals,
        messages: [
          {
            key,
            value: '{"not": "a proposal"',
            headers: {
              ...cloudEvent(agentToken),
              ce_subject: 'subject-1',
              ce_dataschema: '',
              cookie: `session=${secrets[0]}`,
              'X-Api-Key': String(secrets[1]),
              'proxy-authorization': `Basic ${secrets[2]}`,
            },
          },
        ],
      })
      const [entry] = await deadLettered(dlq, key, 1)
      assert.ok(entry)
      const names = Object.keys(entry.headers)
      for (const name of names)
        assert.ok(DLQ_HEADERS.has(name) || name.startsWith('dlq_'), `header ${name} is not copied`)
      const values = Object.values(entry.headers).join('\n')
      for (const secret of [agentToken, ...secrets]) assert.ok(!values.includes(secret), 'no secret copied')
      assert.equal(entry.headers.ce_subject, 'subject-1', 'the CloudEvent headers are kept')
      assert.equal('ce_dataschema' in entry.headers, false, 'an empty one is left out')
      for (const [name, value] of Object.entries(entry.headers))
        assert.notEqual(value, '', `${name} is empty`)
      assert.deepEqual(String(entry.headers.dlq_redacted).split(',').sort(), [
        'X-Api-Key',
        'authorization',
        'cookie',
        'proxy-authorization',
      ])
      console.log(`kafka DLQ headers: kept ${names.sort().join(', ')}`)
    } finally {
      await dlq.stop()
    }
  })

  test("a proposal id is its principal's key, bound to the proposal: a retry appends nothing, a reuse and another agent's id go to the DLQ", async () => {
    const dlq = await collect(kafkaClient(brokers), [topics.proposalsDlq])
    try {
      const key = `scoped-${randomUUID()}`
      const proposalId = `p-${randomUUID()}`
      const otherToken = await issueToken(
        runtime.tokenKey as NonNullable<Runtime['tokenKey']>,
        kafkaTokenConfig(runtime.config),
        { sub: 'agent-x', roles: ['agent'] },
      )
      const ids = { first: randomUUID(), retry: randomUUID(), reuse: randomUUID(), other: randomUUID() }
      const accepted = runtime.kafka?.ingress.stats().accepted ?? 0
      await producer.send({
        topic: topics.proposals,
        messages: [
          {
            key,
            value: JSON.stringify(proposalBody(proposalId)),
            headers: cloudEvent(agentToken, ids.first),
          },
          {
            key,
            value: JSON.stringify(proposalBody(proposalId)),
            headers: cloudEvent(agentToken, ids.retry),
          },
          {
            key,
            value: JSON.stringify({ ...proposalBody(proposalId), plan: { replicas: 30 } }),
            headers: cloudEvent(agentToken, ids.reuse),
          },
          {
            key,
            value: JSON.stringify(proposalBody(proposalId, 'agent-x')),
            headers: cloudEvent(otherToken, ids.other),
          },
        ],
      })
      const dead = byId(await deadLettered(dlq, key, 2))
      assert.equal(dead.get(ids.reuse)?.dlq_code, 'idempotency-key-reused')
      assert.equal(dead.get(ids.other)?.dlq_code, 'conflict', String(dead.get(ids.other)?.dlq_reason))
      assert.equal(dead.size, 2, 'the retry is not refused')
      await eventually(
        () => (runtime.kafka?.ingress.stats().accepted ?? 0) >= accepted + 2,
        20_000,
        'the first and the retry taken',
      )
      const submitted = (await proposalStream(proposalId)).filter((e) => e.type === 'ProposalSubmitted')
      assert.equal(submitted.length, 1)
      assert.equal(submitted[0]?.metadata.actor, 'agent-k')
      assert.deepEqual((submitted[0]?.data as { plan?: unknown } | undefined)?.plan, { replicas: 3 })
      console.log(
        `kafka idempotency: first taken, retry taken (nothing appended), reuse -> ${dead.get(ids.reuse)?.dlq_code}, ` +
          `another agent -> ${dead.get(ids.other)?.dlq_code} (${dead.get(ids.other)?.dlq_reason})`,
      )
    } finally {
      await dlq.stop()
    }
  })

  test('tokens have an audience per channel: an HTTP token is refused on Kafka, a Kafka token on HTTP', async () => {
    const dlq = await collect(kafkaClient(brokers), [topics.proposalsDlq])
    const app = await buildApp(runtime, { logger: false })
    try {
      const httpToken = await issueToken(
        runtime.tokenKey as NonNullable<Runtime['tokenKey']>,
        runtime.config,
        {
          sub: 'agent-k',
          roles: ['agent'],
        },
      )
      const key = `audience-${randomUUID()}`
      const proposalId = `p-${randomUUID()}`
      await producer.send({
        topic: topics.proposals,
        messages: [{ key, value: JSON.stringify(proposalBody(proposalId)), headers: cloudEvent(httpToken) }],
      })
      const [entry] = await deadLettered(dlq, key, 1)
      assert.equal(entry?.headers.dlq_code, 'unauthenticated')
      assert.deepEqual(await proposalStream(proposalId), [])
      const post = (token: string, id: string) =>
        app.inject({
          method: 'POST',
          url: '/v1/proposals',
          headers: { authorization: `Bearer ${token}` },
          payload: proposalBody(id),
        })
      const onHttp = await post(agentToken, `p-${randomUUID()}`)
      assert.equal(onHttp.statusCode, 401, onHttp.body)
      const control = await post(httpToken, `p-${randomUUID()}`)
      assert.equal(control.statusCode, 201, control.body)
      console.log(
        `kafka tokens: HTTP token on Kafka -> ${entry?.headers.dlq_code} (${entry?.headers.dlq_reason}); Kafka token on HTTP -> ${onHttp.statusCode}`,
      )
    } finally {
      await app.close()
      await dlq.stop()
    }
  })

  test('a consumer that crashes is started again with backoff; /ready answers 503 with the reason meanwhile; no message is lost', async () => {
    const kafka = kafkaClient(brokers)
    const ownTopics = await freshTopics(kafka)
    const groupId = `ingress-${randomUUID()}`
    let broken = true
    let made = 0
    // a real kafkajs consumer whose message handler dies (a TypeError: kafkajs gives up on it) while `broken`
    const consumer = () => {
      made += 1
      const c = kafka.consumer({ groupId })
      const run = c.run.bind(c)
      c.run = (config) =>
        run({
          ...config,
          eachMessage: async (payload) => {
            if (broken) throw new TypeError('injected fault: the handler dies')
            await config?.eachMessage?.(payload)
          },
        })
      return c
    }
    const verifier = createTokenVerifier(
      kafkaTokenConfig(runtime.config),
      verifierKeys(runtime.config, runtime.tokenKey),
    )
    const ingress = new Ingress(
      consumer,
      producer,
      ownTopics,
      new Intake(runtime.store, verifier, runtime.config.KAFKA_MAX_MESSAGE_BYTES),
      pino({ level: 'silent' }),
    )
    const bridge = runtime.kafka
    assert.ok(bridge)
    const app = await buildApp({ ...runtime, kafka: { ...bridge, ingress } }, { logger: false })
    try {
      await ingress.start()
      const proposalId = `p-${randomUUID()}`
      await producer.send({
        topic: ownTopics.proposals,
        messages: [
          {
            key: proposalId,
            value: JSON.stringify(proposalBody(proposalId)),
            headers: cloudEvent(agentToken),
          },
        ],
      })
      await eventually(() => ingress.failure !== null, 30_000, 'the crash reported')
      const failure = String(ingress.failure)
      assert.match(failure, /crashed|start again/)
      let ready = await app.inject({ method: 'GET', url: '/ready' })
      await eventually(
        async () => {
          ready = await app.inject({ method: 'GET', url: '/ready' })
          return ready.statusCode === 503
        },
        30_000,
        '/ready answers 503',
      )
      assert.match(ready.json().reason, /Kafka ingress is not consuming/)
      assert.equal(typeof ready.json().kafka.ingress.failure, 'string')
      assert.deepEqual(await proposalStream(proposalId), [], 'nothing taken while the consumer is down')
      await eventually(() => made >= 3, 30_000, 'started again more than once while the fault lasts')
      broken = false
      await taken(proposalId)
      await eventually(() => ingress.failure === null, 30_000, 'the failure cleared')
      const healthy = await app.inject({ method: 'GET', url: '/ready' })
      assert.equal(healthy.statusCode, 200, healthy.body)
      assert.ok(ingress.stats().restarts >= 2)
      assert.equal(
        (await proposalStream(proposalId)).filter((e) => e.type === 'ProposalSubmitted').length,
        1,
        'the message was taken once, after the restarts',
      )
      console.log(
        `kafka crash: ${made} consumers made, ${ingress.stats().restarts} restarts; while down: ${ready.statusCode} "${ready.json().reason}"; the message taken once afterwards`,
      )
    } finally {
      await ingress.stop()
      await app.close()
    }
  })

  test('while the ledger does not answer, a message waits (backoff, /ready says why) and is taken afterwards, never dead-lettered', async () => {
    const kafka = kafkaClient(brokers)
    const ownTopics = await freshTopics(kafka)
    const dlq = await collect(kafka, [ownTopics.proposalsDlq])
    let down = true
    let refusedCalls = 0
    // the ledger as a database that refuses connections while `down`
    const ledger = new Proxy(runtime.store, {
      get(target, property, receiver) {
        const member: unknown = Reflect.get(target, property, receiver)
        if (typeof member !== 'function') return member
        return (...args: unknown[]) => {
          if (down) {
            refusedCalls += 1
            return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
          }
          return member.apply(target, args)
        }
      },
    })
    const ingress = new Ingress(
      () => kafka.consumer({ groupId: `ingress-${randomUUID()}` }),
      producer,
      ownTopics,
      new Intake(
        ledger,
        createTokenVerifier(kafkaTokenConfig(runtime.config), verifierKeys(runtime.config, runtime.tokenKey)),
        runtime.config.KAFKA_MAX_MESSAGE_BYTES,
      ),
      pino({ level: 'silent' }),
    )
    const bridge = runtime.kafka
    assert.ok(bridge)
    const app = await buildApp({ ...runtime, kafka: { ...bridge, ingress } }, { logger: false })
    try {
      await ingress.start()
      const proposalId = `p-${randomUUID()}`
      await producer.send({
        topic: ownTopics.proposals,
        messages: [
          {
            key: proposalId,
            value: JSON.stringify(proposalBody(proposalId)),
            headers: cloudEvent(agentToken),
          },
        ],
      })
      await eventually(() => refusedCalls >= 3, 30_000, 'the message tried again')
      assert.match(String(ingress.failure), /the ledger does not answer.*a message waits/)
      const ready = await app.inject({ method: 'GET', url: '/ready' })
      assert.equal(ready.statusCode, 503)
      assert.match(ready.json().reason, /Kafka ingress is not consuming: the ledger does not answer/)
      down = false
      await taken(proposalId)
      await eventually(() => ingress.failure === null, 10_000, 'the failure cleared')
      await sleep(1000) // a DLQ entry, if one were written, would have arrived
      assert.equal(dlq.messages.length, 0, 'nothing dead-lettered for the ledger outage')
      assert.equal(ingress.stats().accepted, 1)
      console.log(
        `kafka ledger outage: ${refusedCalls} ledger calls refused while down, the message taken afterwards, 0 in the DLQ; /ready meanwhile: "${ready.json().reason}"`,
      )
    } finally {
      await ingress.stop()
      await app.close()
      await dlq.stop()
    }
  })

  test('a signed checkpoint reaches governance.checkpoints, a CloudEvent the SDK reads, keyed by the log', async () => {
    const cut = await runtime.checkpoints.tick(Date.now(), true)
    const latest = runtime.checkpoints.latest()
    assert.ok(latest, 'a checkpoint of the ledger so far')
    assert.ok(cut === null || cut.note === latest.note)
    const published = await collect(kafkaClient(brokers), [topics.checkpoints])
    try {
      await eventually(
        () => published.messages.some((m) => m.value === latest.note),
        20_000,
        'the newest checkpoint on the topic',
      )
      const message = published.messages.find((m) => m.value === latest.note)
      assert.equal(message?.key, runtime.checkpoints.origin)
      const received: KafkaMessage<string> = {
        key: message?.key ?? '',
        value: message?.value ?? '',
        headers: message?.headers ?? {},
        body: message?.value,
      }
      const event = Kafka.toEvent<string>(received)
      assert.ok(event instanceof CloudEvent)
      assert.equal(event.type, 'governance.ledger.checkpoint')
      assert.equal(event.data, latest.note)
      assert.equal(event.id, `${runtime.checkpoints.origin}/${latest.size}`)
      assert.equal(event.treesize, String(latest.size))
      assert.equal(event.validate(), true)
    } finally {
      await published.stop()
    }
  })

  test('fuzzed messages through the broker: each taken or in the DLQ with a reason, the consumer never stopped', async () => {
    const dlq = await collect(kafkaClient(brokers), [topics.proposalsDlq])
    try {
      const key = runtime.tokenKey as NonNullable<Runtime['tokenKey']>
      const kafkaConfig = kafkaTokenConfig(runtime.config)
      const tokens = {
        agents: {
          'agent-k': agentToken,
          'agent-x': await issueToken(key, kafkaConfig, { sub: 'agent-x', roles: ['agent'] }),
        },
        http: await issueToken(key, runtime.config, { sub: 'agent-k', roles: ['agent'] }),
        observer: await issueToken(key, kafkaConfig, { sub: 'observer-1', roles: ['observer'] }),
      }
      const samples = fc.sample(proposalMessages(tokens, { maxDepth: 64, identity: 'svc-agent-k' }), {
        numRuns: 200,
        seed: 11,
      })
      const before = runtime.kafka?.ingress.stats()
      assert.ok(before)
      const keys = samples.map((_, i) => `fuzz-${i}-${randomUUID()}`)
      await producer.send({
        topic: topics.proposals,
        messages: samples.map((m, i) => ({ key: keys[i] ?? '', value: m.value, headers: m.headers })),
      })
      await eventually(
        () => {
          const now = runtime.kafka?.ingress.stats()
          return (
            (now?.accepted ?? 0) + (now?.rejected ?? 0) >= before.accepted + before.rejected + samples.length
          )
        },
        60_000,
        'every fuzzed message answered',
      )
      const after = runtime.kafka?.ingress.stats()
      assert.ok(after)
      const rejected = after.rejected - before.rejected
      await eventually(
        () => dlq.messages.filter((m) => m.key?.startsWith('fuzz-')).length >= rejected,
        30_000,
        'every refusal in the DLQ',
      )
      const dead = dlq.messages.filter((m) => keys.includes(String(m.key)))
      assert.equal(dead.length, rejected, 'each refusal in the DLQ once')
      for (const m of dead) assert.ok(m.headers.dlq_code && m.headers.dlq_reason)
      assert.ok(after.accepted > before.accepted && rejected > 0, 'the cases reach both sides')
      assert.equal(after.restarts, before.restarts, 'no consumer crashed')
      assert.equal(runtime.kafka?.ingress.failure, null)
      console.log(
        `kafka fuzz through the broker: ${samples.length} messages, ${after.accepted - before.accepted} taken, ${rejected} in the DLQ, 0 consumers stopped`,
      )
    } finally {
      await dlq.stop()
    }
  })
})
