import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { viewsAsOf } from '../../projections/as-of.js'
import { projections } from '../../projections/index.js'
import { catchUpAll, ProjectionRunner } from '../../projections/runner.js'
import { upTo } from '../../src/cli/read-only-ledger.js'
import { DecisionService } from '../../src/decision/service.js'
import { createVerdictSigner, generateSigningKey } from '../../src/decision/signer.js'
import { MemoryDocStore } from '../../src/store/memory/doc-store.js'
import { openSqliteDocStore } from '../../src/store/sqlite/doc-store.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { FakeClock, History } from '../support/history.js'

const EVENTS = 1_600
/** odd, so that boundaries fall inside the batches the ledger is delivered and caught up in */
const EVERY = 97

test(`as of: every projection as of a position equals the projection rebuilt from zero over the ledger stopped there (${EVENTS}+ events, a snapshot every ${EVERY})`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'as-of-'))
  const clock = new FakeClock()
  // in memory: the history is written for the test, not kept
  const store = openSqliteEventStore({ path: ':memory:', clock: clock.now })
  const docs = openSqliteDocStore(join(dir, 'derived.db'))
  try {
    const decision = await DecisionService.answering(store, docs, createVerdictSigner(generateSigningKey()))
    const runners = projections.map((p) => new ProjectionRunner(store, docs, p, { snapshotEvery: EVERY }))
    // the first part followed live, in whatever batches the ledger grows by; the rest caught up in big batches
    const following = runners.map((r) => r.follow())
    await new History(store, decision, clock, 20261201).generate(EVENTS / 2)
    await Promise.all(following.map((s) => s.close()))
    await new History(store, decision, clock, 20261202).generate(EVENTS)
    await decision.catchUp()
    await catchUpAll(store, runners, undefined, 1000)
    const head = (await store.head()).position
    const views = Object.fromEntries(runners.map((r) => [r.name, r]))
    // the empty state, a boundary, just after it, between two, and the head
    const positions = [0, EVERY, EVERY + 1, 7 * EVERY + 40, head - 1, head]
    for (const position of positions) {
      const past = await viewsAsOf(store, views, position)
      const ledger = upTo(store, position)
      for (const projection of projections) {
        const rebuilt = new ProjectionRunner(ledger, new MemoryDocStore(), projection)
        await rebuilt.rebuild()
        const view = past[projection.name]
        assert.ok(view)
        const expected = rebuilt.list('')
        const what = `${projection.name} as of ${position}`
        assert.equal(view.checkpoint(), position, what)
        assert.deepEqual(view.list(''), expected, what)
        // a page, and the page after it, as the stored list pages
        const [first] = expected.slice(3, 4)
        if (first) {
          assert.deepEqual(view.list('', { limit: 5 }), expected.slice(0, 5), `${what}: first page`)
          assert.deepEqual(
            view.list('', { after: first[0], limit: 5 }),
            expected.slice(4, 9),
            `${what}: page`,
          )
          assert.deepEqual(view.get(first[0]), first[1], `${what}: one document`)
        }
      }
    }
    assert.ok(head >= EVENTS, `the history holds ${head} events`)
    // snapshots kept at other boundaries cannot answer: another spacing rebuilds them from zero
    const [projection] = projections
    assert.ok(projection)
    const respaced = new ProjectionRunner(store, docs, projection, { snapshotEvery: 50 })
    await respaced.catchUp()
    const rebuilt = new ProjectionRunner(upTo(store, 120), new MemoryDocStore(), projection)
    await rebuilt.rebuild()
    const { view } = await viewsAsOf(store, { view: respaced }, 120)
    assert.deepEqual(view.list(''), rebuilt.list(''), 'as of 120 after a new spacing')
  } finally {
    docs.close()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
