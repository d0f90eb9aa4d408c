// Starts the real service as a child process on a free port and a fresh data folder, for e2e tests.
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { issueToken, loadPrivateKey, type Role } from '../../src/auth/tokens.js'
import { loadConfig } from '../../src/config.js'
import { defaultPolicy, trackRequirement } from '../../src/domain/eligibility.js'
import {
  AdminClient,
  AgentClient,
  ApproverClient,
  ExecutorClient,
  type Observation,
  ObserverClient,
  type Policy,
  type PolicyInput,
  type RollbackTestInput,
  type SimulationInput,
  SimulatorClient,
} from '../../src/sdk/index.js'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
const READY_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 20_000

export interface RunningService {
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** the policy-admin + auditor token the first start wrote to DATA_DIR/bootstrap-admin.token */
  readonly bootstrapToken: string
  /** the configuration the service runs with (as the child parsed the same environment) */
  readonly env: Readonly<Record<string, string>>
  /** a token signed with the service's embedded key, as the CLI would issue it */
  tokenFor(sub: string, ...roles: Role[]): Promise<string>
  /** the same, with the approval roles an approver's token may carry */
  tokenWith(sub: string, roles: Role[], claims: { approvalRoles?: string[] }): Promise<string>
  /** everything the child wrote to stdout and stderr so far */
  output(): string
  /** SIGTERM, then asserts a clean exit (code 0) */
  stop(): Promise<void>
  /** Waits for the service to end on its own (at most `timeoutMs`); resolves its exit code. */
  exited(timeoutMs: number): Promise<number | null>
  /** SIGKILL, as a crash: no drain, no checkpoint saved; resolves once the process is gone (restart() starts it again); asserts it was still running */
  kill(): Promise<void>
  /** stops cleanly (unless killed) and starts again on the same port and data folder */
  restart(): Promise<void>
  /** stops, and removes the data folder */
  close(): Promise<void>
}

/** A port nobody listens on now: listen on port 0, read it, close. */
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Tests drive the API far faster than any client, so the harness starts the service with its rate limits
 * at their highest, and the overload guard at its most patient (a stall of the test machine is no overload);
 * a test of the limits themselves sets its own.
 */
export const HIGHEST_RATES = {
  RATE_LIMIT_REQUESTS_PER_SECOND: '100000',
  RATE_LIMIT_COMMANDS_PER_MINUTE: '1000000',
  COMMANDS_IN_FLIGHT_PER_PRINCIPAL: '10000',
  COMMANDS_IN_FLIGHT_TOTAL: '100000',
  OVERLOAD_MAX_COMMAND_WAIT_MS: '60000',
} as const

/** The limits a service starts with when nothing sets them, for tests that must stay within them (the demo). */
export const DEFAULT_RATES = (() => {
  const defaults = loadConfig({})
  return {
    RATE_LIMIT_REQUESTS_PER_SECOND: String(defaults.RATE_LIMIT_REQUESTS_PER_SECOND),
    RATE_LIMIT_COMMANDS_PER_MINUTE: String(defaults.RATE_LIMIT_COMMANDS_PER_MINUTE),
    COMMANDS_IN_FLIGHT_PER_PRINCIPAL: String(defaults.COMMANDS_IN_FLIGHT_PER_PRINCIPAL),
    COMMANDS_IN_FLIGHT_TOTAL: String(defaults.COMMANDS_IN_FLIGHT_TOTAL),
    OVERLOAD_MAX_COMMAND_WAIT_MS: String(defaults.OVERLOAD_MAX_COMMAND_WAIT_MS),
  }
})()

/** The newest modification time of the files under `dir`, in ms. */
const newestUnder = (dir: string): number =>
  readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((newest, entry) => Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs), 0)

/**
 * The service as `npm start` runs it: compiled by `npm run build` when the build is older than a source of it
 * (as make decides), then started as plain JavaScript, in about half the time the sources through tsx take: the
 * drills start it again and again.
 */
const buildIfStale = (): void => {
  const built = join(ROOT, 'dist', 'src', 'main.js')
  const sources = Math.max(
    ...['src', 'projections', 'console'].map(newestUnder),
    ...['scripts/build.mjs', 'scripts/build-console.mjs', 'package-lock.json'].map(
      (file) => statSync(join(ROOT, file)).mtimeMs,
    ),
  )
  if (existsSync(built) && statSync(built).mtimeMs >= sources) return
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
}

export const startService = async (extraEnv: Record<string, string> = {}): Promise<RunningService> => {
  buildIfStale()
  const dataDir = mkdtempSync(join(tmpdir(), 'governance-e2e-'))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: String(port),
    AUTH_MODE: 'embedded',
    LOG_LEVEL: 'info',
    SCHEDULER_INTERVAL_MS: '200',
    ...HIGHEST_RATES,
    ...extraEnv,
  }
  const config = loadConfig(env)
  let log = ''
  let child: ChildProcess | null = null
  let exited: Promise<number | null> = Promise.resolve(null)

  const launch = async (): Promise<void> => {
    const proc = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = proc
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      log += chunk
    })
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      log += chunk
    })
    exited = new Promise((done) => proc.once('exit', (code) => done(code)))
    const deadline = Date.now() + READY_TIMEOUT_MS
    let exitCode: number | null | undefined
    void exited.then((code) => {
      exitCode = code
    })
    for (;;) {
      if (exitCode !== undefined) throw new Error(`the service exited with ${exitCode}:\n${log.slice(-4000)}`)
      try {
        const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1000) })
        if (response.status === 200) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL')
        throw new Error(`the service was not ready within ${READY_TIMEOUT_MS} ms:\n${log.slice(-4000)}`)
      }
      await sleep(100)
    }
  }

  const stop = async (): Promise<void> => {
    const proc = child
    if (proc === null) return
    if (proc.exitCode !== null || proc.signalCode !== null) {
      child = null
      // it ended before we asked: that is a crash unless it exited cleanly
      assert.equal(proc.exitCode, 0, `the service ended on its own:\n${log.slice(-4000)}`)
      return
    }
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
    const code = await exited
    clearTimeout(timer)
    child = null
    assert.equal(code, 0, `the service should exit cleanly on SIGTERM:\n${log.slice(-4000)}`)
  }

  const kill = async (): Promise<void> => {
    const proc = child
    if (proc === null) return
    child = null
    // it ended before we asked: a crash of its own, not the one the caller means to cause
    assert.ok(
      proc.exitCode === null && proc.signalCode === null,
      `the service ended on its own (${proc.exitCode ?? proc.signalCode}):\n${log.slice(-4000)}`,
    )
    proc.kill('SIGKILL')
    await exited
  }

  // never leave a service or its data behind when the test process ends early
  const reap = () => {
    const proc = child as ChildProcess | null
    proc?.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
  process.once('exit', reap)

  await launch()
  // written once, before the service listens: the first start prints where, never the token
  const tokenFile = join(dataDir, 'bootstrap-admin.token')
  if (!existsSync(tokenFile)) throw new Error(`the first start wrote no ${tokenFile}:\n${log.slice(-4000)}`)
  const bootstrapToken = readFileSync(tokenFile, 'utf8').trim()
  const key = loadPrivateKey(join(dataDir, 'keys', 'token-signing.pem'))

  return {
    url,
    port,
    dataDir,
    bootstrapToken,
    env,
    tokenFor: (sub, ...roles) => issueToken(key, config, { sub, roles }),
    tokenWith: (sub, roles, claims) => issueToken(key, config, { sub, roles, ...claims }),
    output: () => log,
    stop,
    exited: async (timeoutMs) => {
      const proc = child as ChildProcess | null
      if (proc === null) throw new Error('the service is not running')
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_, fail) => {
        timer = setTimeout(
          () => fail(new Error(`the service was still running after ${timeoutMs} ms`)),
          timeoutMs,
        )
      })
      try {
        const code = await Promise.race([exited, late])
        child = null
        return code
      } finally {
        clearTimeout(timer)
      }
    },
    kill,
    restart: async () => {
      await stop()
      await launch()
    },
    close: async () => {
      try {
        await stop()
      } finally {
        process.off('exit', reap)
        rmSync(dataDir, { recursive: true, force: true })
      }
    },
  }
}

// ---------- a world built through the SDK, as its users would build it ----------

export const POLICY_OWNER = 'risk-office'

/** Promotions need no track record under the policies of these worlds, so a test can climb an agent at once. */
export const NO_TRACK_RECORD: Policy['promotion'] = {
  recommend: trackRequirement({}),
  simulate: trackRequirement({}),
  execute: trackRequirement({}),
}

/** The default policy, owned by the risk office, with the given version and overrides. */
export const policyV = (version: number, overrides: Partial<PolicyInput> = {}): PolicyInput => ({
  ...defaultPolicy(POLICY_OWNER, version),
  promotion: NO_TRACK_RECORD,
  ...overrides,
})

/** An ISO time (millisecond precision, UTC) the given seconds ago. */
export const secondsAgo = (seconds: number): string => new Date(Date.now() - seconds * 1000).toISOString()

/** An observation made just now. */
export const observation = (environment: string, resource: string, version: string): Observation => ({
  environment,
  resource,
  version,
  digest: `sha256:${resource}@${version}`,
  observedAt: secondsAgo(1),
})

/** The results of a simulation of this exact action that survives every one of its adversarial branches. */
export const survivingSimulation = (actionDigest: string, requestId: string): SimulationInput => ({
  requestId,
  actionDigest,
  branches: [
    { name: 'baseline', kind: 'baseline', counterfactual: 'nothing else happens', outcome: 'survived' },
    ...(['dependency-down', 'concurrent-change', 'partial-failure', 'stale-read'] as const).map((kind) => ({
      name: kind,
      kind,
      counterfactual: `the plan runs while ${kind}`,
      outcome: 'survived' as const,
    })),
  ],
})

/** A rollback of this exact action, tested a minute ago and stopped by the tool's kill switch. */
export const passedRollbackTest = (actionDigest: string, tool: string): RollbackTestInput => ({
  actionDigest,
  playbook: 'scale back to the previous replica count, then verify health',
  testRunId: `run-${actionDigest.slice(7, 19)}`,
  testedAt: secondsAgo(60),
  outcome: 'passed',
  expectedRecoverySeconds: 120,
  killSwitch: { scope: 'tool', target: tool },
})

/** A governance change by the first admin, approved by the second when it waits for one. */
export const governed = async <T extends { status: 'applied' | 'pending'; requestId: string | null }>(
  second: AdminClient,
  change: Promise<T>,
): Promise<T> => {
  const answer = await change
  if (answer.status === 'pending' && answer.requestId !== null) await second.approveChange(answer.requestId)
  return answer
}

/** Climbs an agent up the ladder one rung at a time, each approved by two policy admins. */
export const climb = async (
  admins: readonly [AdminClient, AdminClient],
  agent: AgentClient,
  environment: string,
  rungs: readonly string[],
): Promise<void> => {
  for (const to of rungs) {
    const request = await agent.requestPromotion({ environment, to })
    assert.equal(request.outcome, 'requested', `promotion to ${to}: ${request.reason ?? ''}`)
    const first = await admins[0].approvePromotion(agent.agentId, request.requestId)
    assert.equal(first.outcome, 'approved', `promotion to ${to} needs a second admin`)
    const second = await admins[1].approvePromotion(agent.agentId, request.requestId)
    assert.equal(second.outcome, 'promoted', `promotion to ${to} should be approved by the second admin`)
  }
}

/** The ids of the failing checks of a verdict, in the verdict's order. */
export const failing = (verdict: { checks: readonly { check: string; status: string }[] } | null) =>
  (verdict?.checks ?? []).filter((c) => c.status === 'fail').map((c) => c.check)

/** Polls until `probe` returns a value that is not undefined, or fails naming what it waited for. */
export const eventually = async <T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

/** The principals of a small world, each with its SDK client. */
export interface Cast {
  readonly admin: AdminClient
  /** the second policy admin, who approves what widens authority */
  readonly secondAdmin: AdminClient
  readonly agent: AgentClient
  readonly observer: ObserverClient
  readonly simulator: SimulatorClient
  readonly approver: ApproverClient
  readonly executor: ExecutorClient
  readonly environment: string
  readonly tool: string
  readonly identity: string
}

/**
 * Policy v1, a high-impact reversible tool action, an agent bound to its identity and climbed to execute in
 * the environment, an executor bound to run as that identity: everything a proposal needs for an allow apart
 * from its own evidence.
 */
export const setUpWorld = async (
  svc: RunningService,
  options: {
    agentId?: string
    identity?: string
    tool?: string
    environment?: string
    policy?: boolean
  } = {},
): Promise<Cast> => {
  const {
    agentId = 'agent-e2e',
    identity = 'deploy-bot',
    tool = 'kubectl',
    environment = 'production',
  } = options
  const client = async <C>(
    make: new (o: { baseUrl: string; token: string }) => C,
    sub: string,
    ...roles: Role[]
  ) => new make({ baseUrl: svc.url, token: await svc.tokenFor(sub, ...roles) })
  const admin = new AdminClient({ baseUrl: svc.url, token: svc.bootstrapToken })
  const secondAdmin = await client(AdminClient, 'admin-2', 'policy-admin')
  const agent = new AgentClient({ baseUrl: svc.url, token: await svc.tokenFor(agentId, 'agent'), agentId })
  const observer = await client(ObserverClient, 'observer-1', 'observer')
  const simulator = await client(SimulatorClient, 'simulator-1', 'simulator')
  const approver = await client(ApproverClient, 'approver-1', 'approver')
  const executorId = `${identity}-runner`
  const executor = await client(ExecutorClient, executorId, 'executor')
  if (options.policy !== false) {
    await governed(secondAdmin, admin.publishPolicy(policyV(1)))
    await governed(
      secondAdmin,
      admin.registerToolAction({ tool, action: 'scale', impact: 'high', reversible: true }),
    )
  }
  await admin.registerAgent({ agentId, owner: 'platform-team' })
  await governed(secondAdmin, admin.bind({ principal: agentId, role: 'agent', identity }))
  await governed(secondAdmin, admin.bind({ principal: executorId, role: 'executor', identity }))
  await climb([admin, secondAdmin], agent, environment, ['recommend', 'simulate', 'execute'])
  return { admin, secondAdmin, agent, observer, simulator, approver, executor, environment, tool, identity }
}

/** The action a proposal names, as an executor states it before running it. */
export const actionOf = (
  cast: Cast,
  proposalId: string,
  resource: string,
  plan: Record<string, unknown>,
) => ({
  proposalId,
  tool: cast.tool,
  action: 'scale',
  resource,
  environment: cast.environment,
  executingIdentity: cast.identity,
  plan,
})

/** Grants, observes, proposes; every piece of evidence comes from who may attest it; resolves with the allow. */
export const proposeWithEvidence = async (cast: Cast, resource: string, plan: Record<string, unknown>) => {
  const { admin, secondAdmin, agent, observer, simulator, approver, environment, tool, identity } = cast
  await governed(
    secondAdmin,
    admin.grant({ identity, tool, action: 'scale', resourcePattern: resource, environment }),
  )
  const version = `r${Date.now().toString(36)}`
  await observer.observe(observation(environment, resource, version))
  const submitted = await agent.submitProposal({
    executingIdentity: identity,
    tool,
    action: 'scale',
    resource,
    environment,
    plan,
    expectedImpact: 'high',
    snapshot: { version },
  })
  const { proposalId, actionDigest } = submitted
  const { requestId } = await agent.requestSimulation(proposalId, { actionDigest })
  await simulator.recordSimulation(proposalId, survivingSimulation(actionDigest, requestId))
  await simulator.recordRollbackTest(proposalId, passedRollbackTest(actionDigest, tool))
  await approver.approve(proposalId, { actionDigest })
  const verdict = await eventually(`an allow for ${resource}`, async () => {
    const v = await agent.currentVerdict(proposalId)
    return v?.decision === 'allow' ? v : undefined
  })
  return { ...submitted, verdict, version, action: actionOf(cast, proposalId, resource, plan) }
}
