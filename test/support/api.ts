import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import pino from 'pino'
import { issueToken, type Role } from '../../src/auth/tokens.js'
import { type Config, loadConfig } from '../../src/config.js'
import { defaultPolicy } from '../../src/domain/eligibility.js'
import type { AuthorityLevel } from '../../src/domain/events.js'
import { type App, buildApp } from '../../src/http/app.js'
import { type Runtime, startRuntime } from '../../src/runtime.js'

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
  /** the ledger head position now */
  head(): Promise<number>
  /** waits until the decision service and every view have caught up with the ledger head */
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

  const head = async () => (await runtime.store.head()).position

  const settle = async (timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const position = await head()
      const positions = [
        runtime.decision.position,
        ...Object.values(runtime.views).map((v) => v.checkpoint()),
      ]
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

  return { app, runtime, config, dataDir, tokenFor, as, head, settle, close }
}

// ---------- a small world to test against ----------

export const SEED = {
  admin: 'admin',
  observer: 'observer-1',
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

const LADDER: readonly AuthorityLevel[] = ['observe', 'recommend', 'simulate', 'execute']

/** Climbs one rung at a time: requested by the agent itself, approved by the admin. */
const promote = async (api: TestApi, agentId: string, environment: string, to: AuthorityLevel) => {
  const self = api.as(agentId, 'agent')
  const admin = api.as(SEED.admin, 'policy-admin')
  for (const rung of LADDER.slice(1, LADDER.indexOf(to) + 1)) {
    const asked = await expectStatus(
      `promotion of ${agentId} to ${rung} in ${environment}`,
      self.post(`/v1/agents/${agentId}/promotions`, { environment, to: rung }),
    )
    if (asked.outcome !== 'requested') throw new Error(`seed: promotion refused: ${asked.reason}`)
    await expectStatus(
      `approval of ${agentId} to ${rung}`,
      admin.post(`/v1/agents/${agentId}/promotions/${asked.requestId}/approval`, {}),
    )
  }
}

/**
 * Through the HTTP API itself: policy v1, the tool inventory, agent-1 at execute in production and
 * staging, agent-2 at recommend in production, exact direct grants for svc-agent-1, and a fresh
 * observation of deployment/web in production at v1.
 */
export const seedWorld = async (api: TestApi): Promise<World> => {
  const admin = api.as(SEED.admin, 'policy-admin')
  await expectStatus('policy', admin.post('/v1/policies', defaultPolicy(SEED.admin, 1)))
  for (const { tool, action, impact } of SEED.toolActions) {
    await expectStatus(
      `inventory ${tool}.${action}`,
      admin.put(`/v1/inventory/${tool}/${action}`, { impact, reversible: true }),
      200,
    )
  }
  for (const agentId of ['agent-1', 'agent-2']) {
    await expectStatus(`agent ${agentId}`, admin.post('/v1/agents', { agentId, owner: 'platform-team' }))
  }
  await promote(api, 'agent-1', 'production', 'execute')
  await promote(api, 'agent-1', 'staging', 'execute')
  await promote(api, 'agent-2', 'production', 'recommend')

  const grants: Record<string, string> = {}
  for (const { tool, action } of SEED.toolActions) {
    for (const environment of SEED.environments) {
      const granted = await expectStatus(
        `grant ${tool}.${action} in ${environment}`,
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
  readonly verdictId: string
  readonly revision: number
}

/**
 * agent-1 proposes to scale deployment/web in production (high impact) and attaches all five pieces of
 * evidence: its own simulation, a tested rollback and one approval; resolves once the allow verdict is in.
 */
export const allowedProposal = async (
  api: TestApi,
  world: World,
  plan: Record<string, unknown> = { replicas: 5 },
): Promise<AllowedProposal> => {
  const agent = api.as('agent-1', 'agent')
  const submitted = await expectStatus(
    'proposal',
    agent.post('/v1/proposals', {
      agentId: 'agent-1',
      executingIdentity: world.executingIdentity,
      tool: 'kubectl',
      action: 'scale',
      resource: world.observation.resource,
      environment: world.observation.environment,
      plan,
      expectedImpact: 'high',
      snapshot: { version: world.observation.version },
    }),
  )
  const { proposalId, planHash } = submitted as { proposalId: string; planHash: string }
  const branch = (name: string, kind: string) => ({
    name,
    kind,
    counterfactual: `${kind} during the change`,
    outcome: 'survived',
  })
  await expectStatus(
    'simulation',
    agent.post(`/v1/proposals/${proposalId}/simulations`, {
      planHash,
      branches: [
        branch('baseline', 'baseline'),
        branch('db-down', 'dependency-down'),
        branch('concurrent-deploy', 'concurrent-change'),
        branch('half-rollout', 'partial-failure'),
      ],
    }),
  )
  await expectStatus(
    'rollback test',
    agent.post(`/v1/proposals/${proposalId}/rollback-tests`, {
      planHash,
      playbook: 'kubectl scale deployment/web --replicas=3',
      testRunId: `run-${proposalId}`,
      testedAt: new Date(Date.now() - 60_000).toISOString(),
      outcome: 'passed',
      expectedRecoverySeconds: 120,
      killSwitch: { scope: 'tool', target: 'kubectl' },
    }),
  )
  await expectStatus(
    'approval',
    api.as('approver-1', 'approver').post(`/v1/proposals/${proposalId}/approvals`, { planHash }),
  )
  // every piece of evidence draws a new verdict: once the decision service has caught up, the last one counts
  await api.settle()
  const { verdict } = await expectStatus('verdict', agent.get(`/v1/proposals/${proposalId}/verdict`), 200)
  if (verdict?.decision !== 'allow') throw new Error(`seed: no allow verdict: ${JSON.stringify(verdict)}`)
  return { proposalId, planHash, verdictId: verdict.verdictId, revision: verdict.revision }
}
