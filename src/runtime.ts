import type { KeyObject } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { closeSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs'
import type { JSONWebKeySet } from 'jose'
import type { Logger } from 'pino'
import { audit, authority, metrics, openActions, survival } from '../projections/index.js'
import { catchUpAll, followAll, ProjectionRunner } from '../projections/runner.js'
import type { Gate } from './application/proposals.js'
import { followRevocations, RevokedTokens } from './auth/revocations.js'
import { createTokenVerifier, type TokenVerifier, verifierKeys } from './auth/tokens.js'
import type { NoteSigner } from './checkpoint/note.js'
import { CheckpointFolder, CheckpointPublisher, checkpointDir } from './checkpoint/publisher.js'
import { type Config, checkpointOrigin } from './config.js'
import { dataPaths, secureDataFolder } from './data-folder.js'

export { dataPaths }

import { resumeDecisions, unansweredNearHead } from './decision/resume.js'
import { appendDueNotices } from './decision/scheduler.js'
import { DECISION_NAMESPACE, DecisionService } from './decision/service.js'
import { SHADOW_NAMESPACE, ShadowDecisions } from './decision/shadow.js'
import { createVerdictSigner, type VerdictSigner } from './decision/signer.js'
import { type Consumer, Health, Supervisor } from './health.js'
import { type KafkaBridge, startKafkaBridge } from './kafka/bridge.js'
import { RELAY_NAMESPACE } from './kafka/relay.js'
import { jwksOf, type KeyList, retiredTokenKeys } from './keys/key-list.js'
import { openServiceKeys } from './keys/service-keys.js'
import type { DocStore } from './store/docs.js'
import type { EventStore, StoredEvent } from './store/port.js'
import { openSqliteDocStore } from './store/sqlite/doc-store.js'
import { openSqliteEventStore } from './store/sqlite/event-store.js'
import { type LedgerTree, openLedgerTree } from './tree/ledger-tree.js'

/** Tells in-process listeners (waiting requests) about each batch the ledger commits. */
export class LedgerTail extends EventEmitter<{ events: [readonly StoredEvent[]] }> {}

export interface Views {
  readonly authority: ProjectionRunner<typeof authority>
  readonly openActions: ProjectionRunner<typeof openActions>
  readonly metrics: ProjectionRunner<typeof metrics>
  readonly audit: ProjectionRunner<typeof audit>
  readonly survival: ProjectionRunner<typeof survival>
}

/** Everything the edges (HTTP, CLI, Kafka) use, opened once and closed once. */
export interface Runtime {
  readonly config: Config
  readonly store: EventStore
  readonly docs: DocStore
  readonly decision: DecisionService
  /** the shadow policy's decisions beside the live ones: counted, never signed nor appended */
  readonly shadow: ShadowDecisions
  readonly views: Views
  /** the RFC 9162 Merkle tree over the ledger, kept in derived.db: tree heads and proofs at any size */
  readonly tree: LedgerTree
  readonly verdictSigner: VerdictSigner
  /** the embedded token key (AUTH_MODE=embedded), to issue tokens locally */
  readonly tokenKey: KeyObject | null
  /**
   * every public key the service signs verdicts and tokens with: the verdict keys, current and retired, and the
   * embedded token keys whose tokens may be alive; never a secret
   */
  readonly jwks: JSONWebKeySet
  /** signs the service's checkpoints, in the name of their origin */
  readonly checkpointSigner: NoteSigner
  /** every public key the service has signed with, current and retired, as the data folder keeps them */
  readonly keyList: KeyList
  readonly verifier: TokenVerifier
  /** the token ids revoked by a policy admin, which every verifier of the service refuses */
  readonly revokedTokens: RevokedTokens
  readonly tail: LedgerTail
  /** what is wrong now: any fault closes the gate and makes /ready answer 503 */
  readonly health: Health
  /** whether the service can vouch for the verdicts in the ledger now */
  readonly gate: Gate
  /** whether this start created the data folder's keys: the first start */
  readonly firstStart: boolean
  /** the relay and the ingress, when KAFKA_BROKERS is set */
  readonly kafka: KafkaBridge | null
  /** cuts and publishes signed checkpoints of the tree: the folder, the Kafka topic, and read by HTTP */
  readonly checkpoints: CheckpointPublisher
  close(): Promise<void>
}

/** Opens the stores and keys; starts nothing that runs in the background. */
/** The ledger the configuration names; derived state always stays in the local data folder. */
export const openLedger = async (config: Config): Promise<EventStore> => {
  switch (config.LEDGER) {
    case 'postgres':
      // each server ledger's client is loaded only when it is the one configured
      return (await import('./store/postgres/event-store.js')).openPostgresEventStore({
        url: String(config.POSTGRES_URL),
        schema: config.POSTGRES_SCHEMA,
      })
    case 'kurrentdb':
      return (await import('./store/kurrentdb/event-store.js')).openKurrentDbEventStore({
        url: String(config.KURRENTDB_URL),
        stream: config.KURRENTDB_STREAM,
      })
    case 'sqlite':
      // a lock another process holds answers the command 503 at once instead of freezing every request
      return openSqliteEventStore({ path: dataPaths(config).ledger, busyTimeoutMs: SQLITE_BUSY_TIMEOUT_MS })
  }
}

export const openRuntime = async (
  config: Config,
): Promise<
  Omit<Runtime, 'close' | 'kafka' | 'gate' | 'checkpoints'> & {
    closeStores(): Promise<void>
    /** each derived.db moved aside at this start, with why */
    setAside: readonly SetAside[]
    /** why a file this process opened can no longer be trusted (deleted, replaced, corrupted), or null */
    filesIntact: () => string | null
  }
> => {
  const paths = dataPaths(config)
  const setAside: SetAside[] = []
  const databases = config.LEDGER === 'sqlite' ? [paths.ledger, paths.derived] : [paths.derived]
  // before the folder is secured, so that the derived.db replacing a corrupted one is created private too
  const corrupted = setAsideIfNotSqlite(paths.derived)
  if (corrupted) setAside.push({ path: corrupted, reason: 'derived.db was not a SQLite database' })
  secureDataFolder(config.DATA_DIR, Object.values(paths), databases)
  const store = await openLedger(config)
  const openDerived = () => openSqliteDocStore(paths.derived, { busyTimeoutMs: SQLITE_BUSY_TIMEOUT_MS })
  const openTree = () => openLedgerTree(paths.derived, store, { busyTimeoutMs: SQLITE_BUSY_TIMEOUT_MS })
  let docs = openDerived()
  let tree = openTree()
  const ahead = derivedAheadOf(docs, tree, (await store.head()).position)
  if (ahead) {
    docs.close()
    tree.close()
    setAside.push({ path: moveAside(paths.derived, 'ahead'), reason: ahead })
    secureDataFolder(config.DATA_DIR, Object.values(paths), databases)
    docs = openDerived()
    tree = openTree()
  }
  const probes = [
    fileIntact(paths.derived, 'derived.db'),
    ...(config.LEDGER === 'sqlite' ? [fileIntact(paths.ledger, 'ledger.db')] : []),
  ]
  const keys = openServiceKeys(config)
  const verdictSigner = createVerdictSigner(keys.verdict)
  const revokedTokens = new RevokedTokens(config.AUTH_MAX_TOKEN_LIFETIME)
  return {
    config,
    store,
    docs,
    decision: new DecisionService(store, docs, verdictSigner),
    shadow: new ShadowDecisions(store, docs),
    views: {
      authority: new ProjectionRunner(store, docs, authority),
      openActions: new ProjectionRunner(store, docs, openActions),
      metrics: new ProjectionRunner(store, docs, metrics),
      audit: new ProjectionRunner(store, docs, audit),
      survival: new ProjectionRunner(store, docs, survival),
    },
    tree,
    verdictSigner,
    tokenKey: keys.token,
    jwks: jwksOf(keys.list, new Date(), config.AUTH_MAX_TOKEN_LIFETIME),
    checkpointSigner: keys.checkpoint,
    keyList: keys.list,
    verifier: createTokenVerifier(config, verifierKeys(config, keys.token, retiredTokenKeys(keys.list)), {
      revoked: revokedTokens,
    }),
    revokedTokens,
    tail: new LedgerTail(),
    health: new Health(),
    filesIntact: () => probes.map((probe) => probe()).find((reason) => reason !== null) ?? null,
    firstStart: keys.created,
    setAside,
    closeStores: async () => {
      await store.close()
      docs.close()
      tree.close()
    },
  }
}

/**
 * How long the service lets a lock on ledger.db or derived.db held by another process block it before the
 * statement fails: a command then answers 503, a consumer stops (the gate closes) and is retried with backoff,
 * instead of every request freezing behind the lock.
 */
const SQLITE_BUSY_TIMEOUT_MS = 250
const SQLITE_HEADER = 'SQLite format 3\0'

/** The first bytes of a file, or null when it has none (a database SQLite has not written yet). */
const headerOf = (path: string): string | null => {
  const fd = openSync(path, 'r')
  try {
    const header = Buffer.alloc(SQLITE_HEADER.length)
    const read = readSync(fd, header, 0, header.length, 0)
    return read === 0 ? null : header.subarray(0, read).toString('latin1')
  } finally {
    closeSync(fd)
  }
}

/** A derived.db moved aside at start, and why: it is rebuilt from the ledger. */
export interface SetAside {
  readonly path: string
  readonly reason: string
}

/** Moves a SQLite file aside, with its journal files; returns where it went. */
const moveAside = (path: string, why: string): string => {
  const aside = `${path}.${why}-${new Date().toISOString().replaceAll(':', '-')}`
  renameSync(path, aside)
  for (const journal of ['-wal', '-shm']) rmSync(`${path}${journal}`, { force: true })
  return aside
}

/** A derived.db that is not a SQLite database (corrupted) is moved aside; returns where it went, or null. */
const setAsideIfNotSqlite = (path: string): string | null => {
  let header: string | null
  try {
    header = headerOf(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
  return header === null || header === SQLITE_HEADER ? null : moveAside(path, 'corrupt')
}

/** Every namespace of derived.db that keeps a checkpoint in the ledger. */
const DERIVED_NAMESPACES = [
  DECISION_NAMESPACE,
  SHADOW_NAMESPACE,
  RELAY_NAMESPACE,
  ...[authority, openActions, metrics, audit].map((p) => p.name),
]

/**
 * Derived state checkpointed beyond the ledger's head was derived from another ledger (a ledger.db deleted
 * or restored from a backup, another database named): kept, the decision service would skip the ledger's
 * new events up to its checkpoint and judge the rest against a world the ledger does not hold; the Merkle tree
 * would commit to events the ledger does not hold. Why, or null.
 */
const derivedAheadOf = (docs: DocStore, tree: LedgerTree, head: number): string | null => {
  const positions = [...DERIVED_NAMESPACES.map((ns) => docs.checkpoint(ns)), tree.size()]
  const at = Math.max(...positions)
  if (at <= head) return null
  return `derived.db was checkpointed at position ${at}, beyond the ledger's head ${head}: it was derived from another ledger`
}

/**
 * A probe of a SQLite file this process opened: deleted, replaced or overwritten while serving, what the
 * service holds no longer matches what a restart would read, so nothing it holds may open the gate.
 */
const fileIntact = (path: string, name: string): (() => string | null) => {
  const opened = statSync(path)
  return () => {
    try {
      const now = statSync(path)
      if (now.ino !== opened.ino || now.dev !== opened.dev) return `${name} was replaced while serving`
      return headerOf(path) === SQLITE_HEADER
        ? null
        : `${name} is corrupted: it is no longer a SQLite database`
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      return code === 'ENOENT' ? `${name} was deleted while serving` : `${name} cannot be read (${code})`
    }
  }
}

/** How long the shadow decisions wait before they follow the ledger again after a failure. */
const SHADOW_RETRY_MS = 5_000

/**
 * Follows the ledger with the shadow decisions, apart from the supervisor: they decide nothing the service
 * answers with, so their failure is logged and retried but never closes the gate.
 */
const followShadow = (shadow: ShadowDecisions, log: Logger): { close(): Promise<void> } => {
  let closed = false
  let timer: NodeJS.Timeout | undefined
  const follow = () => {
    shadow.start().done.catch((error: unknown) => {
      log.error({ err: error }, 'the shadow policy decisions stopped: following the ledger again shortly')
      if (!closed) timer = setTimeout(follow, SHADOW_RETRY_MS).unref()
    })
  }
  follow()
  return {
    close: async () => {
      closed = true
      clearTimeout(timer)
      await shadow.stop()
    },
  }
}

export interface RuntimeOptions {
  /**
   * Called once when the service cannot go on (a consumer keeps failing, derived.db is gone): the gate is
   * closed already; `serve` stops the process for its supervisor to restart it.
   */
  readonly onFatal?: (reason: string) => void
}

/** The consumer that tells waiting requests and the revocation list about each committed batch. */
const TAIL = 'ledger tail'

/** How often the checkpoint publisher asks whether a cut is due. */
const CHECKPOINT_TICK_MS = 1_000

/** How often the derived state's probe is asked even when no request asks. */
const WATCHDOG_MS = 1_000

/** Opens everything, catches the derived state up with the ledger, then follows it live. */
export const startRuntime = async (
  config: Config,
  log: Logger,
  options: RuntimeOptions = {},
): Promise<Runtime> => {
  const { closeStores, setAside, filesIntact, ...runtime } = await openRuntime(config)
  const { store, decision, views, tree, tail, health } = runtime
  health.probe('data files', filesIntact)
  const ownKeys =
    config.VERDICT_KEY_FILE === undefined ||
    (config.AUTH_MODE === 'embedded' && config.TOKEN_KEY_FILE === undefined)
  if (config.LEDGER !== 'sqlite' && ownKeys)
    log.warn(
      'a server ledger is shared by instances: give each the same VERDICT_KEY_FILE (and TOKEN_KEY_FILE with embedded tokens), or each signs verdicts and tokens with keys of its own that the others do not list',
    )
  for (const { path, reason } of setAside)
    log.warn({ setAside: path }, `${reason}: set aside, rebuilding from the ledger`)
  let fatal = false
  const onFatal = (reason: string) => {
    if (fatal) return
    fatal = true
    health.fault('service', `cannot go on: ${reason}`)
    log.fatal({ reason }, 'the service cannot go on')
    options.onFatal?.(reason)
  }
  const readModels = config.READ_MODELS
  // the decision world is kept as every view is, off the request path; the decisions themselves are made on the
  // write path, in the group commit that appends what they answer. An instance keeping no read models keeps the
  // decision world alone: what it needs to decide.
  const runners = readModels ? [decision.runner, ...Object.values(views)] : [decision.runner]
  let tailAt = (await store.head()).position
  const consumers: Consumer[] = [
    {
      name: 'projections',
      start: async () => {
        await catchUpAll(store, runners)
        return followAll(store, runners)
      },
    },
    ...(readModels
      ? [
          {
            name: 'Merkle tree',
            start: async () => {
              await tree.catchUp((reason) =>
                log.warn({ reason }, 'Merkle tree dropped: rebuilding it from the ledger'),
              )
              return tree.follow()
            },
          },
        ]
      : []),
    {
      name: TAIL,
      start: async () =>
        store.subscribe(tailAt, async (batch) => {
          tailAt = batch.at(-1)?.position ?? tailAt
          tail.emit('events', batch)
        }),
    },
  ]
  const supervisor = new Supervisor({
    health,
    log,
    giveUpAfterMs: config.RECOVERY_MAX_SECONDS * 1000,
    onFatal,
  })
  // the first start fails the start itself: nothing is served before the derived state is caught up
  for (const consumer of consumers) supervisor.watch(consumer, await consumer.start())
  // from now on every append is answered in its own commit; what the ledger left unanswered is answered now
  store.answerWith(decision)
  try {
    await resumeDecisions(store, (await unansweredNearHead(store, decision.runner)).unanswered, log)
  } catch (error) {
    // what stays unanswered keeps the verdict it had, which never opens the gate by itself
    log.error({ err: error }, 'the check for unanswered events near the head failed: nothing was resumed')
  }
  const shadow = readModels ? followShadow(runtime.shadow, log) : null
  if (!readModels)
    log.info(
      'READ_MODELS=false: this instance decides and answers commands; its reads of read models answer 503',
    )
  await followRevocations(store, runtime.revokedTokens, (listener) => tail.on('events', listener))
  // revocations arrive through the ledger tail: while it has stopped, a revoked token could pass
  runtime.revokedTokens.unsureBecause = () => health.faultOf(TAIL)
  // every event is answered in the commit that appends it: the verdicts in the ledger are current by construction
  const gate: Gate = { closedBecause: async () => health.reason() }
  const watchdog = setInterval(() => {
    // a data file gone or overwritten cannot mend while this process holds the old one open
    const reason = filesIntact()
    if (reason) onFatal(reason)
  }, WATCHDOG_MS)
  watchdog.unref()
  const scheduler = setInterval(() => {
    const now = new Date()
    appendDueNotices(store, decision.world().deadlines(now.toISOString()), now).catch((error: unknown) =>
      log.error({ err: error }, 'the deadline scheduler failed'),
    )
  }, config.SCHEDULER_INTERVAL_MS)
  scheduler.unref()
  const kafka = config.KAFKA_BROKERS ? await startKafkaBridge(config, { ...runtime, log }) : null
  const checkpoints = new CheckpointPublisher(
    tree,
    runtime.checkpointSigner,
    checkpointOrigin(config),
    new CheckpointFolder(checkpointDir(config)),
    { everyEvents: config.CHECKPOINT_EVERY_EVENTS, everySeconds: config.CHECKPOINT_EVERY_SECONDS },
    kafka ? [kafka.publishCheckpoint] : [],
    log.child({ component: 'checkpoints' }),
  )
  // checkpoints are cut from the Merkle tree, kept with the read models
  const cutter = readModels
    ? setInterval(() => {
        checkpoints.tick().catch((error: unknown) => log.error({ err: error }, 'no checkpoint could be cut'))
      }, CHECKPOINT_TICK_MS)
    : undefined
  cutter?.unref()
  if (kafka) {
    // verdicts and revocations that do not reach the broker, or proposals not taken from it: not all is well
    const { relay, ingress } = kafka
    supervisor.watch({ name: 'Kafka relay', start: async () => relay.start() }, relay.start())
    health.probe('Kafka relay', () => relay.failure)
    health.probe('Kafka ingress', () => ingress.failure)
  }
  let closed: Promise<void> | null = null
  return {
    ...runtime,
    gate,
    kafka,
    checkpoints,
    close: () => {
      closed ??= (async () => {
        clearInterval(scheduler)
        clearInterval(watchdog)
        clearInterval(cutter)
        // no consumer is restarted once closing began
        await supervisor.close()
        await shadow?.close()
        // the last events get a checkpoint of their own before the service stops: the tree, no longer
        // following the ledger, first takes the events it was not yet given
        if (readModels)
          await tree
            .catchUp()
            .then(() => checkpoints.tick(Date.now(), true))
            .catch((error: unknown) => log.error({ err: error }, 'no checkpoint could be cut at stop'))
        await kafka?.close()
        await closeStores()
      })()
      return closed
    },
  }
}
