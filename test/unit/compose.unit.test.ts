import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { parse } from 'yaml'
import { COMMAND_NAMES } from '../../src/cli/args.js'
import { ConfigSchema, loadConfig } from '../../src/config.js'

// No Docker engine runs here: these read the files and check that they agree with each other and with the
// service's configuration, which is what a user's `docker compose up` depends on.

const text = (name: string) => readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8')

/** Compose's variable interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $$. */
const interpolate = (value: string, vars: Readonly<Record<string, string>>): string =>
  value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
    (whole, name, colon, op, arg) => {
      if (whole === '$$') return '$'
      const set = vars[name]
      const missing = set === undefined || (colon === ':' && set === '')
      if (!missing) return set as string
      if (op === '-') return arg
      if (op === '?') throw new Error(`${name}: ${arg}`)
      return ''
    },
  )

const interpolateAll = (node: unknown, vars: Readonly<Record<string, string>>): unknown => {
  if (typeof node === 'string') return interpolate(node, vars)
  if (Array.isArray(node)) return node.map((n) => interpolateAll(n, vars))
  if (node && typeof node === 'object')
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateAll(v, vars)]))
  return node
}

interface Service {
  image?: string
  build?: unknown
  environment?: Record<string, string | number | boolean | null> | string[]
  ports?: Array<string | { target: number; published?: string | number }>
  volumes?: Array<string | { type?: string; source?: string; target: string }>
  depends_on?: Record<string, { condition?: string }> | string[]
  healthcheck?: { test?: string[] | string }
}

interface ComposeFile {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
}

const raw = parse(text('docker-compose.yml')) as ComposeFile
const compose = interpolateAll(raw, { POSTGRES_PASSWORD: 's3cretpassword' }) as ComposeFile

const service = (name: string): Service => {
  const found = compose.services[name]
  assert.ok(found, `the compose file has a ${name} service`)
  return found
}

/** The environment as a map of strings, as the container gets it. */
const envOf = (s: Service): Record<string, string> => {
  const env = s.environment ?? {}
  if (Array.isArray(env))
    return Object.fromEntries(env.map((line) => [line.split('=')[0], line.split('=').slice(1).join('=')]))
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]))
}

/** Container ports and where they are published, from the short or long syntax. */
const portsOf = (s: Service): Array<{ host: string | null; published: number; container: number }> =>
  (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { host: null, published: Number(p.published), container: p.target }
    const parts = p.replace(/\/(tcp|udp)$/, '').split(':')
    const container = Number(parts.at(-1))
    const published = Number(parts.at(-2) ?? container)
    return { host: parts.length === 3 ? (parts[0] ?? null) : null, published, container }
  })

const ledger = service('governance-ledger')
const env = envOf(ledger)

describe('docker-compose.yml: the service', () => {
  it('runs the service, Kafka, KurrentDB and PostgreSQL 16', () => {
    assert.ok(ledger.build, 'the service is built from the Dockerfile')
    assert.match(service('kafka').image ?? '', /^apache\/kafka:4\.\d+\.\d+$/)
    assert.match(service('kurrentdb').image ?? '', /^(kurrentplatform\/kurrentdb|eventstore\/eventstore):/)
    assert.match(service('postgres').image ?? '', /^postgres:16(\.|$|-)/)
  })

  it('gives the service only known configuration variables', () => {
    const known = new Set(Object.keys(ConfigSchema.shape))
    const unknown = Object.keys(env).filter((k) => !known.has(k))
    assert.deepEqual(unknown, [], `not in ConfigSchema (src/config.ts): ${unknown.join(', ')}`)
  })

  it('gives it a configuration that parses, listening on every interface', () => {
    const config = loadConfig(env)
    const parsed = ConfigSchema.safeParse(env)
    assert.ok(parsed.success, parsed.success ? '' : parsed.error.message)
    assert.equal(config.HOST, '0.0.0.0')
    assert.equal(config.AUTH_MODE, 'embedded')
  })

  it('publishes the port it listens on, and checks its health there', () => {
    const { PORT } = loadConfig(env)
    const ports = portsOf(ledger)
    assert.deepEqual(
      ports.map((p) => p.container),
      [PORT],
    )
    const test = [ledger.healthcheck?.test ?? []].flat().join(' ')
    assert.ok(test.includes(`http://127.0.0.1:${PORT}/ready`), test)
  })

  it('keeps DATA_DIR on a named volume', () => {
    const { DATA_DIR } = loadConfig(env)
    const mounts = (ledger.volumes ?? []).map((v) =>
      typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v,
    )
    const data = mounts.find((m) => m.target === DATA_DIR)
    assert.ok(data?.source, `a volume mounted at ${DATA_DIR}`)
    assert.ok(Object.hasOwn(compose.volumes ?? {}, data.source), `${data.source} is a named volume`)
  })

  it('starts only once Kafka, PostgreSQL and KurrentDB are healthy, and each of them has a health check', () => {
    const depends = ledger.depends_on
    assert.ok(depends && !Array.isArray(depends))
    for (const name of ['kafka', 'postgres', 'kurrentdb']) {
      assert.equal(depends[name]?.condition, 'service_healthy', name)
      assert.ok(service(name).healthcheck?.test, `${name} has a health check`)
    }
  })

  it('refuses to start without a PostgreSQL password rather than use a default one', () => {
    assert.throws(() => interpolateAll(raw, {}), /POSTGRES_PASSWORD/)
  })
})

describe('docker-compose.yml: the addresses in the service environment', () => {
  it('KAFKA_BROKERS points at the kafka service on the listener it advertises to the compose network', () => {
    const kafka = envOf(service('kafka'))
    const advertised = (kafka.KAFKA_ADVERTISED_LISTENERS ?? '').split(',').map((l) => new URL(l))
    const brokers = (env.KAFKA_BROKERS ?? '').split(',')
    assert.ok(brokers.length > 0 && brokers[0] !== '')
    for (const broker of brokers) {
      const [host, port] = broker.split(':')
      assert.equal(host, 'kafka')
      assert.ok(
        advertised.some((l) => l.hostname === 'kafka' && l.port === port),
        `kafka advertises kafka:${port}`,
      )
    }
    const listeners = (kafka.KAFKA_LISTENERS ?? '')
      .split(',')
      .map((l) => new URL(l.replace('://:', '://0.0.0.0:')))
    for (const l of advertised)
      assert.ok(
        listeners.some((x) => x.protocol === l.protocol && x.port === l.port),
        `listens on ${l.href}`,
      )
    assert.equal(Number(loadConfig(env).KAFKA_REPLICATION_FACTOR ?? 1), 1, 'one broker: replication factor 1')
  })

  it('POSTGRES_URL points at the postgres service, its port, user, password and database', () => {
    const postgres = envOf(service('postgres'))
    const url = new URL(env.POSTGRES_URL ?? '')
    assert.equal(url.protocol, 'postgres:')
    assert.equal(url.hostname, 'postgres')
    assert.equal(url.port || '5432', postgres.PGPORT ?? '5432')
    assert.equal(url.username, postgres.POSTGRES_USER)
    assert.equal(decodeURIComponent(url.password), postgres.POSTGRES_PASSWORD)
    assert.equal(url.pathname, `/${postgres.POSTGRES_DB}`)
  })

  it('KURRENTDB_URL points at the kurrentdb service and its node port, without TLS as the node runs insecure', () => {
    const kurrent = envOf(service('kurrentdb'))
    const url = new URL(env.KURRENTDB_URL ?? '')
    assert.equal(url.hostname, 'kurrentdb')
    assert.equal(url.port, kurrent.KURRENTDB_NODE_PORT ?? '2113')
    assert.equal(kurrent.KURRENTDB_INSECURE, 'true')
    assert.equal(url.searchParams.get('tls'), 'false')
  })

  it('publishes the backing services on loopback only', () => {
    for (const name of ['kafka', 'postgres', 'kurrentdb']) {
      for (const p of portsOf(service(name))) assert.equal(p.host, '127.0.0.1', `${name} ${p.published}`)
    }
  })
})

describe('Dockerfile', () => {
  const dockerfile = text('Dockerfile')

  it('builds on node:20-slim, installs without dev dependencies, compiles, and runs the compiled CLI serve command', () => {
    const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1])
    assert.ok(bases.length > 0 && bases.every((b) => b === 'node:20-slim'), bases.join(', '))
    assert.match(dockerfile, /npm ci --omit=dev/)
    assert.match(
      dockerfile,
      /^COPY scripts\/build\.mjs scripts\/build-console\.mjs \.\/scripts\/\nRUN node scripts\/build\.mjs$/m,
    )
    // the compiler is a runtime dependency, so the production install has it
    const pkg = JSON.parse(text('package.json')) as {
      dependencies: Record<string, string>
      scripts: Record<string, string>
    }
    assert.ok(pkg.dependencies.esbuild, 'esbuild is a dependency')
    assert.ok(pkg.dependencies.uplot, 'the console bundles uPlot at build time: a dependency')
    assert.match(
      dockerfile,
      /^ENTRYPOINT \["node", "--max-old-space-size=128", "dist\/src\/cli\/run\.js"\]$/m,
    )
    assert.match(
      pkg.scripts.start ?? '',
      / node --max-old-space-size=128 dist\/src\/main\.js$/,
      'npm start, the same heap',
    )
    assert.match(dockerfile, /^CMD \["serve"\]$/m)
    assert.match(dockerfile, /^USER node$/m)
  })

  it('exposes the port and data folder the compose file uses', () => {
    const { PORT, DATA_DIR } = loadConfig(env)
    assert.match(dockerfile, new RegExp(`^EXPOSE ${PORT}$`, 'm'))
    assert.match(dockerfile, new RegExp(`DATA_DIR=${DATA_DIR}`))
  })

  it('copies every folder the service imports at run time, and the console it bundles', () => {
    for (const folder of ['bin', 'src', 'projections', 'console'])
      assert.match(dockerfile, new RegExp(`^COPY ${folder} \\./${folder}$`, 'm'))
  })
})

describe('docs/operations.md', () => {
  const doc = text('docs/operations.md')
  const documented = new Set([...doc.matchAll(/^\| `([A-Z0-9_]+)` +\|/gm)].map((m) => m[1]))

  it('documents every configuration variable, and every variable the compose file sets', () => {
    const missing = [...Object.keys(ConfigSchema.shape), ...Object.keys(env)].filter(
      (k) => !documented.has(k),
    )
    assert.deepEqual([...new Set(missing)], [], 'add them to the configuration table')
  })

  it('documents every command of the command line', () => {
    for (const name of COMMAND_NAMES) assert.ok(doc.includes(`| \`${name}`), name)
  })
})
