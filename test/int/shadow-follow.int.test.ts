import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import { approveChange, govern } from '../../src/application/govern.js'
import { loadConfig } from '../../src/config.js'
import { ShadowDecisions } from '../../src/decision/shadow.js'
import type { Actor } from '../../src/domain/actor.js'
import { PolicyDraft, streams } from '../../src/domain/events.js'
import { startRuntime } from '../../src/runtime.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import type { EventStore } from '../../src/store/port.js'
import { openSqliteEventStore, type SqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { FakeClock } from '../support/history.js'
import { policyData } from '../support/ledger-events.js'

const admin = (sub: string): Actor => ({ sub, roles: ['policy-admin'], approvalRoles: [] })
const { publishedBy: _by, approvedBy: _approved, ...first } = policyData(1, 'platform')
/** more than two of the shadow decisions' batches */
const OBSERVATIONS = 1200

describe('the shadow decisions, stopped while they decide the ledger from its start', () => {
  let dir: string
  let store: SqliteEventStore
  const clock = new FakeClock()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-shadow-follow-'))
    store = openSqliteEventStore({ path: join(dir, 'ledger.db'), clock: clock.now })
    const observedAt = clock.now().toISOString()
    const observed = Array.from({ length: OBSERVATIONS }, (_, i) => ({
      type: 'StateObserved',
      data: {
        environment: 'production',
        resource: 'deployment/web',
        version: `v${i}`,
        digest: 'd',
        observedAt,
      },
      metadata: { actor: 'observer-1' },
    }))
    await store.append(streams.resource('production', 'deployment/web'), observed, 'no-stream')
    const change = { kind: 'publish-shadow-policy', policyVersion: 1 } as const
    const requested = await govern(store, admin('admin-1'), change, PolicyDraft.parse(first))
    assert.equal(requested.status, 'pending')
    if (requested.status === 'pending') await approveChange(store, admin('admin-2'), requested.requestId)
  })

  after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('stop() returns at the next batch, not once the whole ledger is decided', async () => {
    // the ledger as the shadow decisions read it from the start, one read held until the test lets it go
    let letGo = () => {}
    const held = new Promise<void>((resolve) => {
      letGo = resolve
    })
    let reading: () => void = () => {}
    const readingFromStart = new Promise<void>((resolve) => {
      reading = resolve
    })
    const ledger: EventStore = Object.create(store)
    ledger.readAll = async (after, limit, maxBytes) => {
      if (after === 0) {
        reading()
        await held
      }
      return store.readAll(after, limit, maxBytes)
    }
    const shadow = new ShadowDecisions(ledger, new MemoryDocStore())
    shadow.start()
    // asleep it moves past the observations; the shadow policy wakes it to decide the ledger from its start
    await readingFromStart
    const stopped = shadow.stop()
    letGo()
    await stopped
    const head = (await store.head()).position
    assert.ok(shadow.position < head, `stopped at ${shadow.position} of ${head}`)
    // and started again, it goes on from where it stopped
    assert.equal(await shadow.catchUp(), head)
    assert.equal(shadow.report()?.version, 1)
  })
})

describe('the shadow decisions failing in a running service', () => {
  test('the failure is logged, and neither the gate nor /ready closes for it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ledger-shadow-fails-'))
    const logged: Array<{ level: number; msg: string }> = []
    const log = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) })
    const follow = Reflect.get(ShadowDecisions.prototype, 'follow')
    Reflect.set(ShadowDecisions.prototype, 'follow', async () => {
      throw new Error('the shadow world cannot be read')
    })
    const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', AUTH_MODE: 'embedded' })
    const runtime = await startRuntime(config, log)
    try {
      const { events } = await runtime.store.append(
        streams.resource('production', 'deployment/web'),
        [
          {
            type: 'StateObserved',
            data: {
              environment: 'production',
              resource: 'deployment/web',
              version: 'v1',
              digest: 'd',
              observedAt: new Date().toISOString(),
            },
            metadata: { actor: 'observer-1' },
          },
        ],
        'no-stream',
      )
      const stopped = () => logged.find((l) => /shadow policy decisions stopped/.test(l.msg))
      for (let waited = 0; !stopped(); waited += 1) {
        if (waited > 500) throw new Error('the shadow decisions never failed')
        await new Promise((r) => setTimeout(r, 10))
      }
      assert.equal(stopped()?.level, 50, 'logged as an error')
      assert.equal(runtime.health.reason(), null)
      assert.equal(await runtime.gate.closedBecause(), null)
      assert.ok(runtime.decision.position >= (events.at(-1)?.position ?? 1), 'the decisions went on')
      assert.equal(runtime.shadow.position, 0, 'and it did not move on')
    } finally {
      Reflect.set(ShadowDecisions.prototype, 'follow', follow)
      await runtime.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
