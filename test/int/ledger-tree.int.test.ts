// The Merkle tree kept in derived.db over a real SQLite ledger: every past head and proof, following the
// ledger live, after a restart, and rebuilt when its table is gone or the ledger is another one.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, describe, test } from 'node:test'
import Database from 'better-sqlite3'
import { loadConfig } from '../../src/config.js'
import { dataPaths, openRuntime } from '../../src/runtime.js'
import type { EventStore, StoredEvent } from '../../src/store/port.js'
import { openSqliteEventStore } from '../../src/store/sqlite/event-store.js'
import { leafOf } from '../../src/tree/leaf.js'
import { LedgerTree } from '../../src/tree/ledger-tree.js'
import {
  type Hash,
  leafHash,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/tree/merkle.js'

const root = mkdtempSync(join(tmpdir(), 'ledger-tree-'))
after(() => rmSync(root, { recursive: true, force: true }))
let folders = 0
const folder = () => mkdtempSync(join(root, `${++folders}-`))

/** Closes what a test opened, however it ends, so a failure reports instead of hanging on an open handle. */
const closing: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close()
})
const kept = <T extends { close(): unknown }>(opened: T): T => {
  closing.push(() => opened.close())
  return opened
}

const hex = (h: Hash) => Buffer.from(h).toString('hex')

/** Appends `count` events, a few streams and sizes, the way a writer does. */
const appendEvents = async (store: EventStore, count: number, tag = 'a') => {
  for (let i = 0; i < count; i++) {
    await store.append(
      `stream-${i % 3}`,
      [{ type: 'Noted', data: { tag, i, text: 'é'.repeat(i % 5) }, metadata: { actor: `actor-${i % 2}` } }],
      'any',
    )
  }
}

const allEvents = async (store: EventStore): Promise<StoredEvent[]> => store.readAll(0, 100_000)

/** Every tree head the ledger has had, computed from its events alone. */
const headsOf = (events: readonly StoredEvent[]): Hash[] => {
  const leaves = events.map((e) => leafHash(leafOf(e)))
  return leaves.map((_, i) => rootFromLeafHashes(leaves.slice(0, i + 1)))
}

const until = async (what: string, done: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe('the Merkle tree in derived.db', () => {
  test('every past head and proof, while following the ledger, and after a restart', async () => {
    const dir = folder()
    const store = kept(openSqliteEventStore({ path: join(dir, 'ledger.db') }))
    const derived = join(dir, 'derived.db')
    await appendEvents(store, 37)
    const tree = kept(new LedgerTree(derived, store))
    assert.equal(tree.size(), 0)
    assert.equal(await tree.catchUp(), 37)
    const following = kept(tree.follow())
    await appendEvents(store, 30, 'b')
    await until('the tree follows the ledger', () => tree.size() === 67)

    const events = await allEvents(store)
    const heads = headsOf(events)
    for (let size = 1; size <= 67; size++) {
      assert.equal(hex(tree.root(size)), hex(heads[size - 1] as Hash), `head at ${size}`)
      for (const index of new Set([0, size >> 1, size - 1])) {
        const leaf = leafHash(leafOf(events[index] as StoredEvent))
        assert.ok(verifyInclusion(leaf, index, size, tree.inclusionProof(index, size), tree.root(size)))
      }
      for (const to of [size, 67]) {
        const proof = tree.consistencyProof(size, to)
        assert.ok(verifyConsistency(size, to, proof, tree.root(size), tree.root(to)), `${size} -> ${to}`)
      }
    }
    assert.throws(() => tree.root(68), RangeError)
    assert.throws(() => tree.inclusionProof(0, 68), RangeError)

    // a restart: what was committed is kept, what came meanwhile is caught up
    await following.close()
    tree.close()
    await appendEvents(store, 5, 'c')
    const again = kept(new LedgerTree(derived, store))
    assert.equal(again.size(), 67)
    assert.equal(hex(again.root(40)), hex(heads[39] as Hash))
    assert.equal(await again.catchUp(), 72)
    assert.equal(hex(again.root()), hex(headsOf(await allEvents(store))[71] as Hash))
  })

  test('a tree whose table is gone, or built from another ledger, is rebuilt from the ledger', async () => {
    const dir = folder()
    const derived = join(dir, 'derived.db')
    const first = kept(openSqliteEventStore({ path: join(dir, 'first.db') }))
    await appendEvents(first, 12)
    const built = new LedgerTree(derived, first)
    await built.catchUp()
    const head = hex(built.root())
    built.close()

    const db = new Database(derived)
    db.exec('DROP TABLE merkle_subtrees')
    db.close()
    const reopened = new LedgerTree(derived, first)
    assert.equal(reopened.size(), 0, 'without its subtrees the tree starts over')
    assert.equal(await reopened.catchUp(), 12)
    assert.equal(hex(reopened.root()), head)
    reopened.close()

    // another ledger of the same length: its last event is not the tree's last leaf
    const second = kept(openSqliteEventStore({ path: join(dir, 'second.db') }))
    await appendEvents(second, 15, 'other')
    const moved = new LedgerTree(derived, second)
    const resets: string[] = []
    assert.equal(await moved.catchUp((reason) => resets.push(reason)), 15)
    assert.match(resets.join(), /leaf 12 is not the ledger's event at position 12/)
    assert.equal(hex(moved.root()), hex(headsOf(await allEvents(second))[14] as Hash))
    moved.close()
  })

  test('a derived.db whose tree is ahead of the ledger is set aside at start', async () => {
    const dir = folder()
    const config = loadConfig({ DATA_DIR: dir, AUTH_MODE: 'embedded' })
    const runtime = await openRuntime(config)
    await appendEvents(runtime.store, 4)
    await runtime.tree.catchUp()
    await runtime.closeStores()
    // the ledger is gone (restored from an older backup, another database named): the tree was of another
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dataPaths(config).ledger}${suffix}`, { force: true })
    const restarted = await openRuntime(config)
    try {
      assert.deepEqual(
        restarted.setAside.map((a) => a.reason),
        [
          "derived.db was checkpointed at position 4, beyond the ledger's head 0: it was derived from another ledger",
        ],
      )
      assert.equal(restarted.tree.size(), 0)
    } finally {
      await restarted.closeStores()
    }
  })
})
