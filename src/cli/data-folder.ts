import { existsSync } from 'node:fs'
import type { ViewsOf } from '../../projections/as-of.js'
import { type LedgerMoment, type Moment, viewsAt } from '../application/as-of.js'
import { type Config, loadConfig } from '../config.js'
import { createVerdictSigner, type VerdictSigner } from '../decision/signer.js'
import { DomainError } from '../domain/errors.js'
import { verdictKey } from '../keys/service-keys.js'
import { dataPaths, openRuntime, type Views } from '../runtime.js'
import { CliError } from './errors.js'
import { ReadOnlyLedger } from './read-only-ledger.js'

export type OfflineRuntime = Awaited<ReturnType<typeof openRuntime>>

/** What a read command reads: the data folder, with the read models now or as of the moment it names. */
export type ReadRuntime = Omit<OfflineRuntime, 'views'> & {
  readonly views: ViewsOf<Views>
  /** the moment of --as-of, resolved; null: now */
  readonly moment: LedgerMoment | null
}

/** The service's configuration, from the same environment, with --data-dir taking DATA_DIR's place. */
export const configFor = (env: NodeJS.ProcessEnv, dataDir: string | undefined): Config =>
  loadConfig(dataDir === undefined ? env : { ...env, DATA_DIR: dataDir })

/** A read command on a folder with no ledger would create an empty one: refuse instead. */
export const requireLedger = (config: Config): string => {
  if (config.LEDGER !== 'sqlite') {
    throw new CliError(
      `this command reads the embedded SQLite ledger; with LEDGER=${config.LEDGER} use the HTTP API`,
    )
  }
  const path = dataPaths(config).ledger
  if (!existsSync(path))
    throw new CliError(
      `no ledger in ${config.DATA_DIR}: set DATA_DIR or --data-dir to the service's data folder`,
    )
  return path
}

export const openReadOnlyLedger = (config: Config): ReadOnlyLedger =>
  new ReadOnlyLedger(requireLedger(config))

/** The service's verdict key (VERDICT_KEY_FILE, or the data folder's), never created here: replay must sign exactly as the service did. */
export const loadVerdictSigner = (config: Config): VerdictSigner => {
  const path = dataPaths(config).verdictKey
  if (config.VERDICT_KEY_FILE === undefined && !existsSync(path))
    throw new CliError(`no verdict signing key at ${path}: is this the service's data folder?`)
  return createVerdictSigner(verdictKey(config).key)
}

/**
 * Opens the data folder as the service does, brings the named read models up to date with the ledger (every
 * one, with `asOf`), runs the read over them now or as of the moment, and closes everything whatever happens.
 */
export const withViews = async <T>(
  config: Config,
  names: readonly (keyof Views)[],
  read: (runtime: ReadRuntime) => Promise<T> | T,
  asOf?: Moment,
): Promise<T> => {
  if (config.LEDGER === 'sqlite') requireLedger(config)
  const runtime = await openRuntime(config)
  try {
    // an as-of read views every read model from its last snapshot: one left behind would evolve from far back
    const caughtUp = asOf === undefined ? names : (Object.keys(runtime.views) as (keyof Views)[])
    for (const name of caughtUp) await runtime.views[name].catchUp()
    let past: Awaited<ReturnType<typeof viewsAt<Views>>>
    try {
      past = await viewsAt(runtime.store, runtime.views, asOf)
    } catch (error) {
      if (error instanceof DomainError) throw new CliError(`--as-of: ${error.message}`)
      throw error
    }
    return await read({ ...runtime, ...past })
  } finally {
    await runtime.closeStores()
  }
}
