import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { SignJWT } from 'jose'
import { ROLES, type Role } from '../../src/auth/tokens.js'
import { generateSigningKey } from '../../src/decision/signer.js'
import { AdminClient, AgentClient } from '../../src/sdk/index.js'
import {
  climb,
  governed,
  policyV,
  type RunningService,
  secondsAgo,
  startService,
} from '../support/service.js'

const SUB = 'matrix-agent'
const ZERO_HASH = `sha256:${'0'.repeat(64)}`
/** a proposal of SUB's, submitted before the matrix runs */
const PROPOSAL = 'matrix-proposal'

interface Route {
  readonly plugin: string
  readonly method: 'GET' | 'POST' | 'PUT'
  readonly url: string
  readonly body?: () => unknown
  /** the status each role that may call it gets; every other role gets 403 */
  readonly allowed: Partial<Record<Role, number>>
}

/** One representative route per plugin, with a valid request, so a refusal can only come from the role. */
const ROUTES: readonly Route[] = [
  {
    plugin: 'proposals',
    method: 'POST',
    url: '/v1/proposals',
    body: () => ({
      agentId: SUB,
      executingIdentity: 'deploy-bot',
      tool: 'kubectl',
      action: 'scale',
      resource: 'deployment/matrix',
      environment: 'production',
      plan: { replicas: 2 },
      expectedImpact: 'high',
      snapshot: { version: 'm1' },
    }),
    allowed: { agent: 201 },
  },
  {
    plugin: 'proposal read',
    method: 'GET',
    url: `/v1/proposals/${PROPOSAL}`,
    // the agent column is the proposal's own agent: the same subject in every role
    allowed: { agent: 200, approver: 200, simulator: 200, executor: 200, 'policy-admin': 200, auditor: 200 },
  },
  {
    plugin: 'executions',
    method: 'POST',
    url: '/v1/proposals/no-such-proposal/executions',
    body: () => ({ verdictId: null, actionDigest: ZERO_HASH }),
    allowed: { executor: 404 },
  },
  {
    plugin: 'observations',
    method: 'POST',
    url: '/v1/observations',
    body: () => ({
      environment: 'production',
      resource: 'deployment/matrix',
      version: 'm1',
      digest: 'sha256:m1',
      observedAt: secondsAgo(1),
    }),
    allowed: { observer: 201 },
  },
  {
    plugin: 'agents',
    method: 'POST',
    url: '/v1/agents',
    body: () => ({ agentId: 'matrix-newcomer', owner: 'platform-team' }),
    allowed: { 'policy-admin': 201 },
  },
  {
    plugin: 'agent read',
    method: 'GET',
    url: `/v1/agents/${SUB}`,
    allowed: { agent: 200, 'policy-admin': 200, auditor: 200 },
  },
  {
    plugin: 'grants',
    method: 'POST',
    url: '/v1/grants',
    body: () => ({
      identity: 'deploy-bot',
      tool: 'kubectl',
      action: 'scale',
      resourcePattern: 'deployment/matrix',
      environment: 'production',
    }),
    // a grant of a high-impact action waits for a second admin
    allowed: { 'policy-admin': 202 },
  },
  {
    plugin: 'grants read',
    method: 'GET',
    url: '/v1/grants?identity=deploy-bot',
    allowed: { 'policy-admin': 200, auditor: 200 },
  },
  {
    plugin: 'inventory',
    method: 'PUT',
    url: '/v1/inventory/cache/flush',
    body: () => ({ impact: 'low', reversible: true }),
    // registering below critical lowers the impact of an unregistered action: it waits for a second admin
    allowed: { 'policy-admin': 202 },
  },
  {
    plugin: 'policies',
    method: 'POST',
    url: '/v1/policies',
    // another version 1: the admin passes authorization and meets the rule that versions follow in sequence
    body: () => policyV(1, { survivalThreshold: 0.95 }),
    allowed: { 'policy-admin': 409 },
  },
  {
    plugin: 'policy counterfactual',
    method: 'POST',
    url: '/v1/policies/counterfactual',
    // a question about the past, read-only: for the auditors and the policy admins
    body: () => ({ policyVersion: 1 }),
    allowed: { 'policy-admin': 200, auditor: 200 },
  },
  {
    plugin: 'shadow policy',
    method: 'POST',
    url: '/v1/policies/shadow',
    // version 1 again: the admin passes authorization and meets the rule that a shadow is the next version
    body: () => policyV(1, { survivalThreshold: 0.95 }),
    allowed: { 'policy-admin': 409 },
  },
  {
    plugin: 'shadow policy withdrawal',
    method: 'POST',
    url: '/v1/policies/shadow/withdrawal',
    // none is in force: the admin passes authorization and finds nothing to withdraw
    body: () => ({ reason: 'authorization matrix' }),
    allowed: { 'policy-admin': 404 },
  },
  {
    plugin: 'shadow policy read',
    method: 'GET',
    url: '/v1/policies/shadow',
    // its counts by agent are need-to-know, as the metrics are
    allowed: { 'policy-admin': 404, auditor: 404 },
  },
  {
    plugin: 'policy read',
    method: 'GET',
    url: '/v1/policies/current',
    // what every role needs to act: the policy in force (so are observations, inventory, kill switches)
    allowed: Object.fromEntries(ROLES.map((role) => [role, 200])),
  },
  {
    plugin: 'kill switches',
    method: 'POST',
    url: '/v1/kill-switches',
    body: () => ({ scope: 'tool', target: 'matrix-tool', reason: 'authorization matrix' }),
    allowed: { 'policy-admin': 201 },
  },
  {
    plugin: 'token revocations',
    method: 'POST',
    url: '/v1/token-revocations',
    // a jti no token carries: each call revokes a new one, so each allowed call earns its 201
    body: () => ({ jti: `matrix-${randomUUID()}`, reason: 'authorization matrix' }),
    allowed: { 'policy-admin': 201 },
  },
  {
    plugin: 'open actions',
    method: 'GET',
    url: '/v1/open-actions',
    allowed: { auditor: 200, 'policy-admin': 200, approver: 200, executor: 200 },
  },
  {
    plugin: 'metrics',
    method: 'GET',
    url: '/v1/metrics/headline?window=day',
    allowed: { auditor: 200, 'policy-admin': 200 },
  },
  {
    plugin: 'survival',
    method: 'GET',
    url: '/v1/survival?workflow=kubectl.scale',
    allowed: { auditor: 200, 'policy-admin': 200 },
  },
  {
    plugin: 'audit',
    method: 'GET',
    url: '/v1/audit/actions/no-such-proposal',
    allowed: { auditor: 404, 'policy-admin': 404 },
  },
  {
    plugin: 'ledger',
    method: 'GET',
    url: '/v1/ledger/verify',
    allowed: { auditor: 200, 'policy-admin': 200 },
  },
  {
    plugin: 'ledger proofs',
    method: 'GET',
    // the first event, a policy: an executor is given proofs of verdicts only
    url: '/v1/ledger/proofs/inclusion?position=1',
    allowed: { auditor: 200, 'policy-admin': 200 },
  },
  {
    plugin: 'verdict stream',
    method: 'GET',
    url: '/v1/verdicts/stream',
    allowed: { executor: 200, auditor: 200, 'policy-admin': 200, agent: 200 },
  },
  {
    plugin: 'prometheus',
    method: 'GET',
    url: '/metrics',
    allowed: { auditor: 200, 'policy-admin': 200 },
  },
]

describe('every role against a representative route of every plugin', () => {
  let svc: RunningService
  let admin: AdminClient
  const tokens = new Map<string, string>()
  const tally: Record<string, number> = {}
  /** the status each route answered each column with, printed as the matrix */
  const seen = new Map<string, Map<string, number>>()
  const note = (route: Route, column: string, status: number) => {
    const row = seen.get(route.plugin) ?? new Map<string, number>()
    row.set(column, status)
    seen.set(route.plugin, row)
  }

  before(async () => {
    svc = await startService()
    admin = new AdminClient({ baseUrl: svc.url, token: svc.bootstrapToken })
    const second = new AdminClient({ baseUrl: svc.url, token: await svc.tokenFor('admin-2', 'policy-admin') })
    await governed(second, admin.publishPolicy(policyV(1)))
    await governed(
      second,
      admin.registerToolAction({ tool: 'kubectl', action: 'scale', impact: 'high', reversible: true }),
    )
    await admin.registerAgent({ agentId: SUB, owner: 'platform-team' })
    await governed(second, admin.bind({ principal: SUB, role: 'agent', identity: 'deploy-bot' }))
    const agent = new AgentClient({ baseUrl: svc.url, token: await svc.tokenFor(SUB, 'agent'), agentId: SUB })
    await climb([admin, second], agent, 'production', ['recommend'])
    await agent.submitProposal({
      proposalId: PROPOSAL,
      executingIdentity: 'deploy-bot',
      tool: 'kubectl',
      action: 'scale',
      resource: 'deployment/matrix',
      environment: 'production',
      plan: { replicas: 3 },
      expectedImpact: 'high',
      snapshot: { version: 'm0' },
    })
    // the same subject in every role: only the role differs from one column to the next
    for (const role of ROLES) tokens.set(role, await svc.tokenFor(SUB, role))
    const iss = { iss: 'governance-ledger', aud: 'governance-ledger' }
    const foreign = generateSigningKey()
    tokens.set(
      'foreign key',
      await new SignJWT({ roles: ['policy-admin'] })
        .setProtectedHeader({ alg: 'EdDSA' })
        .setSubject(SUB)
        .setIssuer(iss.iss)
        .setAudience(iss.aud)
        .setExpirationTime('1h')
        .sign(foreign),
    )
    tokens.set('garbage', 'not-a-jwt')
  })

  after(async () => {
    const columns = ['no token', 'garbage', 'foreign key', ...ROLES]
    const lines = [...seen].map(
      ([plugin, row]) =>
        `  ${plugin.padEnd(15)} ${columns.map((c) => `${c}=${row.get(c) ?? '-'}`).join(' ')}`,
    )
    console.log(`e2e authorization matrix: ${JSON.stringify(tally)}\n${lines.join('\n')}`)
    await svc?.close()
  })

  const send = async (route: Route, token: string | null) => {
    const controller = new AbortController()
    const body = route.body?.()
    const response = await fetch(`${svc.url}${route.url}`, {
      method: route.method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: controller.signal,
    })
    const streaming = (response.headers.get('content-type') ?? '').startsWith('text/event-stream')
    const text = streaming ? '' : await response.text()
    controller.abort()
    return { status: response.status, streaming, json: text.startsWith('{') ? JSON.parse(text) : text }
  }

  const head = async () =>
    (await fetch(`${svc.url}/v1/ledger/head`, {
      headers: { authorization: `Bearer ${svc.bootstrapToken}` },
    }).then((r) => r.json())) as { position: number; hash: string }

  it('answers 401 in the error shape without a token, with a garbage one, or one signed by another key', async () => {
    const before = await head()
    for (const route of ROUTES) {
      for (const [what, token] of [
        ['no token', null],
        ['garbage', tokens.get('garbage') ?? ''],
        ['foreign key', tokens.get('foreign key') ?? ''],
      ] as const) {
        const { status, json } = await send(route, token)
        assert.equal(status, 401, `${route.plugin} with ${what}`)
        note(route, what, status)
        assert.equal(json.error, 'unauthenticated', `${route.plugin} with ${what}`)
        assert.equal(typeof json.message, 'string')
        assert.ok('details' in json)
        tally['401'] = (tally['401'] ?? 0) + 1
      }
    }
    assert.deepEqual(await head(), before, 'no unauthenticated request appended anything')
  })

  it('answers 403 in the error shape to every role a route does not allow, appending nothing', async () => {
    const before = await head()
    for (const route of ROUTES) {
      for (const role of ROLES) {
        if (route.allowed[role] !== undefined) continue
        const { status, json } = await send(route, tokens.get(role) ?? '')
        assert.equal(status, 403, `${role} on ${route.plugin} (${route.method} ${route.url})`)
        note(route, role, status)
        assert.equal(json.error, 'forbidden')
        assert.deepEqual(json.details.held, [role])
        tally['403'] = (tally['403'] ?? 0) + 1
      }
    }
    assert.deepEqual(await head(), before, 'no refused request appended anything')
  })

  it('lets every allowed role through, with the status its valid request earns', async () => {
    for (const route of ROUTES) {
      for (const [role, expected] of Object.entries(route.allowed)) {
        const { status, streaming } = await send(route, tokens.get(role) ?? '')
        assert.equal(status, expected, `${role} on ${route.plugin} (${route.method} ${route.url})`)
        note(route, role, status)
        if (route.plugin === 'verdict stream') assert.ok(streaming)
        tally.allowed = (tally.allowed ?? 0) + 1
      }
    }
    tally.routes = ROUTES.length
    tally.roles = ROLES.length
  })

  it('lets an agent read only its own proposals and its own record: another agent gets 403, without the plan', async () => {
    const intruder = await svc.tokenFor('matrix-intruder', 'agent')
    for (const url of [
      `/v1/proposals/${PROPOSAL}`,
      `/v1/proposals/${PROPOSAL}/verdict?wait=1`,
      `/v1/agents/${SUB}`,
      `/v1/agents/${SUB}/track-record?environment=production`,
    ]) {
      const { status, json } = await send({ plugin: 'ownership', method: 'GET', url, allowed: {} }, intruder)
      assert.equal(status, 403, `another agent on ${url}`)
      assert.equal(json.error, 'forbidden')
      assert.match(json.message, /only its own/)
      assert.doesNotMatch(JSON.stringify(json), /replicas|deploy-bot|matrix\/|planHash/)
      tally['403 not own'] = (tally['403 not own'] ?? 0) + 1
    }
    const own = await send(
      { plugin: 'ownership', method: 'GET', url: `/v1/proposals/${PROPOSAL}`, allowed: {} },
      tokens.get('agent') ?? '',
    )
    assert.equal(own.status, 200)
    assert.deepEqual(own.json.proposal.plan, { replicas: 3 })
  })
})
