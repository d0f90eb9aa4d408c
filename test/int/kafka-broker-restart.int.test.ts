// Drill: the Kafka broker stopped and started again under load, with the real service running. Proposals keep
// coming over HTTP while it is down and over Kafka before and after; every verdict the ledger holds must reach
// governance.verdicts (counted by event id), and every proposal published on Kafka must reach the ledger.
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { issueToken, loadPrivateKey } from '../../src/auth/tokens.js'
import { loadConfig } from '../../src/config.js'
import { streams } from '../../src/domain/events.js'
import { kafkaTokenConfig } from '../../src/kafka/bridge.js'
import { VERDICT_TYPES } from '../../src/kafka/cloudevents.js'
import { KafkaProposalPublisher } from '../../src/sdk/kafka.js'
import type { StoredEvent } from '../../src/store/port.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import {
  collect,
  eventually,
  kafkaBrokers,
  kafkaClient,
  privateBroker,
  producerFor,
} from '../support/kafka.js'
import { setUpWorld, startService } from '../support/service.js'

const target = await kafkaBrokers()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('the broker stopped and started again under load: 0 verdicts lost, counted by event id; every Kafka proposal taken', {
  skip: 'skip' in target ? target.skip : false,
  timeout: 180_000,
}, async () => {
  const broker = await privateBroker()
  const svc = await startService({ KAFKA_BROKERS: broker.brokers, LOG_LEVEL: 'warn' })
  const producer = await producerFor(kafkaClient(broker.brokers, 'drill-agent'))
  try {
    const cast = await setUpWorld(svc)
    const config = loadConfig(svc.env)
    const key = loadPrivateKey(join(svc.dataDir, 'keys', 'token-signing.pem'))
    const kafkaToken = await issueToken(key, kafkaTokenConfig(config), {
      sub: 'agent-e2e',
      roles: ['agent'],
      expiresIn: '10m',
    })
    const publisher = new KafkaProposalPublisher(producer, () => kafkaToken)
    const proposal = (resource: string) => ({
      agentId: 'agent-e2e',
      executingIdentity: cast.identity,
      tool: cast.tool,
      action: 'scale',
      resource,
      environment: cast.environment,
      plan: { replicas: 3 },
      expectedImpact: 'high' as const,
      snapshot: { version: 'v1' },
      description: '',
    })

    // HTTP load for the whole drill: each proposal gets a verdict from the decision service
    let loading = true
    let overHttp = 0
    const load = Promise.all(
      [1, 2].map(async (worker) => {
        while (loading) {
          await cast.agent.submitProposal(proposal(`deployment/http-${worker}-${overHttp}`))
          overHttp += 1
        }
      }),
    )
    const published: string[] = []
    const publish = async (n: number, label: string) => {
      for (let i = 0; i < n; i += 1)
        published.push((await publisher.publish(proposal(`deployment/kafka-${label}-${i}`))).proposalId)
    }

    await publish(20, 'before')
    await sleep(2000)
    const stoppedAt = Date.now()
    const httpBeforeStop = overHttp
    await broker.stop()
    // while it is down: the ledger keeps taking proposals over HTTP; /ready says why it is not ready
    const reasons = new Set<string>()
    while (Date.now() - stoppedAt < 6000) {
      const ready = await fetch(`${svc.url}/ready`, { signal: AbortSignal.timeout(3000) }).catch(() => null)
      if (ready && ready.status !== 200)
        reasons.add(String(((await ready.json()) as { reason?: string }).reason))
      await sleep(500)
    }
    const httpWhileDown = overHttp - httpBeforeStop
    await broker.startAgain()
    const restartedAt = Date.now()
    // what /ready says from the broker's return until the service is ready again
    const timeline: string[] = []
    let watching = true
    const watch = (async () => {
      let last = ''
      while (watching) {
        const r = await fetch(`${svc.url}/ready`, { signal: AbortSignal.timeout(3000) }).catch(() => null)
        const now =
          r === null
            ? 'no answer'
            : r.status === 200
              ? 'ready'
              : String(((await r.json()) as { reason?: string }).reason)
        if (now !== last) timeline.push(`+${((Date.now() - restartedAt) / 1000).toFixed(1)} s ${now}`)
        last = now
        await sleep(250)
      }
    })()
    await publish(20, 'after')
    await sleep(3000)
    loading = false
    await load

    // the relay catches up; every proposal published on Kafka reaches the ledger
    const ready = async () => {
      const r = await fetch(`${svc.url}/ready`, { signal: AbortSignal.timeout(5000) }).catch(() => null)
      return r?.status === 200
        ? ((await r.json()) as { ledger: { position: number }; kafka: { relayPosition: number } })
        : null
    }
    const taken = async (id: string) => (await cast.agent.getProposal(id).catch(() => null)) !== null
    try {
      await eventually(
        async () => (await Promise.all(published.map(taken))).every(Boolean),
        60_000,
        'every proposal published on Kafka taken',
      )
    } catch (error) {
      const missing = await Promise.all(published.map(async (id) => ((await taken(id)) ? '' : id)))
      console.log(`not taken: ${missing.join(' ')}\n${svc.output().slice(-6000)}`)
      throw error
    }
    await eventually(
      async () => {
        const r = await ready()
        return r !== null && r.kafka.relayPosition === r.ledger.position
      },
      60_000,
      'the relay at the head and the service ready again',
    )
    const recoveredMs = Date.now() - restartedAt
    watching = false
    await watch
    await svc.stop()

    const store = openSqliteEventStore({ path: join(svc.dataDir, 'ledger.db') })
    const events: StoredEvent[] = []
    try {
      for (let after = 0; ; ) {
        const batch = await store.readAll(after, 1000)
        if (batch.length === 0) break
        events.push(...batch)
        after = batch.at(-1)?.position ?? after
      }
      for (const id of published)
        assert.equal((await store.readStream(streams.proposal(id))).length > 0, true, `${id} taken`)
    } finally {
      await store.close()
    }
    const verdicts = events.filter((e) => VERDICT_TYPES.has(e.type))
    const collector = await collect(kafkaClient(broker.brokers), ['governance.verdicts'])
    try {
      await eventually(
        () => new Set(collector.messages.map((m) => m.headers.ce_id)).size >= verdicts.length,
        30_000,
        `all ${verdicts.length} verdicts on governance.verdicts`,
      )
    } finally {
      await collector.stop()
    }
    const received = collector.messages.map((m) => String(m.headers.ce_id))
    const distinct = new Set(received)
    const lost = verdicts.filter((v) => !distinct.has(v.id))
    const invented = [...distinct].filter((id) => !verdicts.some((v) => v.id === id))
    assert.equal(lost.length, 0, 'no verdict lost')
    assert.equal(invented.length, 0, 'no verdict invented')
    assert.ok(httpWhileDown > 0, 'the ledger took proposals while the broker was down')
    console.log(
      `broker restart drill: ${verdicts.length} verdicts in the ledger, ${distinct.size} distinct on governance.verdicts ` +
        `(${received.length - distinct.size} duplicates), ${lost.length} lost; ${overHttp} HTTP proposals ` +
        `(${httpWhileDown} while the broker was down), ${published.length} Kafka proposals all taken; ` +
        `ready and relayed ${Math.round(recoveredMs / 1000)} s after the broker returned; ` +
        `/ready while down: ${[...reasons].join(' | ') || 'no answer'}; after: ${timeline.join('; ')}`,
    )
  } finally {
    await producer.disconnect().catch(() => undefined)
    await svc.close().catch(() => undefined)
    await broker.dispose()
  }
})
