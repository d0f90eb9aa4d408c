import type { KeyObject } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { audit, authority, metrics, openActions } from '../projections/index.js'
import { catchUpAll, followAll, ProjectionRunner } from '../projections/runner.js'
import { followRevocations, RevokedTokens } from './auth/revocations.js'
import { createTokenVerifier, type TokenVerifier, verifierKeys } from './auth/tokens.js'
import type { Config } from './config.js'
import { secureDataFolder } from './data-folder.js'
import { appendDueNotices } from './decision/scheduler.js'
import { DecisionService } from './decision/service.js'
import { createVerdictSigner, loadOrCreateSigningKey, type VerdictSigner } from './decision/signer.js'
import { type KafkaBridge, startKafkaBridge } from './kafka/bridge.js'
import type { DocStore } from './store/docs.js'
import { openKurrentDbEventStore } from './store/kurrentdb/event-store.js'
import type { EventStore, StoredEvent, Subscription } from './store/port.js'
import { openPostgresEventStore } from './store/postgres/event-store.js'
import { openSqliteDocStore } from './store/sqlite/doc-store.js'
import { openSqliteEventStore } from './store/sqlite/event-store.js'

/** Tells in-process listeners (waiting requests) about each batch the ledger commits. */
export class LedgerTail extends EventEmitter<{ events: [readonly StoredEvent[]] }> {}

export interface Views {
  readonly authority: ProjectionRunner<typeof authority>
  readonly openActions: ProjectionRunner<typeof openActions>
  readonly metrics: ProjectionRunner<typeof metrics>
  readonly audit: ProjectionRunner<typeof audit>
}

/** Everything the edges (HTTP, CLI, Kafka) use, opened once and closed once. */
export interface Runtime {
  readonly config: Config
  readonly store: EventStore
  readonly docs: DocStore
  readonly decision: DecisionService
  readonly views: Views
  readonly verdictSigner: VerdictSigner
  /** the embedded token key (AUTH_MODE=embedded), to issue tokens locally */
  readonly tokenKey: KeyObject | null
  readonly verifier: TokenVerifier
  /** the token ids revoked by a policy admin, which every verifier of the service refuses */
  readonly revokedTokens: RevokedTokens
  readonly tail: LedgerTail
  /** whether this start created the data folder's keys: the first start */
  readonly firstStart: boolean
  /** the relay and the ingress, when KAFKA_BROKERS is set */
  readonly kafka: KafkaBridge | null
  close(): Promise<void>
}

export const dataPaths = (config: Config) => ({
  ledger: join(config.DATA_DIR, 'ledger.db'),
  derived: join(config.DATA_DIR, 'derived.db'),
  verdictKey: join(config.DATA_DIR, 'keys', 'verdict-signing.pem'),
  tokenKey: join(config.DATA_DIR, 'keys', 'token-signing.pem'),
  /** the first start's admin token, written once */
  bootstrapToken: join(config.DATA_DIR, 'bootstrap-admin.token'),
})

/** Opens the stores and keys; starts nothing that runs in the background. */
/** The ledger the configuration names; derived state always stays in the local data folder. */
export const openLedger = async (config: Config): Promise<EventStore> => {
  switch (config.LEDGER) {
    case 'postgres':
      return openPostgresEventStore({ url: String(config.POSTGRES_URL), schema: config.POSTGRES_SCHEMA })
    case 'kurrentdb':
      return openKurrentDbEventStore({ url: String(config.KURRENTDB_URL), stream: config.KURRENTDB_STREAM })
    case 'sqlite':
      return openSqliteEventStore({ path: dataPaths(config).ledger })
  }
}

export const openRuntime = async (
  config: Config,
): Promise<Omit<Runtime, 'close' | 'kafka'> & { closeStores(): Promise<void> }> => {
  const paths = dataPaths(config)
  const databases = config.LEDGER === 'sqlite' ? [paths.ledger, paths.derived] : [paths.derived]
  secureDataFolder(config.DATA_DIR, Object.values(paths), databases)
  const store = await openLedger(config)
  const docs = openSqliteDocStore(paths.derived)
  const verdictKey = loadOrCreateSigningKey(paths.verdictKey)
  const tokenKey = config.AUTH_MODE === 'embedded' ? loadOrCreateSigningKey(paths.tokenKey) : null
  const verdictSigner = createVerdictSigner(verdictKey.key)
  const revokedTokens = new RevokedTokens(config.AUTH_MAX_TOKEN_LIFETIME)
  return {
    config,
    store,
    docs,
    decision: new DecisionService(store, docs, verdictSigner),
    views: {
      authority: new ProjectionRunner(store, docs, authority),
      openActions: new ProjectionRunner(store, docs, openActions),
      metrics: new ProjectionRunner(store, docs, metrics),
      audit: new ProjectionRunner(store, docs, audit),
    },
    verdictSigner,
    tokenKey: tokenKey?.key ?? null,
    verifier: createTokenVerifier(config, verifierKeys(config, tokenKey?.key ?? null), {
      revoked: revokedTokens,
    }),
    revokedTokens,
    tail: new LedgerTail(),
    firstStart: verdictKey.created || (tokenKey?.created ?? false),
    closeStores: async () => {
      await store.close()
      docs.close()
    },
  }
}

/** Opens everything, catches the derived state up with the ledger, then follows it live. */
export const startRuntime = async (config: Config, log: Logger): Promise<Runtime> => {
  const { closeStores, ...runtime } = await openRuntime(config)
  const { store, decision, views, tail } = runtime
  await decision.catchUp()
  await catchUpAll(store, Object.values(views))
  const subscriptions: Subscription[] = [decision.start(), followAll(store, Object.values(views))]
  const head = await store.head()
  subscriptions.push(
    store.subscribe(head.position, async (batch) => {
      tail.emit('events', batch)
    }),
  )
  await followRevocations(store, runtime.revokedTokens, (listener) => tail.on('events', listener))
  for (const s of subscriptions) {
    s.done.catch((error: unknown) => log.fatal({ err: error }, 'a ledger consumer stopped'))
  }
  const scheduler = setInterval(() => {
    const now = new Date()
    appendDueNotices(store, decision.world().deadlines(now.toISOString()), now).catch((error: unknown) =>
      log.error({ err: error }, 'the deadline scheduler failed'),
    )
  }, config.SCHEDULER_INTERVAL_MS)
  scheduler.unref()
  const kafka = config.KAFKA_BROKERS ? await startKafkaBridge(config, { ...runtime, log }) : null
  let closed: Promise<void> | null = null
  return {
    ...runtime,
    kafka,
    close: () => {
      closed ??= (async () => {
        clearInterval(scheduler)
        await kafka?.close()
        await Promise.allSettled(subscriptions.map((s) => s.close()))
        await closeStores()
      })()
      return closed
    },
  }
}
