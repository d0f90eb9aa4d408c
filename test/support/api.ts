import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import pino from 'pino'
import { issueToken, type Role } from '../../src/auth/tokens.js'
import { type Config, loadConfig } from '../../src/config.js'
import { defaultPolicy } from '../../src/domain/eligibility.js'
import type { AuthorityLevel, PolicyDraft } from '../../src/domain/events.js'
import { type App, buildApp } from '../../src/http/app.js'
import { type Runtime, startRuntime } from '../../src/runtime.js'
import { HIGHEST_RATES, NO_TRACK_RECORD } from './service.js'

export type Env = Partial<Record<keyof Config, string>>

/** A light client over app.inject for one principal: bearer token and JSON bodies set for you. */
export interface Client {
  get(url: string, headers?: Record<string, string>): Promise<LightMyRequestResponse>
  post(url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>
  put(url: string, body?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>
  delete(url: string, headers?: Record<string, string>): Promise<LightMyRequestResponse>
}

export interface TestApi {
  readonly app: App
  readonly runtime: Runtime
  readonly config: Config
  readonly dataDir: string
  tokenFor(sub: string, ...roles: Role[]): Promise<string>
  as(sub: string, ...roles: Role[]): Client
  /** fetch over the in-process app, for the SDK's clients (any base URL) */
  readonly fetch: typeof fetch
  /** the ledger head position now */
  head(): Promise<number>
  /**
   * waits until the decision service, every view and the Merkle tree (those the instance keeps) have caught up
   * with the ledger head
   */
  settle(timeoutMs?: number): Promise<void>
  close(): Promise<void>
}

/** The real service in-process: a fresh data folder, embedded auth, silent logs, ready for app.inject. */
export const startTestApi = async (overrides: Env = {}): Promise<TestApi> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'governance-api-'))
  const config = loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    AUTH_MODE: 'embedded',
    ...HIGHEST_RATES,
    ...overrides,
  })
  const runtime = await startRuntime(config, pino({ level: 'silent' }))
  const app = await buildApp(runtime, { logger: false })
  await app.ready()

  const tokens = new Map<string, Promise<string>>()
  const tokenFor = (sub: string, ...roles: Role[]): Promise<string> => {
    const key = `${sub}|${[...roles].sort().join(',')}`
    let token = tokens.get(key)
    if (!token) {
      if (!runtime.tokenKey) throw new Error('tokenFor needs AUTH_MODE=embedded')
      token = issueToken(runtime.tokenKey, config, { sub, roles })
      tokens.set(key, token)
    }
    return token
  }

  const as = (sub: string, ...roles: Role[]): Client => {
    const send = async (
      method: 'GET' | 'POST' | 'PUT' | 'DELETE',
      url: string,
      body: unknown,
      headers: Record<string, string> = {},
    ) => {
      const authorization = `Bearer ${await tokenFor(sub, ...roles)}`
      return app.inject({
        method,
        url,
        headers: { authorization, ...headers },
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      })
    }
    return {
      get: (url, headers) => send('GET', url, undefined, headers),
      post: (url, body = {}, headers) => send('POST', url, body, headers),
      put: (url, body = {}, headers) => send('PUT', url, body, headers),
      delete: (url, headers) => send('DELETE', url, undefined, headers),
    }
  }

  const inject: typeof fetch = async (input, init) => {
    const url = new URL(String(input))
    const r = await app.inject({
      method: (init?.method ?? 'GET') as 'GET',
      url: `${url.pathname}${url.search}`,
      headers: Object.fromEntries(new Headers(init?.headers).entries()),
      ...(init?.body === undefined || init.body === null ? {} : { payload: String(init.body) }),
    })
    return new Response(r.body, { status: r.statusCode, headers: r.headers as Record<string, string> })
  }

  const head = async () => (await runtime.store.head()).position

  const settle = async (timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const position = await head()
      // an instance keeping no read models follows the ledger with its decision world alone
      const positions = config.READ_MODELS
        ? [
            runtime.decision.position,
            ...Object.values(runtime.views).map((v) => v.checkpoint()),
            runtime.tree.size(),
          ]
        : [runtime.decision.position]
      if (positions.every((p) => p >= position)) {
        // the decision service may have appended answers meanwhile: settled only when the head stood still
        if ((await head()) === position) return
      }
      if (Date.now() > deadline)
        throw new Error(`not settled after ${timeoutMs} ms: head ${position}, consumers at ${positions}`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await app.close()
    await runtime.close()
    rmSync(dataDir, { recursive: true, force: true })
  }

  return { app, runtime, config, dataDir, tokenFor, as, fetch: inject, head, settle, close }
}

// ---------- a small world to test against ----------

export const SEED = {
  admin: 'admin',
  /** the second policy admin, who approves what widens authority */
  secondAdmin: 'admin-2',
  observer: 'observer-1',
  simulator: 'simulator-1',
  approver: 'approver-1',
  executor: 'executor-1',
  executingIdentity: 'svc-agent-1',
  resource: 'deployment/web',
  environments: ['production', 'staging'],
  toolActions: [
    { tool: 'kubectl', action: 'scale', impact: 'high' },
    { tool: 'config', action: 'set', impact: 'medium' },
    { tool: 'cache', action: 'flush', impact: 'low' },
    { tool: 'metrics', action: 'read', impact: 'read' },
    { tool: 'db', action: 'migrate', impact: 'critical' },
  ],
} as const

/** A promotion needs no track record under this policy: what a seed needs to climb an agent at once. */
/** The default policy, owned by the admin's team, where promotions need no track record. */
export const seedPolicy = (version = 1): PolicyDraft => ({
  ...defaultPolicy('platform-risk', version),
  promotion: NO_TRACK_RECORD,
})

export interface World {
  readonly admin: string
  readonly observer: string
  readonly policyVersion: number
  readonly agents: readonly string[]
  readonly executingIdentity: string
  /** grant ids by `<tool>.<action>:<environment>` */
  readonly grants: Readonly<Record<string, string>>
  readonly observation: {
    readonly environment: string
    readonly resource: string
    readonly version: string
    readonly digest: string
  }
}

const expectStatus = async (what: string, response: Promise<LightMyRequestResponse>, status = 201) => {
  const r = await response
  if (r.statusCode !== status) throw new Error(`seed: ${what} answered ${r.statusCode}: ${r.body}`)
  return r.json()
}

/**
 * Runs a governance command as the admin and, when it waits for a second admin (202), approves it as the
 * second admin: resolves with the first answer. `status` is what an applied change answers.
 */
export const governed = async (
  api: TestApi,
  what: string,
  send: (admin: Client) => Promise<LightMyRequestResponse>,
  status = 201,
) => {
  const r = await send(api.as(SEED.admin, 'policy-admin'))
  if (r.statusCode === status) return r.json()
  if (r.statusCode !== 202) throw new Error(`seed: ${what} answered ${r.statusCode}: ${r.body}`)
  const answer = r.json()
  await expectStatus(
    `approval of ${what}`,
    api.as(SEED.secondAdmin, 'policy-admin').post(`/v1/changes/${answer.requestId}/approval`, {}),
  )
  return answer
}

const LADDER: readonly AuthorityLevel[] = ['observe', 'recommend', 'simulate', 'execute']

/** Climbs one rung at a time: requested by the agent itself, approved by both policy admins. */
export const promote = async (api: TestApi, agentId: string, environment: string, to: AuthorityLevel) => {
  const self = api.as(agentId, 'agent')
  for (const rung of LADDER.slice(1, LADDER.indexOf(to) + 1)) {
    const asked = await expectStatus(
      `promotion of ${agentId} to ${rung} in ${environment}`,
      self.post(`/v1/agents/${agentId}/promotions`, { environment, to: rung }),
    )
    if (asked.outcome !== 'requested') throw new Error(`seed: promotion refused: ${asked.reason}`)
    for (const admin of [SEED.admin, SEED.secondAdmin]) {
      await expectStatus(
        `approval of ${agentId} to ${rung} by ${admin}`,
        api
          .as(admin, 'policy-admin')
          .post(`/v1/agents/${agentId}/promotions/${asked.requestId}/approval`, {}),
      )
    }
  }
}

/** Binds a principal to an identity, as both policy admins. */
export const bind = (api: TestApi, principal: string, role: 'agent' | 'executor', identity: string) =>
  governed(api, `binding of ${principal} to ${identity}`, (admin) =>
    admin.post('/v1/bindings', { principal, role, identity }),
  )

/**
 * Through the HTTP API itself: policy v1 (the first event, so one admin publishes it), the tool inventory,
 * agent-1 at execute in production and staging, agent-2 at recommend in production, both bound to act
 * through svc-agent-1 and executor-1 bound to run as it, exact direct grants for svc-agent-1, and a fresh
 * observation of deployment/web in production at v1. Whatever widens authority is approved by admin-2.
 */
export const seedWorld = async (api: TestApi): Promise<World> => {
  await governed(api, 'policy', (admin) => admin.post('/v1/policies', seedPolicy(1)))
  for (const { tool, action, impact } of SEED.toolActions) {
    await governed(
      api,
      `inventory ${tool}.${action}`,
      (admin) => admin.put(`/v1/inventory/${tool}/${action}`, { impact, reversible: true }),
      200,
    )
  }
  for (const agentId of ['agent-1', 'agent-2']) {
    await expectStatus(
      `agent ${agentId}`,
      api.as(SEED.admin, 'policy-admin').post('/v1/agents', { agentId, owner: 'platform-team' }),
    )
    await bind(api, agentId, 'agent', SEED.executingIdentity)
  }
  await bind(api, SEED.executor, 'executor', SEED.executingIdentity)
  await promote(api, 'agent-1', 'production', 'execute')
  await promote(api, 'agent-1', 'staging', 'execute')
  await promote(api, 'agent-2', 'production', 'recommend')

  const grants: Record<string, string> = {}
  for (const { tool, action } of SEED.toolActions) {
    for (const environment of SEED.environments) {
      const granted = await governed(api, `grant ${tool}.${action} in ${environment}`, (admin) =>
        admin.post('/v1/grants', {
          identity: SEED.executingIdentity,
          tool,
          action,
          resourcePattern: SEED.resource,
          environment,
          via: 'direct',
        }),
      )
      grants[`${tool}.${action}:${environment}`] = granted.grantId
    }
  }

  const observation = {
    environment: 'production',
    resource: SEED.resource,
    version: 'v1',
    digest: 'sha256:web-v1',
  }
  await expectStatus(
    'observation',
    api.as(SEED.observer, 'observer').post('/v1/observations', {
      ...observation,
      observedAt: new Date().toISOString(),
    }),
  )
  return {
    admin: SEED.admin,
    observer: SEED.observer,
    policyVersion: 1,
    agents: ['agent-1', 'agent-2'],
    executingIdentity: SEED.executingIdentity,
    grants,
    observation,
  }
}

// ---------- assertions and a proposal that earns an allow ----------

/** Asserts the one error shape with its status and code; returns the body for further checks. */
export const expectError = (
  response: LightMyRequestResponse,
  status: number,
  code: string,
): { error: string; message: string; details: unknown } => {
  const body = response.json()
  if (response.statusCode !== status || body.error !== code) {
    throw new Error(`expected ${status} ${code}, got ${response.statusCode}: ${response.body}`)
  }
  if (typeof body.message !== 'string' || !('details' in body)) {
    throw new Error(`not the error shape: ${response.body}`)
  }
  return body
}

/** Runs `act` and fails if it appended anything to the ledger (waiting for the decision service first). */
export const appendsNothing = async <T>(api: TestApi, act: () => Promise<T>): Promise<T> => {
  await api.settle()
  const before = await api.head()
  const result = await act()
  await api.settle()
  const after = await api.head()
  if (after !== before)
    throw new Error(`expected nothing appended, but the head moved from ${before} to ${after}`)
  return result
}

export interface AllowedProposal {
  readonly proposalId: string
  readonly planHash: string
  readonly actionDigest: string
  readonly verdictId: string
  readonly revision: number
}

const branch = (name: string, kind: string) => ({
  name,
  kind,
  counterfactual: `${kind} during the change`,
  outcome: 'survived',
})

/** The branches a simulator records for a plan that survives all of them. */
export const survivingBranches = () => [
  branch('baseline', 'baseline'),
  branch('db-down', 'dependency-down'),
  branch('concurrent-deploy', 'concurrent-change'),
  branch('half-rollout', 'partial-failure'),
]

/** A passed rollback test of an action, a minute old, stopped by the kubectl kill switch. */
export const rollbackTestOf = (actionDigest: string, testRunId: string) => ({
  actionDigest,
  playbook: 'kubectl scale deployment/web --replicas=3',
  testRunId,
  testedAt: new Date(Date.now() - 60_000).toISOString(),
  outcome: 'passed',
  expectedRecoverySeconds: 120,
  killSwitch: { scope: 'tool', target: 'kubectl' },
})

/** The agent requests a simulation of its action, and the simulator records one that survives. */
export const simulated = async (api: TestApi, agentId: string, proposalId: string, actionDigest: string) => {
  const requested = await expectStatus(
    'simulation request',
    api.as(agentId, 'agent').post(`/v1/proposals/${proposalId}/simulation-requests`, { actionDigest }),
  )
  await expectStatus(
    'simulation',
    api.as(SEED.simulator, 'simulator').post(`/v1/proposals/${proposalId}/simulations`, {
      requestId: requested.requestId,
      actionDigest,
      branches: survivingBranches(),
    }),
  )
}

/**
 * agent-1 proposes to scale deployment/web in production (high impact) and every piece of evidence comes from
 * those entitled to it: a simulation the agent requested and the simulator ran, a rollback test by the
 * simulator, one approval; resolves once the allow verdict is in.
 */
/** agent-1's proposal to scale the seeded resource with this plan (high impact), as the agent sends it. */
export const proposalBody = (world: World, plan: Record<string, unknown>) => ({
  agentId: 'agent-1',
  executingIdentity: world.executingIdentity,
  tool: 'kubectl',
  action: 'scale',
  resource: world.observation.resource,
  environment: world.observation.environment,
  plan,
  expectedImpact: 'high',
  snapshot: { version: world.observation.version },
})

export const allowedProposal = async (
  api: TestApi,
  world: World,
  plan: Record<string, unknown> = { replicas: 5 },
): Promise<AllowedProposal> => {
  const agent = api.as('agent-1', 'agent')
  const submitted = await expectStatus('proposal', agent.post('/v1/proposals', proposalBody(world, plan)))
  const { proposalId, planHash, actionDigest } = submitted as {
    proposalId: string
    planHash: string
    actionDigest: string
  }
  await simulated(api, 'agent-1', proposalId, actionDigest)
  await expectStatus(
    'rollback test',
    api
      .as(SEED.simulator, 'simulator')
      .post(`/v1/proposals/${proposalId}/rollback-tests`, rollbackTestOf(actionDigest, `run-${proposalId}`)),
  )
  await expectStatus(
    'approval',
    api.as(SEED.approver, 'approver').post(`/v1/proposals/${proposalId}/approvals`, { actionDigest }),
  )
  // every piece of evidence draws a new verdict: once the decision service has caught up, the last one counts
  await api.settle()
  const { verdict } = await expectStatus('verdict', agent.get(`/v1/proposals/${proposalId}/verdict`), 200)
  if (verdict?.decision !== 'allow') throw new Error(`seed: no allow verdict: ${JSON.stringify(verdict)}`)
  return { proposalId, planHash, actionDigest, verdictId: verdict.verdictId, revision: verdict.revision }
}
