import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { approveChange, govern } from '../../src/application/govern.js'
import { main } from '../../src/cli/main.js'
import { counterfactualReplay, publishedPolicy } from '../../src/decision/counterfactual.js'
import { everyEvent } from '../../src/decision/replay.js'
import { DecisionService } from '../../src/decision/service.js'
import { ShadowDecisions, type ShadowReport } from '../../src/decision/shadow.js'
import { createVerdictSigner, generateSigningKey } from '../../src/decision/signer.js'
import type { Actor } from '../../src/domain/actor.js'
import type { DataOf, PolicyDraft } from '../../src/domain/events.js'
import type { DocStore } from '../../src/store/docs.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore, type SqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { FakeClock, History } from '../support/history.js'

/** short of the history's second policy (at step 150, past 2,000 events): the first stays live throughout */
const EVENTS = 1400
const SHADOW_STEP = 40

const admin = (sub: string): Actor => ({ sub, roles: ['policy-admin'], approvalRoles: [] })

describe('a shadow policy beside a generated history', () => {
  let dir: string
  let store: SqliteEventStore
  let docs: DocStore
  let shadow: ShadowDecisions
  let stricter: PolicyDraft
  /** where the ledger put the shadow policy in force */
  let since = 0
  let report: ShadowReport | null
  const clock = new FakeClock()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-shadow-'))
    store = openSqliteEventStore({ path: join(dir, 'ledger.db'), clock: clock.now })
    docs = openSqliteDocStore(join(dir, 'derived.db'))
    const decision = await DecisionService.answering(store, docs, createVerdictSigner(generateSigningKey()))
    shadow = new ShadowDecisions(store, docs)
    await new History(store, decision, clock, 20261202).generate(EVENTS, async (step) => {
      // asleep until now: it has only moved its checkpoint
      if (step === SHADOW_STEP - 1) assert.ok((await shadow.catchUp()) > 0)
      if (step !== SHADOW_STEP) return
      const live = await publishedPolicy(store, 1)
      assert.ok(live, 'the history published its first policy')
      // low impact now asks ten approvals: every low-impact allow from here on would be a block
      stricter = {
        ...live,
        version: 2,
        requirements: {
          ...live.requirements,
          low: {
            checks: [...live.requirements.low.checks, 'lineage'],
            approvals: { count: 10, roles: ['approver'] },
          },
        },
      }
      const change = { kind: 'publish-shadow-policy', policyVersion: 2 } as const
      const requested = await govern(store, admin('admin-1'), change, stricter)
      assert.equal(requested.status, 'pending')
      if (requested.status !== 'pending') return
      const approved = await approveChange(store, admin('admin-2'), requested.requestId)
      since = approved.events.find((e) => e.type === 'ShadowPolicyPublished')?.position ?? 0
    })
    await decision.catchUp()
    await shadow.catchUp()
    report = shadow.report()
  })

  after(async () => {
    await store.close()
    docs.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('the would-flip counts are exactly those of counterfactual replay from its publication', async () => {
    assert.ok(since > 0 && report !== null)
    assert.equal(report.version, 2)
    assert.equal(report.since, since)
    assert.equal(report.position, (await store.head()).position)
    const replayed = await counterfactualReplay(store, stricter, { from: since })
    assert.ok(replayed.allowToBlock > 0, 'the history allows low-impact actions after the shadow came')
    const { compared, allowToBlock, blockToAllow, byAgent, byTool, byEnvironment, byCheck } = replayed
    assert.deepEqual(
      {
        compared: report.compared,
        allowToBlock: report.allowToBlock,
        blockToAllow: report.blockToAllow,
        byAgent: report.byAgent,
        byTool: report.byTool,
        byEnvironment: report.byEnvironment,
        byCheck: report.byCheck,
      },
      { compared, allowToBlock, blockToAllow, byAgent, byTool, byEnvironment, byCheck },
    )
    assert.deepEqual(
      shadow.flips(10_000).map((f) => f.proposalId),
      replayed.flips.map((f) => f.proposalId).sort(),
    )
  })

  test('counted independently: the low-impact allows the live service decided since, blocked on lineage', async () => {
    assert.ok(report !== null)
    const last = new Map<string, DataOf<'VerdictIssued'>>()
    const touched = new Set<string>()
    for await (const e of everyEvent(store)) {
      if (e.type !== 'VerdictIssued') continue
      const v = e.data as DataOf<'VerdictIssued'>
      last.set(v.proposalId, v)
      if (e.position >= since) touched.add(v.proposalId)
    }
    const expected = [...touched]
      .map((id) => last.get(id) as DataOf<'VerdictIssued'>)
      .filter((v) => v.decision === 'allow' && v.impact === 'low')
    assert.equal(report.allowToBlock, expected.length)
    assert.equal(report.blockToAllow, 0)
    assert.deepEqual(report.byCheck, { lineage: { allowToBlock: expected.length, blockToAllow: 0 } })
    // and never enforced: not one verdict of the ledger was decided under it
    assert.ok([...last.values()].every((v) => v.policyVersion === 1))
  })

  test('metrics on the command line shows the same counts, by check', async () => {
    let stdout = ''
    const cli = (...args: string[]) =>
      main([...args, '--data-dir', dir], {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: () => undefined },
        env: {},
      })
    assert.equal(await cli('metrics', '--json'), 0)
    assert.deepEqual(JSON.parse(stdout).shadowPolicy, JSON.parse(JSON.stringify(report)))
    stdout = ''
    assert.equal(await cli('metrics'), 0)
    assert.match(stdout, new RegExp(`would flip allow>block\\s+${report?.allowToBlock}\\b`))
    assert.match(stdout, /^CHECK CHANGED\s+ALLOW>BLOCK\s+BLOCK>ALLOW$/m)
    assert.match(stdout, new RegExp(`^lineage\\s+${report?.allowToBlock}\\s+0$`, 'm'))
  })

  test('a restart gives the same counts, and so does a rebuild from the ledger alone', async () => {
    docs.close()
    docs = openSqliteDocStore(join(dir, 'derived.db'))
    const restarted = new ShadowDecisions(store, docs)
    assert.equal(await restarted.catchUp(), report?.position)
    assert.deepEqual(restarted.report(), report)
    const rebuilt = new ShadowDecisions(store, new MemoryDocStore())
    await rebuilt.catchUp()
    assert.deepEqual(rebuilt.report(), report)
  })
})
