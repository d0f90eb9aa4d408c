// Decisions/s of one, two and three service instances serving one PostgreSQL ledger, the same autocannon load
// split between them, in interleaved rounds; and one instance on the PostgreSQL ledger against one on the
// embedded SQLite ledger under the same load. The instances share the verdict and token keys (the first
// instance's keys folder copied into the others' data folders before they start), so a token the bench issues
// is taken by every one of them.
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { type Load, loadDecisions, notAllowed, unexpected } from './decisions.js'
import { type BenchOptions, type Figure, fmt, median, progress, ratioAtLeast, reported } from './lib.js'
import {
  decideOnce,
  type Phase,
  type Principals,
  preparePhase,
  principals,
  type Service,
  seedLowImpactWorld,
  startService,
} from './service.js'

const CONNECTIONS = 32
/** seconds of load on an instance just started, before it is measured: its code compiled, its caches filled */
const WARM_UP_SECONDS = 2
/** a server where the bench may create a database (dropped at the end) */
const ADMIN_URL = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/**
 * The instances on the PostgreSQL ledger: the first two keep the read models, the last two keep none
 * (READ_MODELS=false: they decide and answer commands, and follow the ledger with their decision world alone).
 */
const SLOTS = [{ readModels: true }, { readModels: true }, { readModels: false }, { readModels: false }]
/** Each configuration: the slots running, the load split evenly between them (sqlite: its own service). */
const CONFIGURATIONS = {
  sqlite: [],
  'postgres-1': [0],
  'postgres-2': [0, 1],
  'postgres-2-deciding': [0, 2],
  'postgres-3-deciding': [0, 2, 3],
} as const satisfies Record<string, readonly number[]>
type Configuration = keyof typeof CONFIGURATIONS
const NAMES = Object.keys(CONFIGURATIONS) as Configuration[]

const admin = async (work: (client: pg.Client) => Promise<unknown>): Promise<void> => {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    await work(client)
  } finally {
    await client.end()
  }
}

/** A new empty database for this run, its URL, and how to drop it. */
const freshDatabase = async (): Promise<{ url: string; drop(): Promise<void> }> => {
  const name = `bench_instances_${randomBytes(6).toString('hex')}`
  try {
    await admin((c) => c.query(`CREATE DATABASE ${name}`))
  } catch (error) {
    const server = new URL(ADMIN_URL)
    server.password = ''
    const why = error instanceof Error ? error.message : String(error)
    throw new Error(`no database could be created on ${server} (set POSTGRES_URL): ${why}`)
  }
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  }
}

/**
 * The instances on the PostgreSQL ledger: the first one always running, the others started when a configuration
 * needs them (each on its own data folder, keys copied from the first) and stopped when it does not, so that a
 * configuration of n instances runs n processes, no idle follower besides.
 */
class Instances {
  private readonly running: (Service | null)[]
  /** seconds from spawn to ready of every start after the first, catch-up of the ledger included */
  readonly restarts: number[] = []

  private constructor(
    readonly first: Service,
    private readonly dirs: readonly string[],
    private readonly env: Readonly<Record<string, string>>,
    readonly who: Principals,
  ) {
    this.running = dirs.map((_, i) => (i === 0 ? first : null))
  }

  /** Starts the first instance, seeds the world through it, and gives the others its keys. */
  static async open(dirs: readonly string[], env: Readonly<Record<string, string>>): Promise<Instances> {
    const first = await startService(dirs[0] as string, 60_000, env)
    try {
      const who = await principals(first)
      await seedLowImpactWorld(first, who)
      // the verdict, token and checkpoint keys and the key list: the same keys on every instance
      for (const dir of dirs.slice(1))
        cpSync(join(first.dataDir, 'keys'), join(dir, 'keys'), { recursive: true })
      return new Instances(first, dirs, env, who)
    } catch (error) {
      await first.stop()
      throw error
    }
  }

  /** Exactly the instances of these slots running: the others stopped, those missing started. */
  async use(slots: readonly number[]): Promise<{ services: Service[]; started: Service[] }> {
    for (let i = 0; i < this.running.length; i += 1) {
      if (slots.includes(i)) continue
      await this.running[i]?.stop()
      this.running[i] = null
    }
    const started: Service[] = []
    for (const i of slots) {
      if (this.running[i]) continue
      const env = { ...this.env, READ_MODELS: String(SLOTS[i]?.readModels ?? true) }
      const svc = await startService(this.dirs[i] as string, 120_000, env)
      this.running[i] = svc
      this.restarts.push(svc.readyAfterMs / 1000)
      started.push(svc)
    }
    return { services: slots.map((i) => this.running[i]) as Service[], started }
  }

  /** A fresh phase, prepared through the first instance, that every instance running allows. */
  async phase(tag: string): Promise<Phase> {
    const phase = await preparePhase(this.first, this.who, tag)
    for (const svc of this.running) {
      if (!svc) continue
      const { decision } = await decideOnce(svc.url, this.who.agent, phase.body)
      if (decision !== 'allow') throw new Error(`instances: ${svc.url} decided ${decision} on phase ${tag}`)
    }
    return phase
  }

  /** Load on the instances just started, alone, before they are measured: code compiled, caches filled. */
  async warmUp(started: readonly Service[], phase: Phase): Promise<void> {
    if (started.length === 0) return
    const urls = started.map((s) => s.url)
    await loadDecisions(urls, this.who.agent, phase.body, WARM_UP_SECONDS, CONNECTIONS)
  }

  async stop(): Promise<void> {
    await Promise.all(this.running.map((svc) => svc?.stop()))
  }
}

export const instancesFigure = async (options: BenchOptions): Promise<Figure[]> => {
  const seconds = options.quick ? 4 : 10
  const rounds = options.quick ? 2 : 3
  const database = await freshDatabase()
  const dirs = [...SLOTS.keys(), SLOTS.length].map((i) =>
    mkdtempSync(join(tmpdir(), `bench-instances-${i}-`)),
  )
  let instances: Instances | null = null
  let sqlite: Service | null = null
  try {
    const env = { LEDGER: 'postgres', POSTGRES_URL: database.url }
    progress(
      'instances: starting one instance on a fresh PostgreSQL database and one on SQLite, seeding both',
    )
    instances = await Instances.open(dirs.slice(0, SLOTS.length), env)
    sqlite = await startService(dirs[SLOTS.length] as string)
    const sqliteWho = await principals(sqlite)
    await seedLowImpactWorld(sqlite, sqliteWho)
    const sqliteWarm = await preparePhase(sqlite, sqliteWho, 'warm-up')
    await loadDecisions([sqlite.url], sqliteWho.agent, sqliteWarm.body, WARM_UP_SECONDS, CONNECTIONS)
    // every instance started once before the rounds: the keys shared, the catch-up of the others checked
    const { started } = await instances.use([...SLOTS.keys()])
    await instances.warmUp([instances.first, ...started], await instances.phase('warm-up'))

    progress(
      `instances: ${rounds} rounds of ${seconds} s per configuration (${NAMES.join(', ')}), ${CONNECTIONS} connections`,
    )
    const rates = new Map<Configuration, number[]>(NAMES.map((c) => [c, []]))
    const loads: Load[] = []
    for (let round = 1; round <= rounds; round += 1) {
      for (const configuration of NAMES) {
        const tag = `r${round}-${configuration}`
        let load: Load
        if (configuration === 'sqlite') {
          const phase = await preparePhase(sqlite, sqliteWho, tag)
          load = await loadDecisions([sqlite.url], sqliteWho.agent, phase.body, seconds, CONNECTIONS)
        } else {
          const { services, started } = await instances.use(CONFIGURATIONS[configuration])
          const phase = await instances.phase(tag)
          await instances.warmUp(started, phase)
          const urls = services.map((s) => s.url)
          load = await loadDecisions(urls, instances.who.agent, phase.body, seconds, CONNECTIONS)
        }
        loads.push(load)
        rates.get(configuration)?.push(load.rate)
        const besides = unexpected(load)
        progress(
          `  round ${round}/${rounds} ${configuration}: ${fmt(load.rate)} decisions/s${besides ? ` (${besides})` : ''}`,
        )
      }
    }

    const roundsOf = (c: Configuration) => rates.get(c) ?? []
    const medianOf = (c: Configuration) => median(roundsOf(c))
    const trend = NAMES.map((c) => `${c} ${fmt(roundsOf(c)[0])} -> ${fmt(roundsOf(c).at(-1))}`).join(', ')
    const restarts = instances.restarts
    const how = `${rounds} rounds of ${seconds} s, configurations interleaved in each round (${NAMES.join(', ')}; -deciding: the instances after the first keep no read models, READ_MODELS=false); autocannon, ${CONNECTIONS} connections in all, each looping POST /v1/proposals?wait (one request, answered 201 with the verdict; a low-impact allow), split evenly across the instances of a configuration; each configuration on a fresh identity, grant and observation; a configuration of n instances runs n processes (the others stopped, started again with the first one's keys when needed: ${restarts.length} starts, ready after ${fmt(median(restarts))} s median, then ${WARM_UP_SECONDS} s of warm-up load before they are measured); the instances, PostgreSQL and autocannon share the machine's cores; ${notAllowed(loads)} blocks, other answers or errors in all rounds`
    const one = medianOf('postgres-1')
    return [
      ratioAtLeast(
        {
          name: 'decisions/s, 1 instance on PostgreSQL vs SQLite',
          value: one,
          unit: 'decisions/s',
          baseline: `one instance on the embedded SQLite ledger, the same load (decisions/s)`,
          baselineValue: medianOf('sqlite'),
          note: how,
          rounds: { measured: roundsOf('postgres-1'), baseline: roundsOf('sqlite') },
        },
        0.7,
      ),
      ratioAtLeast(
        {
          name: 'decisions/s, 2 instances on one PostgreSQL ledger, the second keeping no read models',
          value: medianOf('postgres-2-deciding'),
          unit: 'decisions/s',
          baseline: 'one instance on the same PostgreSQL ledger, the same load (decisions/s)',
          baselineValue: one,
          note: how,
          rounds: { measured: roundsOf('postgres-2-deciding'), baseline: roundsOf('postgres-1') },
        },
        0.95,
      ),
      reported({
        name: 'decisions/s, 2 instances on one PostgreSQL ledger, each keeping the read models',
        value: medianOf('postgres-2'),
        unit: 'decisions/s',
        baseline: 'one instance on the same PostgreSQL ledger, the same load (decisions/s)',
        baselineValue: one,
        note: how,
        rounds: { measured: roundsOf('postgres-2'), baseline: roundsOf('postgres-1') },
      }),
      reported({
        name: 'decisions/s, 3 instances on one PostgreSQL ledger, two keeping no read models',
        value: medianOf('postgres-3-deciding'),
        unit: 'decisions/s',
        baseline: 'one instance on the same PostgreSQL ledger, the same load (decisions/s)',
        baselineValue: one,
        note: how,
        rounds: { measured: roundsOf('postgres-3-deciding'), baseline: roundsOf('postgres-1') },
      }),
      reported({
        name: 'decisions/s over rounds, 1 instance on PostgreSQL: last round',
        value: roundsOf('postgres-1').at(-1) ?? Number.NaN,
        unit: 'decisions/s',
        baseline: 'the first round of the same configuration (decisions/s)',
        baselineValue: roundsOf('postgres-1')[0] ?? Number.NaN,
        note: `first -> last round of every configuration: ${trend}; the PostgreSQL ledger grows by every round of every configuration`,
      }),
    ]
  } finally {
    await Promise.all([instances?.stop(), sqlite?.stop()])
    await database.drop()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  }
}
