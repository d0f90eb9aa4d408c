import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Producer } from 'kafkajs'
import pino from 'pino'
import { approveChange, govern } from '../../src/application/govern.js'
import { handle } from '../../src/application/handle.js'
import { approvePromotion, requestPromotion } from '../../src/application/promotions.js'
import { agentLevel } from '../../src/application/queries.js'
import { issueToken } from '../../src/auth/tokens.js'
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
import { type Runtime, startRuntime } from '../../src/runtime.js'
import { ExecutorClient } from '../../src/sdk/executor.js'
import { KafkaVerdictSubscriber } from '../../src/sdk/kafka.js'
import {
  collect,
  eventually,
  kafkaBrokers,
  kafkaClient,
  producerFor,
  uniquePrefix,
} from '../support/kafka.js'

const target = kafkaBrokers()

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

const cloudEvent = (token: string | null, id = randomUUID()) => ({
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
})
