// The real service as a child process (`node dist/src/main.js`, built once per run), as `npm start` runs it: a data
// folder, embedded auth, warn-level logs, a free port. And the bare Fastify echo server the HTTP figures compare with.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { issueToken, loadPrivateKey, type Role } from '../src/auth/tokens.js'
import { loadConfig } from '../src/config.js'
import { defaultPolicy, trackRequirement } from '../src/domain/eligibility.js'
import { now, rssMb, sleep } from './lib.js'

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')

/** A port nobody listens on now. */
export const freePort = (): Promise<number> =>
  new Promise((done, fail) => {
    const server = createServer()
    server.unref()
    server.on('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address !== null ? done(address.port) : fail(new Error('no port')),
      )
    })
  })

/**
 * Node flags for the children: BENCH_CPU_PROF=DIR profiles each child into DIR (written when it exits);
 * BENCH_NODE_FLAGS adds more, separated by spaces (--trace-gc, say: its lines are in the child's output).
 */
const nodeFlags = (): string[] => {
  const dir = process.env.BENCH_CPU_PROF
  const more = (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter((flag) => flag !== '')
  return [...(dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []), ...more]
}

export interface Child {
  readonly url: string
  readonly pid: number
  output(): string
  /** SIGTERM, then SIGKILL after a grace period */
  stop(): Promise<void>
}

/** Compiles the sources once per run, as `npm start` does before it starts the service. */
let built = false
const buildOnce = (): void => {
  if (built) return
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' })
  built = true
}

/** The node arguments of `npm start` after its build step, read from package.json, so the bench runs the same. */
const startArgs = (): string[] => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const run = pkg.scripts.start.split('&&').at(-1)?.trim().split(/\s+/) ?? []
  if (run[0] !== 'node') throw new Error(`npm start does not end by running node: ${pkg.scripts.start}`)
  return run.slice(1)
}

const launch = async (
  args: string[],
  env: Record<string, string>,
  url: string,
  readyPath: string,
  timeoutMs: number,
): Promise<{ child: Child; readyAfterMs: number }> => {
  const started = now()
  const proc: ChildProcess = spawn(process.execPath, [...nodeFlags(), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  const keep = (chunk: string) => {
    log = (log + chunk).slice(-20_000)
  }
  proc.stdout?.setEncoding('utf8').on('data', keep)
  proc.stderr?.setEncoding('utf8').on('data', keep)
  const exited = new Promise<void>((done) => proc.once('exit', () => done()))
  const reap = () => proc.kill('SIGKILL')
  process.once('exit', reap)
  const child: Child = {
    url,
    pid: proc.pid ?? -1,
    output: () => log,
    stop: async () => {
      process.off('exit', reap)
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
    },
  }
  for (;;) {
    // a crash (out of memory: SIGABRT) ends it with a signal and no exit code
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(
        `node ${args.join(' ')} exited with ${proc.exitCode ?? proc.signalCode}:\n${log.slice(-3000)}`,
      )
    try {
      const response = await fetch(`${url}${readyPath}`, { signal: AbortSignal.timeout(2000) })
      if (response.status === 200) return { child, readyAfterMs: now() - started }
    } catch {
      // not listening yet
    }
    if (now() - started > timeoutMs) {
      await child.stop()
      throw new Error(`node ${args.join(' ')} was not ready within ${timeoutMs} ms:\n${log.slice(-3000)}`)
    }
    await sleep(50)
  }
}

export interface Service extends Child {
  readonly dataDir: string
  /** from spawn to the first 200 on /ready: start-up, and catch-up of the decision service and projections */
  readonly readyAfterMs: number
  tokenFor(sub: string, ...roles: Role[]): Promise<string>
  rssMb(): number
}

/**
 * Starts the service on `dataDir` (created, or holding a ledger already) and waits until it is ready. `ledger`
 * adds settings, e.g. LEDGER=postgres with POSTGRES_URL and POSTGRES_SCHEMA; the default is the SQLite ledger in
 * `dataDir`.
 */
export const startService = async (
  dataDir: string,
  timeoutMs = 60_000,
  ledger: Readonly<Record<string, string>> = {},
): Promise<Service> => {
  const port = await freePort()
  const env = {
    ...ledger,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: String(port),
    AUTH_MODE: 'embedded',
    LOG_LEVEL: 'warn',
    // the bench measures throughput from one principal, not the rate limits: at their highest (the overload
    // guard keeps its default: the decisions figure reports what it refused)
    RATE_LIMIT_REQUESTS_PER_SECOND: '100000',
    RATE_LIMIT_COMMANDS_PER_MINUTE: '1000000',
    COMMANDS_IN_FLIGHT_PER_PRINCIPAL: '10000',
    COMMANDS_IN_FLIGHT_TOTAL: '100000',
  }
  const url = `http://127.0.0.1:${port}`
  buildOnce()
  const { child, readyAfterMs } = await launch(startArgs(), env, url, '/ready', timeoutMs)
  const config = loadConfig(env)
  const keyPath = join(dataDir, 'keys', 'token-signing.pem')
  if (!existsSync(keyPath)) throw new Error(`no token key at ${keyPath}`)
  const key = loadPrivateKey(keyPath)
  const tokens = new Map<string, Promise<string>>()
  return {
    ...child,
    dataDir,
    readyAfterMs,
    tokenFor: (sub, ...roles) => {
      const id = `${sub}|${roles.join(',')}`
      const token = tokens.get(id) ?? issueToken(key, config, { sub, roles, expiresIn: '12h' })
      tokens.set(id, token)
      return token
    },
    rssMb: () => rssMb(child.pid),
  }
}

/** The bare Fastify server of bench/echo-server.ts: one POST route that parses and returns its JSON body. */
export const startEchoServer = async (): Promise<Child> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const { child } = await launch(
    ['--import', 'tsx', 'bench/echo-server.ts'],
    { PORT: String(port) },
    url,
    '/ready',
    30_000,
  )
  return child
}

// ---------- a world where a low-impact action earns an allow ----------

export const BENCH_AGENT = 'bench-agent'
export const BENCH_TOOL = { tool: 'bench-cache', action: 'flush' } as const
export const BENCH_ENVIRONMENT = 'production'

/** A JSON object as answered; an empty answer is {}. */
export type Answer = { readonly status: number; readonly body: { readonly [key: string]: unknown } }

export interface Api {
  call(method: string, path: string, token: string, body?: unknown): Promise<Answer>
}

export const api = (baseUrl: string): Api => ({
  async call(method, path, token, body) {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }).catch((error: unknown) => {
      // fetch says only 'fetch failed': the reason (a reset, a refused connection) is its cause
      const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : ''
      throw new Error(`${method} ${path} failed${cause}`, { cause: error })
    })
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : {} }
  },
})

const expect = async (what: string, call: Promise<Answer>, ...statuses: number[]) => {
  const { status, body } = await call
  if (!statuses.includes(status)) throw new Error(`seed: ${what} answered ${status}: ${JSON.stringify(body)}`)
  return body
}

export interface Principals {
  readonly admin: string
  /** a second, distinct policy admin: what widens authority takes two */
  readonly secondAdmin: string
  readonly agent: string
  readonly observer: string
  readonly auditor: string
}

export const principals = async (svc: Service): Promise<Principals> => ({
  admin: await svc.tokenFor('bench-admin', 'policy-admin', 'auditor'),
  secondAdmin: await svc.tokenFor('bench-admin-2', 'policy-admin'),
  agent: await svc.tokenFor(BENCH_AGENT, 'agent'),
  observer: await svc.tokenFor('bench-observer', 'observer'),
  auditor: await svc.tokenFor('bench-auditor', 'auditor'),
})

/** A governance change answered 201/200 (applied) or 202 (pending): a pending one the second admin approves. */
const governed = async (
  http: ReturnType<typeof api>,
  who: Principals,
  what: string,
  call: Promise<Answer>,
): Promise<void> => {
  const body = await expect(what, call, 200, 201, 202)
  if (body.status !== 'pending') return
  await expect(
    `approval of ${what}`,
    http.call('POST', `/v1/changes/${String(body.requestId)}/approval`, who.secondAdmin, {}),
    201,
  )
}

/** Promotions need no track record under the bench's policy: the bench measures decisions, not careers. */
const NO_TRACK_RECORD = {
  recommend: trackRequirement({}),
  simulate: trackRequirement({}),
  execute: trackRequirement({}),
}

/**
 * Through the HTTP API, as operators would: a policy (unless one is in force), the bench tool registered as
 * low impact, the bench agent registered and promoted to execute one rung at a time, each rung approved by two
 * distinct policy admins.
 */
export const seedLowImpactWorld = async (svc: Service, who: Principals): Promise<void> => {
  const http = api(svc.url)
  const current = await http.call('GET', '/v1/policies/current', who.admin)
  if (current.status === 404) {
    const policy = { ...defaultPolicy('bench-team', 1), promotion: NO_TRACK_RECORD }
    await governed(http, who, 'policy', http.call('POST', '/v1/policies', who.admin, policy))
  }
  await governed(
    http,
    who,
    'inventory',
    http.call('PUT', `/v1/inventory/${BENCH_TOOL.tool}/${BENCH_TOOL.action}`, who.admin, {
      impact: 'low',
      reversible: true,
    }),
  )
  await expect(
    'agent',
    http.call('POST', '/v1/agents', who.admin, { agentId: BENCH_AGENT, owner: 'bench' }),
    201,
  )
  for (const to of ['recommend', 'simulate', 'execute']) {
    const asked = await expect(
      `promotion to ${to}`,
      http.call('POST', `/v1/agents/${BENCH_AGENT}/promotions`, who.agent, {
        environment: BENCH_ENVIRONMENT,
        to,
      }),
      201,
    )
    if (asked.outcome !== 'requested')
      throw new Error(`seed: promotion to ${to} refused: ${JSON.stringify(asked)}`)
    for (const [admin, outcome] of [
      [who.admin, 'approved'],
      [who.secondAdmin, 'promoted'],
    ] as const) {
      const approved = await expect(
        `approval of ${to}`,
        http.call(
          'POST',
          `/v1/agents/${BENCH_AGENT}/promotions/${String(asked.requestId)}/approval`,
          admin,
          {},
        ),
        201,
      )
      if (approved.outcome !== outcome)
        throw new Error(`seed: promotion to ${to} not ${outcome}: ${JSON.stringify(approved)}`)
    }
  }
}

export interface Phase {
  readonly identity: string
  readonly resource: string
  /** a proposal body that earns an allow while the phase's observation is fresh */
  readonly body: Record<string, unknown>
}

/**
 * A phase of load: its own executing identity, bound to the bench agent, with an exact direct grant, and its
 * own resource observed just now, so that freshness holds and no proposal of an earlier phase is decided again.
 */
export const preparePhase = async (svc: Service, who: Principals, tag: string): Promise<Phase> => {
  const http = api(svc.url)
  const identity = `svc-bench-${tag}`
  const resource = `bench/cache-${tag}`
  await governed(
    http,
    who,
    'binding',
    http.call('POST', '/v1/bindings', who.admin, { principal: BENCH_AGENT, role: 'agent', identity }),
  )
  await governed(
    http,
    who,
    'grant',
    http.call('POST', '/v1/grants', who.admin, {
      identity,
      ...BENCH_TOOL,
      resourcePattern: resource,
      environment: BENCH_ENVIRONMENT,
      via: 'direct',
    }),
  )
  await expect(
    'observation',
    http.call('POST', '/v1/observations', who.observer, {
      environment: BENCH_ENVIRONMENT,
      resource,
      version: 'v1',
      digest: 'sha256:bench-v1',
      observedAt: new Date().toISOString(),
    }),
    201,
  )
  const body = {
    agentId: BENCH_AGENT,
    executingIdentity: identity,
    ...BENCH_TOOL,
    resource,
    environment: BENCH_ENVIRONMENT,
    plan: { keys: 'session:*', mode: 'lazy', batch: 500, reason: 'stale sessions after the release' },
    expectedImpact: 'low',
    snapshot: { version: 'v1' },
    description: 'flush the session cache of the web tier',
  }
  // the phase is only worth measuring if its proposals are allowed
  const { decision, ms } = await decideOnce(svc.url, who.agent, body)
  if (decision !== 'allow') throw new Error(`seed: a phase proposal was not allowed (${decision}, ${ms} ms)`)
  return { identity, resource, body }
}

/**
 * One decision end to end, in one request: the proposal submitted with `?wait`, answered 201 with the verdict
 * decided in the commit that appended it. Returns its decision ('none': answered without one; 'shed': refused by
 * the overload guard) and latency.
 */
export const decideOnce = async (
  baseUrl: string,
  agentToken: string,
  body: Record<string, unknown>,
  startedAt = now(),
): Promise<{ decision: 'allow' | 'block' | 'none' | 'shed'; ms: number }> => {
  const submitted = await api(baseUrl).call('POST', '/v1/proposals?wait', agentToken, body)
  const ms = now() - startedAt
  // refused as overloaded (503, before any work): counted apart, as the overload guard means it
  if (submitted.status === 503 && (submitted.body.details as { overloaded?: boolean } | null)?.overloaded)
    return { decision: 'shed', ms }
  if (submitted.status !== 201)
    throw new Error(`submit answered ${submitted.status}: ${JSON.stringify(submitted.body)}`)
  const verdict = submitted.body.verdict as { decision: 'allow' | 'block' } | null | undefined
  return { decision: verdict?.decision ?? 'none', ms }
}
