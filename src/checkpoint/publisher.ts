import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { LedgerTree } from '../tree/ledger-tree.js'
import { type Checkpoint, checkpointBody, type NoteSigner, signNote } from './note.js'

/** A checkpoint as published: the signed note, and what it commits to. */
export interface Published {
  readonly checkpoint: Checkpoint
  readonly note: string
}

/** Where else a checkpoint goes once it is in the folder (the Kafka topic); a failure is retried at the next cut. */
export type CheckpointSink = (published: Published) => Promise<void>

export interface CheckpointSchedule {
  /** cut when the tree has grown by this many events since the last checkpoint */
  readonly everyEvents: number
  /** cut when the tree has grown at all and this many seconds have passed since the last checkpoint */
  readonly everySeconds: number
}

/** The folder of signed checkpoints: CHECKPOINT_DIR, else the data folder's `checkpoints`. */
export const checkpointDir = (config: Pick<Config, 'CHECKPOINT_DIR' | 'DATA_DIR'>): string =>
  config.CHECKPOINT_DIR ?? join(config.DATA_DIR, 'checkpoints')

/** File names sort as sizes do: the size written with 16 digits. */
const SIZE_DIGITS = 16
const SUFFIX = '.checkpoint'
export const checkpointFileName = (size: number): string =>
  `${String(size).padStart(SIZE_DIGITS, '0')}${SUFFIX}`
const sizeOfFile = (name: string): number | null =>
  new RegExp(`^\\d{${SIZE_DIGITS}}\\${SUFFIX}$`).test(name) ? Number(name.slice(0, SIZE_DIGITS)) : null

/**
 * The append-only folder of signed checkpoints, one file per tree size, never rewritten nor removed: what a
 * witness copies. Reads go by file name, so the newest is found without reading the others.
 */
export class CheckpointFolder {
  /**
   * The largest size in the folder, read once when it is opened and kept as this process writes: the folder
   * only grows, and no request lists it. A folder shared by several instances is read again by `refresh`.
   */
  private newest: number | null

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o755 })
    this.newest = this.sizes().at(-1) ?? null
  }

  /** Reads the folder again, for what another process wrote into it. */
  refresh(): void {
    this.newest = this.sizes().at(-1) ?? null
  }

  sizes(): number[] {
    return readdirSync(this.dir)
      .map(sizeOfFile)
      .filter((size): size is number => size !== null)
      .sort((a, b) => a - b)
  }

  read(size: number): string | null {
    try {
      return readFileSync(join(this.dir, checkpointFileName(size)), 'utf8')
    } catch {
      return null
    }
  }

  /** The largest size in the folder, 0 for none, without reading a file. */
  latestSize(): number {
    return this.newest ?? 0
  }

  latest(): { readonly size: number; readonly note: string } | null {
    const size = this.newest
    const note = size === null ? null : this.read(size)
    return size === null || note === null ? null : { size, note }
  }

  /**
   * Writes a checkpoint once: a file already there (another instance cut the same size) is left as it is. The
   * note is written whole to a file of its own first, then linked under its name, so that no reader and no
   * crash ever sees a checkpoint's file half written.
   */
  write(size: number, note: string): boolean {
    const path = join(this.dir, checkpointFileName(size))
    const temporary = `${path}.${process.pid}.tmp`
    const fd = openSync(temporary, 'w', 0o644)
    try {
      writeFileSync(fd, note)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    let written: boolean
    try {
      linkSync(temporary, path)
      written = true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      written = false
    } finally {
      rmSync(temporary, { force: true })
    }
    // written now by this process, or by another before it: either way the folder holds it
    if (this.newest === null || size > this.newest) this.newest = size
    return written
  }
}

/**
 * Cuts signed checkpoints of the ledger's Merkle tree every N events or T seconds, whichever comes first, and
 * publishes each: the folder first (the record), then every sink (the Kafka topic). The tree follows the
 * ledger, so a checkpoint never commits to more than the ledger holds.
 */
export class CheckpointPublisher {
  /** when the last cut was made; never, at start, so the first tick that finds the tree grown cuts at once */
  private lastCutAt = 0
  /** why the last cut failed (signing, the folder), null once one succeeds: for /metrics, never for the gate */
  failure: string | null = null
  private sinkBehind: Published | null = null
  private cutting: Promise<Published | null> | null = null

  constructor(
    private readonly tree: Pick<LedgerTree, 'size' | 'root'>,
    private readonly signer: NoteSigner,
    readonly origin: string,
    readonly folder: CheckpointFolder,
    private readonly schedule: CheckpointSchedule,
    private readonly sinks: readonly CheckpointSink[],
    private readonly log: Logger,
  ) {}

  /** The newest checkpoint published, as its signed note. */
  latest(): { readonly size: number; readonly note: string } | null {
    return this.folder.latest()
  }

  /** Whether a cut is due now. */
  due(nowMs: number): boolean {
    const size = this.tree.size()
    const last = this.folder.latestSize()
    if (size <= last) return false
    return (
      size - last >= this.schedule.everyEvents || nowMs - this.lastCutAt >= this.schedule.everySeconds * 1000
    )
  }

  /** Cuts a checkpoint when one is due (or, with force, whenever the tree has grown); one cut at a time. */
  tick(nowMs = Date.now(), force = false): Promise<Published | null> {
    // a forced cut (the last one, at stop) waits for the cut under way, then cuts what the tree holds by then
    if (this.cutting && force)
      return this.cutting.then(
        () => this.tick(nowMs, true),
        () => this.tick(nowMs, true),
      )
    if (this.cutting) return this.cutting
    this.cutting = this.run(nowMs, force)
      .then(
        (published) => {
          if (published) this.failure = null
          return published
        },
        (error: unknown) => {
          this.failure = error instanceof Error ? error.message : String(error)
          throw error
        },
      )
      .finally(() => {
        this.cutting = null
      })
    return this.cutting
  }

  private async run(nowMs: number, force: boolean): Promise<Published | null> {
    await this.retrySinks()
    const size = this.tree.size()
    const last = this.folder.latestSize()
    if (size <= last || (!force && !this.due(nowMs))) return null
    const checkpoint: Checkpoint = {
      origin: this.origin,
      size,
      rootHash: this.tree.root(size),
      extensions: [],
    }
    const note = await signNote(checkpointBody(checkpoint), this.signer)
    this.folder.write(size, note)
    this.lastCutAt = nowMs
    const published = { checkpoint, note }
    this.log.info({ size, rootHash: Buffer.from(checkpoint.rootHash).toString('base64') }, 'checkpoint cut')
    await this.toSinks(published)
    return published
  }

  private async toSinks(published: Published): Promise<void> {
    try {
      for (const sink of this.sinks) await sink(published)
      this.sinkBehind = null
    } catch (error) {
      // the folder holds it; the newest one goes out at the next tick (a later one commits to it anyway)
      this.sinkBehind = published
      this.log.warn({ err: error, size: published.checkpoint.size }, 'checkpoint not published to a sink yet')
    }
  }

  private async retrySinks(): Promise<void> {
    if (this.sinkBehind) await this.toSinks(this.sinkBehind)
  }
}
