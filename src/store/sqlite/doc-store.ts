import Database from 'better-sqlite3'
import { canonicalizeRecorded, jsonText } from '../../domain/canonical.js'
import { CheckpointMovedError, type DocHistory, type DocStore } from '../docs.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS docs (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  doc TEXT NOT NULL,
  PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS doc_history (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  boundary INTEGER NOT NULL,
  doc TEXT,
  PRIMARY KEY (namespace, key, boundary)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  namespace TEXT PRIMARY KEY,
  position INTEGER NOT NULL
) WITHOUT ROWID;
`

/** Above every key that starts with a prefix: SQLite compares UTF-8 bytes, so \uffff would miss astral characters. */
const TOP = '\u{10ffff}'

interface At {
  readonly namespace: string
  readonly boundary: number
}

interface Row {
  readonly key: string
  readonly doc: string
}

const prepare = (db: Database.Database) => {
  const statement = <P extends unknown[], R = unknown>(sql: string) => db.prepare<P, R>(sql)
  const range = 'SELECT key, doc FROM docs WHERE namespace = ? AND key >= ? AND key < ?'
  return {
    get: statement<[string, string], string>('SELECT doc FROM docs WHERE namespace = ? AND key = ?').pluck(),
    listFirst: statement<[string, string, string, number], Row>(`${range} ORDER BY key LIMIT ?`),
    listAfter: statement<[string, string, string, string, number], Row>(
      `${range} AND key > ? ORDER BY key LIMIT ?`,
    ),
    put: statement<[string, string, string]>(
      'INSERT INTO docs (namespace, key, doc) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET doc = excluded.doc',
    ),
    delete: statement<[string, string]>('DELETE FROM docs WHERE namespace = ? AND key = ?'),
    checkpoint: statement<[string], number>('SELECT position FROM checkpoints WHERE namespace = ?').pluck(),
    setCheckpoint: statement<[string, number]>(
      'INSERT INTO checkpoints (namespace, position) VALUES (?, ?) ON CONFLICT DO UPDATE SET position = excluded.position',
    ),
    wipeDocs: statement<[string]>('DELETE FROM docs WHERE namespace = ?'),
    wipeCheckpoint: statement<[string]>('DELETE FROM checkpoints WHERE namespace = ?'),
    dump: statement<[string], Row>('SELECT key, doc FROM docs WHERE namespace = ? ORDER BY key'),
    keep: statement<[string, string, number, string | null]>(
      'INSERT OR IGNORE INTO doc_history (namespace, key, boundary, doc) VALUES (?, ?, ?, ?)',
    ),
    wipeHistory: statement<[string]>('DELETE FROM doc_history WHERE namespace = ?'),
    // one statement, so that a commit between two reads cannot show half of each
    getAt: statement<[At & { key: string }], string | null>(
      `SELECT doc, 0 AS kept FROM (SELECT doc FROM doc_history
         WHERE namespace = @namespace AND key = @key AND boundary >= @boundary ORDER BY boundary LIMIT 1)
       UNION ALL SELECT doc, 1 FROM docs WHERE namespace = @namespace AND key = @key
       ORDER BY kept LIMIT 1`,
    ).pluck(),
    listAt: statement<[At & { low: string; high: string; after: string; limit: number }], Row>(
      `SELECT key, doc FROM (
         SELECT key, doc, MIN(boundary) FROM doc_history
         WHERE namespace = @namespace AND key >= @low AND key < @high AND key > @after AND boundary >= @boundary
         GROUP BY key
       ) WHERE doc IS NOT NULL
       UNION ALL
       SELECT key, doc FROM docs AS d
       WHERE namespace = @namespace AND key >= @low AND key < @high AND key > @after
         AND NOT EXISTS (SELECT 1 FROM doc_history AS h
           WHERE h.namespace = @namespace AND h.key = d.key AND h.boundary >= @boundary)
       ORDER BY key LIMIT @limit`,
    ),
  }
}

const toJson = (doc: unknown): string => {
  const text = jsonText(doc)
  if (text === undefined) throw new TypeError(`a document must be JSON, not ${typeof doc}`)
  return text
}

class SqliteDocStore implements DocStore {
  private readonly db: Database.Database
  private readonly sql: ReturnType<typeof prepare>

  constructor(path: string, busyTimeoutMs: number) {
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    // derived state is rebuilt from the ledger: a crash may lose its last batches, never its consistency
    // (documents and checkpoint commit together), so it does not pay a second fsync per batch
    this.db.pragma('synchronous = NORMAL')
    this.db.pragma(`busy_timeout = ${busyTimeoutMs}`)
    this.db.exec(SCHEMA)
    this.sql = prepare(this.db)
  }

  get(namespace: string, key: string): unknown {
    const doc = this.sql.get.get(namespace, key)
    return doc === undefined ? undefined : JSON.parse(doc)
  }

  list(
    namespace: string,
    prefix: string,
    options: { after?: string; limit?: number } = {},
  ): Array<[string, unknown]> {
    const { after, limit = -1 } = options
    const rows =
      after === undefined
        ? this.sql.listFirst.all(namespace, prefix, prefix + TOP, limit)
        : this.sql.listAfter.all(namespace, prefix, prefix + TOP, after, limit)
    return rows.map((row) => [row.key, JSON.parse(row.doc)])
  }

  commit(
    namespace: string,
    changes: ReadonlyMap<string, unknown>,
    checkpoint: number,
    expected?: number,
    history?: DocHistory,
  ): void {
    this.db.transaction(() => {
      const actual = this.checkpoint(namespace)
      if (expected !== undefined && actual !== expected)
        throw new CheckpointMovedError(namespace, expected, actual)
      for (const [boundary, docs] of history ?? []) {
        for (const [key, doc] of docs)
          this.sql.keep.run(namespace, key, boundary, doc == null ? null : toJson(doc))
      }
      for (const [key, doc] of changes) {
        if (doc == null) this.sql.delete.run(namespace, key)
        else this.sql.put.run(namespace, key, toJson(doc))
      }
      this.sql.setCheckpoint.run(namespace, checkpoint)
    })()
  }

  together<T>(work: () => T): T {
    // each commit inside is a savepoint of this transaction: one that throws rolls back alone
    return this.db.transaction(work)()
  }

  getAt(namespace: string, key: string, boundary: number): unknown {
    const doc = this.sql.getAt.get({ namespace, key, boundary })
    return doc == null ? undefined : JSON.parse(doc)
  }

  listAt(
    namespace: string,
    prefix: string,
    boundary: number,
    options: { after?: string; limit?: number } = {},
  ): Array<[string, unknown]> {
    const { after = '', limit = -1 } = options
    return this.sql.listAt
      .all({ namespace, boundary, low: prefix, high: prefix + TOP, after, limit })
      .map((row) => [row.key, JSON.parse(row.doc)])
  }

  checkpoint(namespace: string): number {
    return this.sql.checkpoint.get(namespace) ?? 0
  }

  wipe(namespace: string): void {
    this.db.transaction(() => {
      this.sql.wipeHistory.run(namespace)
      this.sql.wipeDocs.run(namespace)
      this.sql.wipeCheckpoint.run(namespace)
    })()
  }

  dump(namespace: string): Array<[string, string]> {
    return this.sql.dump.all(namespace).map((row) => [row.key, canonicalizeRecorded(JSON.parse(row.doc))])
  }

  close(): void {
    this.db.close()
  }
}

/**
 * Derived documents in their own SQLite file, separate from the ledger (WAL, synchronous=NORMAL). A lock held
 * by another process is waited for up to `busyTimeoutMs`, blocking the thread: the service waits briefly and
 * retries later instead, a command-line run waits longer.
 */
export const openSqliteDocStore = (path: string, options: { busyTimeoutMs?: number } = {}): DocStore =>
  new SqliteDocStore(path, options.busyTimeoutMs ?? 5_000)
