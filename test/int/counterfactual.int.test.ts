import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { resolveRange } from '../../src/application/as-of.js'
import { main } from '../../src/cli/main.js'
import { counterfactualReplay, publishedPolicy } from '../../src/decision/counterfactual.js'
import { everyEvent } from '../../src/decision/replay.js'
import { DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner, generateSigningKey } from '../../src/decision/signer.js'
import type { DataOf, PolicyDraft } from '../../src/domain/events.js'
import type { DocStore } from '../../src/store/docs.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore, type SqliteEventStore } from '../../src/store/sqlite/event-store.js'
import {
  type AllowedProposal,
  allowedProposal,
  expectError,
  type World as SeededWorld,
  seedPolicy,
  seedWorld,
  startTestApi,
  type TestApi,
} from '../support/api.js'
import { FakeClock, History } from '../support/history.js'

const EVENTS = 3000

describe('counterfactual policy replay', () => {
  let dir: string
  let store: SqliteEventStore
  let docs: DocStore
  /** where the history published its second policy: the range starts there */
  let from: number
  let live: PolicyDraft
  const clock = new FakeClock()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-counterfactual-'))
    store = openSqliteEventStore({ path: join(dir, 'ledger.db'), clock: clock.now })
    docs = openSqliteDocStore(join(dir, 'derived.db'))
    const signer = createVerdictSigner(generateSigningKey())
    await new History(store, await DecisionService.answering(store, docs, signer), clock, 20261201).generate(
      EVENTS,
    )
    let found: number | null = null
    for await (const e of everyEvent(store)) {
      if (e.type === 'PolicyPublished' && (e.data as DataOf<'PolicyPublished'>).version === 2)
        found = e.position
    }
    assert.ok(found !== null, 'the history publishes a second policy')
    from = found
    const v2 = await publishedPolicy(store, 2)
    assert.ok(v2)
    live = v2
  })

  after(async () => {
    await store.close()
    docs.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** the last verdict the ledger records for each proposal it decided again at or after `from` */
  const recordedSince = async (position: number) => {
    const last = new Map<string, DataOf<'VerdictIssued'>>()
    const touched = new Set<string>()
    for await (const e of everyEvent(store)) {
      if (e.type !== 'VerdictIssued') continue
      const v = e.data as DataOf<'VerdictIssued'>
      last.set(v.proposalId, v)
      if (e.position >= position) touched.add(v.proposalId)
    }
    return [...touched].map((id) => last.get(id) as DataOf<'VerdictIssued'>)
  }

  test('under the policy in force there is not one flip, release gates and all', async () => {
    // the policy in force gates workflows: the history released some, and blocked proposals on the gate
    let releases = 0
    let gateBlocks = 0
    for await (const e of everyEvent(store)) {
      if (e.type === 'WorkflowReleased') releases += 1
      if (e.type !== 'VerdictIssued') continue
      const { checks } = e.data as DataOf<'VerdictIssued'>
      if (checks.some((c) => c.check === 'releaseGate' && c.status === 'fail')) gateBlocks += 1
    }
    assert.ok(live.releaseGates.length > 0 && releases > 0 && gateBlocks > 0, `${releases}, ${gateBlocks}`)
    const report = await counterfactualReplay(store, live, { from })
    const head = (await store.head()).position
    assert.equal(report.to, head)
    assert.equal(report.events, head)
    assert.deepEqual(report.ignoredPolicyVersions, [2])
    assert.equal(report.compared, (await recordedSince(from)).length)
    assert.ok(report.compared > 20, `only ${report.compared} proposals compared`)
    assert.deepEqual(report.flips, [])
    assert.equal(report.allowToBlock + report.blockToAllow, 0)
  })

  /** main in-process on the data folder, as a user types it */
  const cli = async (...args: string[]) => {
    let stdout = ''
    let stderr = ''
    const code = await main([...args, '--data-dir', dir], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      env: {},
    })
    return { code, stdout, stderr }
  }

  const stricterDraft = (): PolicyDraft => ({
    ...live,
    version: 7,
    requirements: {
      ...live.requirements,
      low: {
        checks: [...live.requirements.low.checks, 'lineage'],
        approvals: { count: 10, roles: ['approver'] },
      },
    },
  })

  test('replay --policy-version and --policy print the flips and their summaries, exit 0', async () => {
    const same = await cli('replay', '--policy-version', '2', '--from', String(from), '--json')
    assert.equal(same.code, 0, same.stderr)
    const sameReport = JSON.parse(same.stdout)
    assert.equal(sameReport.flips.length, 0)
    assert.ok(sameReport.compared > 20)

    const file = join(dir, 'policy-v7.json')
    writeFileSync(file, JSON.stringify(stricterDraft()))
    const stricter = JSON.parse(
      (await cli('replay', '--policy', file, '--from', String(from), '--json')).stdout,
    )
    const direct = await counterfactualReplay(store, stricterDraft(), { from })
    assert.deepEqual(stricter, JSON.parse(JSON.stringify(direct)))
    const text = await cli('replay', '--policy', file, '--from', String(from))
    assert.equal(text.code, 0)
    assert.match(text.stdout, new RegExp(`${direct.allowToBlock} allow to block, 0 block to allow`))
    for (const f of direct.flips)
      assert.match(text.stdout, new RegExp(`${f.proposalId}.*lineage not-required>fail`))
    assert.match(text.stdout, /ALLOW>BLOCK/)

    assert.equal((await cli('replay', '--policy-version', '99')).code, 1)
    writeFileSync(file, JSON.stringify({ version: 7 }))
    const bad = await cli('replay', '--policy', file)
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /not a policy draft/)
    assert.equal((await cli('replay', '--check', '--policy-version', '2')).code, 2)
  })

  test('--from and --to take UTC times, resolved to positions as an as-of time is', async () => {
    const events: Array<{ position: number; recordedAt: string }> = []
    for await (const e of everyEvent(store)) events.push({ position: e.position, recordedAt: e.recordedAt })
    const fromTime = events.find((e) => e.position === from)?.recordedAt ?? ''
    const toTime = events.at(-40)?.recordedAt ?? ''
    // from: the first event recorded at or after the time; to: the last recorded at or before it
    const expected = {
      from: events.find((e) => e.recordedAt >= fromTime)?.position,
      to: events.filter((e) => e.recordedAt <= toTime).at(-1)?.position,
    }
    assert.deepEqual(await resolveRange(store, { from: fromTime, to: toTime }), expected)
    const file = join(dir, 'policy-v7-times.json')
    writeFileSync(file, JSON.stringify(stricterDraft()))
    const byTime = await cli('replay', '--policy', file, '--from', fromTime, '--to', toTime, '--json')
    assert.equal(byTime.code, 0, byTime.stderr)
    const direct = await counterfactualReplay(store, stricterDraft(), expected)
    assert.deepEqual(JSON.parse(byTime.stdout), JSON.parse(JSON.stringify(direct)))
    assert.ok(direct.allowToBlock > 0, 'the range holds flips')
    const backwards = await cli('replay', '--policy', file, '--from', toTime, '--to', fromTime)
    assert.equal(backwards.code, 1)
    assert.match(backwards.stderr, /--from\/--to: the range starts at position \d+, after its end/)
    assert.equal((await cli('replay', '--policy', file, '--from', 'last-month')).code, 2)
  })

  test('a policy asking ten approvals for low impact blocks exactly the low-impact allows, on lineage', async () => {
    const stricter: PolicyDraft = {
      ...live,
      version: 7,
      requirements: {
        ...live.requirements,
        low: {
          checks: [...live.requirements.low.checks, 'lineage'],
          approvals: { count: 10, roles: ['approver'] },
        },
      },
    }
    const report = await counterfactualReplay(store, stricter, { from })
    const expected = (await recordedSince(from))
      .filter((v) => v.decision === 'allow' && v.impact === 'low')
      .map((v) => v.proposalId)
      .sort()
    assert.ok(expected.length > 0, 'the history allows some low-impact actions')
    assert.deepEqual(report.flips.map((f) => f.proposalId).sort(), expected)
    assert.equal(report.allowToBlock, expected.length)
    assert.equal(report.blockToAllow, 0)
    for (const flip of report.flips) {
      assert.equal(flip.recorded, 'allow')
      assert.equal(flip.counterfactual, 'block')
      assert.equal(flip.impact, 'low')
      assert.deepEqual(
        flip.changedChecks.map((c) => [c.check, c.recorded, c.counterfactual]),
        [['lineage', 'not-required', 'fail']],
      )
    }
    const total = (counts: Record<string, { allowToBlock: number }>) =>
      Object.values(counts).reduce((n, c) => n + c.allowToBlock, 0)
    assert.equal(total(report.byAgent), expected.length)
    assert.equal(total(report.byTool), expected.length)
    assert.equal(total(report.byEnvironment), expected.length)
  })

  test('the ledger is left as it was', async () => {
    const before = (await store.head()).position
    await counterfactualReplay(store, live)
    assert.equal((await store.head()).position, before)
  })
})

describe('POST /v1/policies/counterfactual', () => {
  let api: TestApi
  let world: SeededWorld
  let allowed: AllowedProposal
  const auditor = () => api.as('auditor-1', 'auditor')

  before(async () => {
    api = await startTestApi()
    world = await seedWorld(api)
    allowed = await allowedProposal(api, world)
  })
  after(() => api.close())

  test('under the published policy nothing flips; asking two approvals for high impact blocks the allowed action', async () => {
    const same = await auditor().post('/v1/policies/counterfactual', { policyVersion: world.policyVersion })
    assert.equal(same.statusCode, 200, same.body)
    assert.deepEqual(same.json().flips, [])
    assert.deepEqual(same.json().ignoredPolicyVersions, [1])
    assert.ok(same.json().compared >= 1)

    const policy = seedPolicy(2)
    const twoApprovals = {
      ...policy,
      requirements: {
        ...policy.requirements,
        high: { ...policy.requirements.high, approvals: { count: 2, roles: ['approver'] } },
      },
    }
    const stricter = await api
      .as('admin', 'policy-admin')
      .post('/v1/policies/counterfactual', { policy: twoApprovals })
    assert.equal(stricter.statusCode, 200, stricter.body)
    const report = stricter.json()
    assert.deepEqual(
      report.flips.map(
        (f: {
          proposalId: string
          recorded: string
          counterfactual: string
          changedChecks: { check: string }[]
        }) => [f.proposalId, f.recorded, f.counterfactual, f.changedChecks.map((c) => c.check)],
      ),
      [[allowed.proposalId, 'allow', 'block', ['lineage']]],
    )
    assert.deepEqual(report.byAgent, { 'agent-1': { allowToBlock: 1, blockToAllow: 0 } })
    assert.equal(report.allowToBlock, 1)
  })

  test('is for auditors and policy admins, takes one policy, and names a version the ledger published', async () => {
    expectError(
      await api.as('agent-1', 'agent').post('/v1/policies/counterfactual', { policyVersion: 1 }),
      403,
      'forbidden',
    )
    expectError(
      await auditor().post('/v1/policies/counterfactual', { policyVersion: 1, policy: seedPolicy(2) }),
      400,
      'invalid',
    )
    expectError(await auditor().post('/v1/policies/counterfactual', {}), 400, 'invalid')
    expectError(
      await auditor().post('/v1/policies/counterfactual', { policyVersion: 1, from: 9, to: 3 }),
      400,
      'invalid',
    )
    expectError(await auditor().post('/v1/policies/counterfactual', { policyVersion: 9 }), 404, 'not-found')
  })

  test('takes from and to as UTC times too', async () => {
    const head = await api.head()
    const whole = await auditor().post('/v1/policies/counterfactual', {
      policyVersion: 1,
      from: '2000-01-01T00:00:00Z',
      to: new Date().toISOString(),
    })
    assert.equal(whole.statusCode, 200, whole.body)
    assert.equal(whole.json().from, 1)
    assert.ok(whole.json().to >= head)
    const future = expectError(
      await auditor().post('/v1/policies/counterfactual', { policyVersion: 1, to: '2999-01-01T00:00:00Z' }),
      400,
      'invalid',
    )
    assert.match(future.message, /future/)
    expectError(
      await auditor().post('/v1/policies/counterfactual', {
        policyVersion: 1,
        from: new Date().toISOString(),
        to: '2000-01-01T00:00:00Z',
      }),
      400,
      'invalid',
    )
    expectError(
      await auditor().post('/v1/policies/counterfactual', { policyVersion: 1, from: 'yesterday' }),
      400,
      'invalid',
    )
  })
})
