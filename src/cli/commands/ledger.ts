import { existsSync, readFileSync } from 'node:fs'
import { projections } from '../../../projections/index.js'
import { type Checkpoint, CheckpointError, openCheckpoint } from '../../checkpoint/note.js'
import { verifyAgainstCheckpoint } from '../../checkpoint/verify-ledger.js'
import type { Config } from '../../config.js'
import { DECISION_NAMESPACE } from '../../decision/service.js'
import { checkpointVerifierKeys, readKeyList } from '../../keys/key-list.js'
import { dataPaths } from '../../runtime.js'
import type { ChainFault } from '../../store/chain.js'
import { openSqliteDocStore } from '../../store/sqlite/doc-store.js'
import { verifyLedger } from '../../store/verify.js'
import { openReadOnlyLedger } from '../data-folder.js'
import { CliError } from '../errors.js'
import { table } from '../format.js'
import { done, type Outcome } from '../outcome.js'

/** What a fault means, in the words of someone investigating a tampered ledger. */
export const describeFault = (fault: ChainFault): string => {
  switch (fault.kind) {
    case 'gap':
      return `position ${fault.position} stands where ${fault.expectedPosition} was expected: an event was deleted or inserted`
    case 'broken-link':
      return `its prevHash is not the hash of the event before it: events were replaced, inserted or reordered`
    case 'bad-hash':
      return `its hash does not match its contents: the event was modified`
  }
}

/** `verify`: the whole hash chain, checked from the genesis link; exit 1 at the first bad position. */
export const verifyCommand = async (config: Config): Promise<Outcome> => {
  const ledger = openReadOnlyLedger(config)
  try {
    const report = await verifyLedger(ledger)
    if (report.ok) {
      return done(
        report,
        `Ledger intact: ${report.checked} events verified, head ${report.head.position} ${report.head.hash}`,
      )
    }
    const fault = report.firstFault
    const position = fault?.position ?? report.head.position + 1
    return {
      data: report,
      text: [
        `Ledger BROKEN at position ${position}: ${fault ? describeFault(fault) : 'unknown fault'}.`,
        `${report.checked} events verified before it; the last good one is ${report.head.position} ${report.head.hash}.`,
      ].join('\n'),
      exitCode: 1,
    }
  } finally {
    await ledger.close()
  }
}

/**
 * `verify --checkpoint FILE`: the ledger against a checkpoint kept outside it. The checkpoint's signature is
 * checked under the pinned keys (--key), else under the data folder's checkpoint key list; then the chain and
 * the Merkle root at its size, from the ledger alone. Names what is wrong: truncated, altered or forked.
 */
export const verifyCheckpointCommand = async (
  config: Config,
  path: string,
  pinnedKeys: readonly string[],
): Promise<Outcome> => {
  let note: string
  try {
    note = readFileSync(path, 'utf8')
  } catch (error) {
    throw new CliError(`cannot read the checkpoint ${path}: ${(error as Error).message}`)
  }
  const keys =
    pinnedKeys.length > 0 ? pinnedKeys : checkpointVerifierKeys(readKeyList(dataPaths(config).keyList))
  let checkpoint: Checkpoint
  try {
    checkpoint = openCheckpoint(note, keys)
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error
    return {
      data: { ok: false, verdict: 'unsigned', reason: error.message },
      text: `Checkpoint REFUSED: ${error.message}.`,
      exitCode: 1,
    }
  }
  const ledger = openReadOnlyLedger(config)
  try {
    const report = await verifyAgainstCheckpoint(ledger, checkpoint)
    const head = `Checkpoint ${checkpoint.origin} at size ${checkpoint.size}`
    return {
      data: report,
      text: `${head}: ${report.ok ? 'consistent' : report.verdict.toUpperCase()}. ${sentence(report.reason)}.`,
      exitCode: report.ok ? 0 : 1,
    }
  } finally {
    await ledger.close()
  }
}

const sentence = (text: string): string => `${text.charAt(0).toUpperCase()}${text.slice(1)}`

/** Where each consumer of the ledger stands; read from derived.db without bringing anything up to date. */
const consumerPositions = (config: Config): Record<string, number> | null => {
  const path = dataPaths(config).derived
  if (!existsSync(path)) return null
  const docs = openSqliteDocStore(path)
  try {
    const names = [DECISION_NAMESPACE, ...projections.map((p) => p.name)]
    return Object.fromEntries(names.map((name) => [name, docs.checkpoint(name)]))
  } finally {
    docs.close()
  }
}

/** `head`: the ledger's last position and hash, when it was recorded, and how far behind each consumer is. */
export const headCommand = async (config: Config): Promise<Outcome> => {
  const ledger = openReadOnlyLedger(config)
  try {
    const head = await ledger.head()
    const recordedAt = ledger.lastRecordedAt()
    const consumers = consumerPositions(config)
    const rows = Object.entries(consumers ?? {}).map(([name, position]) => [
      name,
      String(position),
      String(head.position - position),
    ])
    const text = [
      `Ledger head: position ${head.position}, hash ${head.hash}, recorded ${recordedAt ?? '-'}`,
      '',
      consumers === null
        ? 'No derived state yet (derived.db is missing): the service builds it when it starts.'
        : table(
            [
              { header: 'CONSUMER' },
              { header: 'POSITION', align: 'right' },
              { header: 'BEHIND', align: 'right' },
            ],
            rows,
          ),
    ].join('\n')
    return done({ position: head.position, hash: head.hash, recordedAt, consumers }, text)
  } finally {
    await ledger.close()
  }
}
