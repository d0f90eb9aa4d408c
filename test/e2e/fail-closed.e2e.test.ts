// The derived-state drill, against the real service: derived.db locked by another process, then deleted,
// then corrupted while serving. Each time the gate closes (no verdict served, no execution started), /ready
// says why, and the service either recovers or stops non-zero; it never answers an allow from stale state.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { closeSync, copyFileSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { GovernanceApiError } from '../../src/sdk/index.js'
import {
  eventually,
  observation,
  proposeWithEvidence,
  type RunningService,
  setUpWorld,
  startService,
} from '../support/service.js'

const ROOT = join(import.meta.dirname, '..', '..')

interface Ready {
  readonly status: number
  readonly body: { ready: boolean; faults: { part: string; reason: string }[]; reason?: string }
}

const readyOf = async (svc: RunningService): Promise<Ready> => {
  const response = await fetch(`${svc.url}/ready`)
  return { status: response.status, body: (await response.json()) as Ready['body'] }
}

type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly status: number; readonly message: string }

/** What a call answered: its value, the API error it was refused with, or status 0 when the service was gone. */
const outcome = <T>(call: Promise<T>): Promise<Outcome<T>> =>
  call.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => {
      if (error instanceof GovernanceApiError)
        return { ok: false as const, status: error.status, message: error.message }
      if (error instanceof TypeError && error.message === 'fetch failed')
        return { ok: false as const, status: 0, message: 'the service is gone' }
      throw error
    },
  )

/** Another process takes SQLite's write lock on a file and holds it for `ms`. */
const holdWriteLock = async (path: string, ms: number): Promise<{ released: Promise<void> }> => {
  const script = `const db = new (require('better-sqlite3'))(process.argv[1]); db.exec('BEGIN EXCLUSIVE');
process.stdout.write('locked\\n'); setTimeout(() => { db.exec('COMMIT'); db.close() }, Number(process.argv[2]))`
  const child = spawn(process.execPath, ['-e', script, path, String(ms)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => chunk.includes('locked') && resolve())
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${code} before locking`)))
  })
  return { released: new Promise((resolve) => child.once('exit', () => resolve())) }
}

describe('derived.db fails under the service: the gate closes, /ready says why, never a stale allow', () => {
  const services: RunningService[] = []
  after(async () => {
    await Promise.allSettled(services.map((s) => s.close()))
  })

  /** A service with one allowed proposal, as an executor would hold it. */
  const withAllow = async (env: Record<string, string> = {}) => {
    const svc = await startService(env)
    services.push(svc)
    const cast = await setUpWorld(svc)
    const allowed = await proposeWithEvidence(cast, 'deployment/web', { replicas: 3 })
    assert.equal(allowed.verdict.decision, 'allow')
    return { svc, cast, allowed }
  }

  /**
   * While the gate is closed: no verdict read, no verified run, no start; and /ready says why. A service that
   * stops at once (`stopping`) may be gone before a request reaches it: that is no allow either, and the
   * reason is then in its log.
   */
  const assertGateClosed = async (
    svc: RunningService,
    { cast, allowed }: Awaited<ReturnType<typeof withAllow>>,
    why: RegExp,
    stopping = false,
  ) => {
    let ran = false
    const refusal = stopping ? [503, 0] : [503]
    const [ready, read, run, start] = await Promise.all([
      outcome(
        eventually('/ready to say 503', async () => {
          const r = await readyOf(svc)
          return r.status === 503 ? r : undefined
        }),
      ),
      outcome(cast.agent.currentVerdict(allowed.proposalId)),
      outcome(
        cast.executor.runVerified(allowed.verdict, allowed.action, async () => {
          ran = true
        }),
      ),
      outcome(
        cast.executor.reportStart(allowed.proposalId, {
          verdictId: allowed.verdict.verdictId,
          actionDigest: allowed.actionDigest,
        }),
      ),
    ])
    if (ready.ok) {
      assert.equal(ready.value.body.ready, false)
      assert.match(ready.value.body.reason ?? '', why)
      assert.ok(ready.value.body.faults.length > 0)
    } else {
      assert.ok(stopping, `/ready did not answer: ${ready.message}`)
      assert.match(svc.output(), why)
    }
    assert.ok(!read.ok && refusal.includes(read.status), 'no verdict is served while the gate is closed')
    if (!read.ok && read.status === 503) assert.match(read.message, /gate is closed/)
    assert.equal(ran, false, 'the executor never runs the action while the gate is closed')
    assert.ok(!run.ok && refusal.includes(run.status), 'a verified run is refused while the gate is closed')
    assert.ok(!start.ok && refusal.includes(start.status), 'no execution starts while the gate is closed')
    return ready.ok ? ready.value.body.faults.map((f) => f.part) : ['(gone)']
  }

  /** Nothing was started or refused at the gate on this proposal: a 503 records nothing. */
  const assertNothingStarted = async (svc: RunningService, proposalId: string) => {
    const token = await svc.tokenFor('auditor-1', 'auditor')
    const response = await fetch(`${svc.url}/v1/audit/actions/${proposalId}`, {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(response.status, 200)
    const { timeline } = (await response.json()) as { timeline: { type: string }[] }
    assert.ok(timeline.some((e) => e.type === 'VerdictIssued'))
    assert.deepEqual(
      timeline.filter((e) => e.type.startsWith('Execution')).map((e) => e.type),
      ['ExecutionRefused'],
      'the only gate event is the refusal of the revoked allow after recovery: every 503 recorded nothing',
    )
  }

  it('locked by another process for 8 s: the gate closes at once and reopens on its own; the kill switch engaged meanwhile holds', async () => {
    const world = await withAllow()
    const { svc, cast, allowed } = world
    const derived = join(svc.dataDir, 'derived.db')
    const lock = await holdWriteLock(derived, 8_000)
    const lockedAt = Date.now()
    // the ledger is not derived.db: the switch is accepted and recorded, and must not be bypassed
    await cast.admin.engageKillSwitch({
      scope: 'global',
      target: null,
      reason: 'drill: derived state locked',
    })
    const closed = await assertGateClosed(svc, world, /stopped: database is locked/)
    const closedAfter = Date.now() - lockedAt
    await lock.released
    const reopened = await eventually(
      'the service to recover once the lock is released',
      async () => ((await readyOf(svc)).status === 200 ? Date.now() : undefined),
      30_000,
    )
    const verdict = await eventually('the verdict after the switch', async () => {
      const v = await cast.agent.currentVerdict(allowed.proposalId)
      return v?.revoked || v?.decision === 'block' ? v : undefined
    })
    assert.notEqual(verdict.decision === 'allow' && !verdict.revoked, true, 'the switch is enforced')
    const start = await outcome(
      cast.executor.reportStart(allowed.proposalId, {
        verdictId: allowed.verdict.verdictId,
        actionDigest: allowed.actionDigest,
      }),
    )
    assert.equal(
      start.ok ? 'started' : start.status,
      409,
      'after recovery the gate refuses the revoked allow',
    )
    await assertNothingStarted(svc, allowed.proposalId)
    console.log(
      `derived.db locked 8 s: gate closed ${closedAfter} ms after the lock (faults: ${closed.join(', ')}), reopened ${reopened - lockedAt - 8_000} ms after its release`,
    )
  })

  it('locked for longer than RECOVERY_MAX_SECONDS: the service stops non-zero, and a restart serves the switch', async () => {
    const world = await withAllow({ RECOVERY_MAX_SECONDS: '2' })
    const { svc, cast, allowed } = world
    const lock = await holdWriteLock(join(svc.dataDir, 'derived.db'), 6_000)
    const lockedAt = Date.now()
    await cast.admin.engageKillSwitch({ scope: 'global', target: null, reason: 'drill: locked for good' })
    await assertGateClosed(svc, world, /stopped: database is locked/, true)
    const code = await svc.exited(15_000)
    const stoppedAfter = Date.now() - lockedAt
    assert.equal(code, 1, 'a service that cannot go on exits non-zero for its supervisor')
    assert.match(svc.output(), /the service cannot go on/)
    await lock.released
    await svc.restart()
    const verdict = await cast.agent.currentVerdict(allowed.proposalId)
    assert.ok(verdict?.revoked || verdict?.decision === 'block', 'the restarted service judged the switch')
    console.log(`derived.db locked 6 s with RECOVERY_MAX_SECONDS=2: exited ${code} after ${stoppedAfter} ms`)
  })

  it('deleted while serving: the gate closes, the service stops non-zero, and a restart rebuilds it', async () => {
    const world = await withAllow()
    const { svc, cast, allowed } = world
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(join(svc.dataDir, `derived.db${suffix}`), { force: true })
    const deletedAt = Date.now()
    await assertGateClosed(svc, world, /derived\.db was deleted while serving/, true)
    assert.equal(await svc.exited(10_000), 1)
    const stoppedAfter = Date.now() - deletedAt
    await svc.restart()
    const verdict = await cast.agent.currentVerdict(allowed.proposalId)
    assert.equal(verdict?.verdictId, allowed.verdict.verdictId, 'rebuilt from the ledger, the same verdict')
    console.log(
      `derived.db deleted: exited 1 after ${stoppedAfter} ms; restarted and rebuilt from the ledger`,
    )
  })

  it('corrupted while serving: the gate closes and the service stops non-zero; a corrupted file found at start is set aside and rebuilt', async () => {
    const world = await withAllow()
    const { svc, cast, allowed } = world
    const derived = join(svc.dataDir, 'derived.db')
    const corrupt = () => {
      const fd = openSync(derived, 'r+')
      writeSync(fd, Buffer.alloc(100, 0x5a), 0, 100, 0)
      closeSync(fd)
    }
    corrupt()
    const corruptedAt = Date.now()
    await assertGateClosed(svc, world, /derived\.db is corrupted/, true)
    assert.equal(await svc.exited(10_000), 1)
    const stoppedAfter = Date.now() - corruptedAt
    await svc.restart()
    const verdict = await cast.agent.currentVerdict(allowed.proposalId)
    assert.equal(verdict?.verdictId, allowed.verdict.verdictId, 'after the restart, the same verdict')
    // found corrupted at start (the stopping service's own checkpoint may have rewritten the first page)
    await svc.stop()
    corrupt()
    await svc.restart()
    assert.match(svc.output(), /derived\.db was not a SQLite database: set aside/)
    assert.equal(readdirSync(svc.dataDir).filter((f) => f.startsWith('derived.db.corrupt-')).length, 1)
    const rebuilt = await cast.agent.currentVerdict(allowed.proposalId)
    assert.equal(rebuilt?.verdictId, allowed.verdict.verdictId, 'rebuilt from the ledger, the same verdict')
    console.log(`derived.db corrupted: exited 1 after ${stoppedAfter} ms; at start, set aside and rebuilt`)
  })

  it('ledger.db deleted while serving: the gate closes and the service stops non-zero, acknowledging nothing it cannot keep', async () => {
    const world = await withAllow()
    const { svc } = world
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(join(svc.dataDir, `ledger.db${suffix}`), { force: true })
    await assertGateClosed(svc, world, /ledger\.db was deleted while serving/, true)
    assert.equal(await svc.exited(10_000), 1)
    console.log('ledger.db deleted: gate closed, exited 1')
  })

  it('a ledger restored from an older backup: derived state ahead of it is set aside and rebuilt, never judged against', async () => {
    const svc = await startService()
    services.push(svc)
    const cast = await setUpWorld(svc)
    await svc.stop()
    const ledger = join(svc.dataDir, 'ledger.db')
    copyFileSync(ledger, `${ledger}.backup`)
    await svc.restart()
    const allowed = await proposeWithEvidence(cast, 'deployment/web', { replicas: 3 })
    await svc.stop()
    for (const suffix of ['-wal', '-shm']) rmSync(`${ledger}${suffix}`, { force: true })
    copyFileSync(`${ledger}.backup`, ledger)
    await svc.restart()
    assert.match(svc.output(), /beyond the ledger's head \d+: it was derived from another ledger: set aside/)
    const ready = await readyOf(svc)
    assert.equal(ready.status, 200)
    const body = ready.body as unknown as { ledger: { position: number }; decision: { position: number } }
    assert.equal(body.decision.position, body.ledger.position, "the world is the restored ledger's")
    const read = await outcome(cast.agent.currentVerdict(allowed.proposalId))
    assert.equal(read.ok ? 'served' : read.status, 404, 'a proposal the ledger does not hold has no verdict')
    console.log(`ledger restored to position ${body.ledger.position}: derived state set aside and rebuilt`)
  })

  it('ledger.db locked by another process: a command answers 503 at once, and the service keeps answering', async () => {
    const world = await withAllow()
    const { svc, cast } = world
    const lock = await holdWriteLock(join(svc.dataDir, 'ledger.db'), 3_000)
    const sent = Date.now()
    // one request, not the SDK's retries of a 503
    const observed = await fetch(`${svc.url}/v1/observations`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await svc.tokenFor('observer-1', 'observer')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(observation(cast.environment, 'deployment/locked', 'v-locked')),
    })
    const answeredAfter = Date.now() - sent
    assert.equal(observed.status, 503, 'a command that cannot append says so')
    assert.equal(observed.headers.get('retry-after'), '1')
    const health = await fetch(`${svc.url}/health`)
    const healthAfter = Date.now() - sent
    assert.equal(health.status, 200, 'the service answers while another process holds the lock')
    await lock.released
    await cast.observer.observe(observation(cast.environment, 'deployment/locked', 'v-locked'))
    console.log(
      `ledger.db locked 3 s: the command answered 503 after ${answeredAfter} ms, /health 200 after ${healthAfter} ms`,
    )
  })
})
