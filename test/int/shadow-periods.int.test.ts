import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { approveChange, govern } from '../../src/application/govern.js'
import { handle } from '../../src/application/handle.js'
import { counterfactualReplay } from '../../src/decision/counterfactual.js'
import { DecisionService } from '../../src/decision/service.js'
import { ShadowDecisions } from '../../src/decision/shadow.js'
import { createVerdictSigner, generateSigningKey } from '../../src/decision/signer.js'
import type { Actor } from '../../src/domain/actor.js'
import { policy } from '../../src/domain/deciders/index.js'
import { PolicyDraft, streams } from '../../src/domain/events.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore, type SqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { FakeClock } from '../support/history.js'
import { policyData, proposalData } from '../support/ledger-events.js'

const admin = (sub: string): Actor => ({ sub, roles: ['policy-admin'], approvalRoles: [] })
const { publishedBy: _by, approvedBy: _approved, ...first } = policyData(1, 'platform')
const draft: PolicyDraft = PolicyDraft.parse(first)

/** Two admins put `draft` in shadow; the position of its ShadowPolicyPublished. */
const publishShadow = async (store: SqliteEventStore): Promise<number> => {
  const change = { kind: 'publish-shadow-policy', policyVersion: draft.version } as const
  const requested = await govern(store, admin('admin-1'), change, draft)
  assert.equal(requested.status, 'pending')
  if (requested.status !== 'pending') return 0
  const approved = await approveChange(store, admin('admin-2'), requested.requestId)
  const at = approved.events.find((e) => e.type === 'ShadowPolicyPublished')?.position
  assert.ok(at !== undefined)
  return at
}

describe('a shadow policy withdrawn, then published again', () => {
  let dir: string
  let store: SqliteEventStore
  let decision: DecisionService
  let shadow: ShadowDecisions
  let since = 0
  const clock = new FakeClock()

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ledger-shadow-periods-'))
    store = openSqliteEventStore({ path: join(dir, 'ledger.db'), clock: clock.now })
    const docs = new MemoryDocStore()
    decision = await DecisionService.answering(store, docs, createVerdictSigner(generateSigningKey()))
    shadow = new ShadowDecisions(store, docs)
    // no policy is live: the first one is tried in shadow
    await publishShadow(store)
    const submitted = { type: 'ProposalSubmitted', data: proposalData({ proposalId: 'p-1' }) }
    await store.append(
      streams.proposal('p-1'),
      [{ ...submitted, metadata: { actor: 'agent-1' } }],
      'no-stream',
    )
    await decision.catchUp()
    await shadow.catchUp()
    await handle(
      store,
      policy,
      streams.policy(),
      { type: 'WithdrawShadowPolicy', actor: admin('admin-1'), reason: 'tried too early' },
      { actor: 'admin-1' },
    )
    await shadow.catchUp()
    assert.equal(shadow.report(), null)
    since = await publishShadow(store)
    await decision.catchUp()
    await shadow.catchUp()
  })

  after(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('its counts are those of counterfactual replay from its second publication', async () => {
    const report = shadow.report()
    assert.ok(report !== null)
    assert.equal(report.since, since)
    const replayed = await counterfactualReplay(store, draft, { from: since })
    assert.equal(replayed.compared, 1, 'the open proposal is decided again under the shadow')
    assert.deepEqual(
      { compared: report.compared, allowToBlock: report.allowToBlock, blockToAllow: report.blockToAllow },
      {
        compared: replayed.compared,
        allowToBlock: replayed.allowToBlock,
        blockToAllow: replayed.blockToAllow,
      },
    )
  })

  test('a rebuild from the ledger alone gives the same counts', async () => {
    const rebuilt = new ShadowDecisions(store, openSqliteDocStore(join(dir, 'rebuilt.db')))
    await rebuilt.catchUp()
    assert.deepEqual(rebuilt.report(), shadow.report())
  })
})
