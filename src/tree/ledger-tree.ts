import Database from 'better-sqlite3'
import { type EventStore, GENESIS_HASH, type StoredEvent, type Subscription } from '../store/port.js'
import { envelopeText } from './leaf.js'
import {
  consistencyProof,
  EMPTY_ROOT,
  type Hash,
  inclusionProof,
  leafHash,
  nodeHash,
  rootOf,
  type SubtreeReader,
} from './merkle.js'

// Every complete subtree's hash, keyed by its in-order index (a leaf i is 2i, the subtree of 2^l leaves from
// k * 2^l is k * 2^(l+1) + 2^l - 1), and the tree's size with the chain hash of its last leaf's event.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS merkle_subtrees (
  node INTEGER PRIMARY KEY,
  hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS merkle_head (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  size INTEGER NOT NULL,
  chain_hash TEXT NOT NULL
);
`

/** Events read and committed together while catching up. */
const READ_SIZE = 1000

const nodeOf = (level: number, index: number): number => index * 2 ** (level + 1) + 2 ** level - 1

interface Head {
  readonly size: number
  /** the chain hash of the event at position `size` (the genesis link for the empty tree) */
  readonly chainHash: string
}

/** The complete subtrees that make up a tree of `size` leaves, largest first, as (level, index). */
const frontierOf = (size: number): Array<readonly [number, number]> => {
  let level = 0
  while (2 ** (level + 1) <= size) level += 1
  const parts: Array<readonly [number, number]> = []
  for (let start = 0; level >= 0; level--) {
    const width = 2 ** level
    if (size - start < width) continue
    parts.push([level, start / width])
    start += width
  }
  return parts
}

/** The tree's state between batches: its head, and the hashes of the complete subtrees on its right edge. */
interface State extends Head {
  readonly frontier: readonly Hash[]
}

/** The state a batch grows, committed with it. */
type Batch = { -readonly [K in keyof State]: State[K] } & { readonly frontier: Hash[] }

/**
 * The RFC 9162 Merkle tree over the ledger, the leaf of each event its envelope without the links (leaf.ts), at
 * index position - 1. Kept in derived.db beside the projections and following the ledger like them; it stores
 * the hash of every complete subtree, so the head at any past size and any proof take O(log n) reads.
 */
export class LedgerTree {
  private readonly db: Database.Database
  private readonly sql
  private state: State

  constructor(
    path: string,
    private readonly store: EventStore,
    options: { busyTimeoutMs?: number } = {},
  ) {
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    // rebuilt from the ledger when lost, as the other derived state (see the doc store)
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5_000}`)
    this.db.exec(SCHEMA)
    this.sql = {
      node: this.db.prepare<[number], Buffer>('SELECT hash FROM merkle_subtrees WHERE node = ?').pluck(),
      putNode: this.db.prepare<[number, Uint8Array]>(
        'INSERT OR REPLACE INTO merkle_subtrees (node, hash) VALUES (?, ?)',
      ),
      head: this.db.prepare<[], { size: number; chain_hash: string }>(
        'SELECT size, chain_hash FROM merkle_head WHERE one = 1',
      ),
      putHead: this.db.prepare<[number, string]>(
        'INSERT OR REPLACE INTO merkle_head (one, size, chain_hash) VALUES (1, ?, ?)',
      ),
      wipeNodes: this.db.prepare('DELETE FROM merkle_subtrees'),
      wipeHead: this.db.prepare('DELETE FROM merkle_head'),
    }
    this.state = this.load() ?? this.wipe()
  }

  /** Leaves in the tree now. */
  size(): number {
    return this.state.size
  }

  /** The tree head at `size` leaves (now, by default), for any size the tree has reached. */
  root(size: number = this.size()): Hash {
    this.within(size)
    return size === 0 ? EMPTY_ROOT : rootOf(size, this.read)
  }

  /** The inclusion proof of the leaf at `index` (position - 1) in the tree of `treeSize` leaves. */
  inclusionProof(index: number, treeSize: number): Hash[] {
    this.within(treeSize)
    return inclusionProof(index, treeSize, this.read)
  }

  /** The consistency proof from the tree of `size1` leaves to the tree of `size2` (0 < size1 <= size2). */
  consistencyProof(size1: number, size2: number): Hash[] {
    this.within(size2)
    return consistencyProof(size1, size2, this.read)
  }

  /**
   * Adds every event after the tree's size, a read at a time; first, a tree whose last leaf is not the
   * ledger's event at that position (another ledger, or one rewritten) is dropped, with why to `onReset`.
   */
  async catchUp(onReset?: (reason: string) => void): Promise<number> {
    const reason = await this.mismatch()
    if (reason) {
      this.wipe()
      onReset?.(reason)
    }
    for (;;) {
      const events = await this.store.readAll(this.size(), READ_SIZE)
      if (events.length === 0) return this.size()
      this.append(events)
    }
  }

  /** Adds batches as the ledger delivers them, from the tree's size on. */
  follow(): Subscription {
    return this.store.subscribe(this.size(), async (batch) => this.append(batch))
  }

  /** Adds the events after the tree's size, in one transaction; events it holds already are skipped. */
  append(events: readonly StoredEvent[]): void {
    this.state = this.db.transaction(() => {
      // what this process holds is what it committed, unless another process committed since
      const start = this.sameHead(this.readHead()) ? this.state : (this.load() ?? this.wipe())
      const next = { ...start, frontier: [...start.frontier] }
      for (const event of events) this.add(next, event)
      if (next.size === start.size) return start
      this.sql.putHead.run(next.size, next.chainHash)
      return next
    })()
  }

  close(): void {
    this.db.close()
  }

  private readonly read: SubtreeReader = (level, index) => {
    const hash = this.sql.node.get(nodeOf(level, index))
    if (!hash) throw new Error(`the Merkle tree in derived.db has no subtree ${level}/${index}`)
    return hash
  }

  private within(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size())
      throw new RangeError(`the Merkle tree has ${this.size()} leaves, not ${size}`)
  }

  /** One event more, into a batch's state: its leaf, and each subtree it completes. */
  private add(state: Batch, event: StoredEvent): void {
    if (event.position <= state.size) return
    if (event.position !== state.size + 1)
      throw new Error(
        `expected position ${state.size + 1} in the Merkle tree, not ${event.position}: the ledger has a gap`,
      )
    const { frontier } = state
    // the leaf's text hashed as UTF-8, as leafOf encodes it, without a copy of its bytes
    let hash = leafHash(envelopeText(event))
    let index = state.size
    let level = 0
    this.sql.putNode.run(nodeOf(level, index), hash)
    while (index % 2 === 1) {
      const left = frontier.pop()
      if (!left) throw new Error('the Merkle tree lost a subtree')
      hash = nodeHash(left, hash)
      index = (index - 1) / 2
      level += 1
      this.sql.putNode.run(nodeOf(level, index), hash)
    }
    frontier.push(hash)
    state.size = event.position
    state.chainHash = event.hash
  }

  private readHead(): Head {
    const row = this.sql.head.get()
    return row ? { size: row.size, chainHash: row.chain_hash } : { size: 0, chainHash: GENESIS_HASH }
  }

  private sameHead(head: Head): boolean {
    return head.size === this.state.size && head.chainHash === this.state.chainHash
  }

  /** The stored tree, or null when a subtree it needs is missing (a table dropped): then it is rebuilt. */
  private load(): State | null {
    const head = this.readHead()
    const frontier: Hash[] = []
    for (const [level, index] of frontierOf(head.size)) {
      const hash = this.sql.node.get(nodeOf(level, index))
      if (!hash) return null
      frontier.push(hash)
    }
    return { ...head, frontier }
  }

  private wipe(): State {
    this.db.transaction(() => {
      this.sql.wipeNodes.run()
      this.sql.wipeHead.run()
    })()
    this.state = { size: 0, chainHash: GENESIS_HASH, frontier: [] }
    return this.state
  }

  /** Why the tree is not a tree of this ledger's events, or null when its last leaf is the ledger's. */
  private async mismatch(): Promise<string | null> {
    const { size, chainHash } = this.state
    if (size === 0) return null
    const [event] = await this.store.readAll(size - 1, 1)
    if (!event || event.position !== size)
      return `the Merkle tree has ${size} leaves, but the ledger has fewer events`
    if (event.hash !== chainHash)
      return `the Merkle tree's leaf ${size} is not the ledger's event at position ${size}: the ledger was replaced or rewritten`
    return null
  }
}

export const openLedgerTree = (path: string, store: EventStore, options: { busyTimeoutMs?: number } = {}) =>
  new LedgerTree(path, store, options)
