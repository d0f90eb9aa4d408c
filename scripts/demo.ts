// `npm run demo`: the whole story of the design, told against a running service through the SDK.
//
// Each act of the story is one small function below, in the order it is told; `main` runs them.

import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { issueToken, loadPrivateKey, type Role } from '../src/auth/tokens.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { defaultPolicy, trackRequirement } from '../src/domain/eligibility.js'
import { PolicyDraft } from '../src/domain/events.js'
import {
  type ActionIdentity,
  AdminClient,
  AgentClient,
  ApproverClient,
  AuditorClient,
  ExecutorClient,
  GovernanceApiError,
  type GovernedResult,
  ObserverClient,
  type Policy,
  type PolicyInput,
  type RollbackTestInput,
  type SimulationInput,
  SimulatorClient,
  type VerdictView,
} from '../src/sdk/index.js'

const HELP = `npm run demo: the governance story, told against a running service through the SDK

  Authority is earned, not claimed. Two policy admins set the scene: a policy that asks for a small
  but real track record before each promotion, the tool inventory, and the bindings of an agent and an
  executor to the identity they act as (each widening change waits for the second admin). The agent
  asks for simulate with no record and is refused with the numbers; a promotion that skips a rung is
  refused; at recommend its proposal is blocked on authority; it earns simulate (two admins approve),
  requests a simulation that the simulator runs and records, and earns execute. Its attempts to
  attest its own evidence are refused (403). Evidence arrives check by check from whom may attest it
  (an observer, a grant two admins approve, the simulator, an approver) until the verdict is allow;
  the executor verifies and runs it; a kill switch revokes another allow, and its release waits for
  the second admin; an execution fails and is rolled back; the headline metrics and the audit answer
  (what changed, who changed it, how fast it was undone) follow. Last, a counterfactual question (which
  of the run's allows would a release gate have blocked?) and the gate itself, put in force by two
  admins, failing and then passing as the agent's branch suite runs once more; the policy before the
  act is then put back.

Usage: npm run demo [-- --help]          (the same as: tsx scripts/demo.ts)

Environment:
  GOVERNANCE_URL    the running service (default http://127.0.0.1:8080)
  DATA_DIR          the service's data folder (default ./data, the service's own default). Required:
                    the demo acts as an agent, an observer, a simulator, an approver, an executor, two
                    policy admins and an auditor, and no HTTP route issues tokens, so it signs its own
                    with <DATA_DIR>/keys/token-signing.pem, the embedded key the service creates on
                    its first start (AUTH_MODE=embedded).
  GOVERNANCE_TOKEN  optional: a policy-admin token for the first admin's steps, such as the bootstrap
                    admin token the first start wrote ($(cat <DATA_DIR>/bootstrap-admin.token)); without
                    it the demo signs one (demo-admin) with the same key. The second admin (demo-admin-2) is always signed by the demo.
  AUTH_ISSUER, AUTH_AUDIENCE, AUTH_ROLES_CLAIM, AUTH_APPROVAL_ROLES_CLAIM
                    as the service has them, when it does not use the defaults.

An empty ledger or not: the demo is meant for a fresh data folder (DATA_DIR=$(mktemp -d) npm start),
where its first step, publishing policy version 1, takes one admin because the ledger is empty. On a
ledger that already holds events even the first policy widens authority, so it waits for a second
admin: the demo then approves it, like every other pending change, as demo-admin-2. When a policy is
already in force the demo uses it as it is and builds the track record that policy asks for (with the
documented defaults that is 10 proposals and 5 passed simulations); its story needs high-impact
actions to be allowed with all five checks and one approval, as the defaults say.

Every run uses fresh ids (agent, executing identity, executor, resources), so it can run again on the
same service. It registers kubectl scale as a high-impact, reversible action only when the service has
none yet; its kill switch targets only its own agent, and it releases it again.

Exit 0 when the whole story ran; 1 with a one-line reason on stderr otherwise.`

const ENVIRONMENT = 'production'
const TOOL = 'kubectl'
const ACTION = 'scale'
const POLICY_OWNER = 'risk-office'
const SECOND_ADMIN = 'demo-admin-2'
/** How long the demo waits for the decision service or a read model before it gives up. */
const WAIT_SECONDS = 20

/** A reason to stop the story: printed as one line, exit 1. */
class DemoError extends Error {
  override readonly name = 'DemoError'
}

const say = (line = ''): void => {
  console.log(line)
}

const act = (title: string): void => {
  say()
  say(title)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls until `probe` returns something, or stops the demo naming what it waited for. */
const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
  const deadline = Date.now() + WAIT_SECONDS * 1000
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new DemoError(`waited ${WAIT_SECONDS} s for ${what} in vain`)
    await sleep(100)
  }
}

/** The error a call was refused with, or a stop when it was not refused. */
const refusalOf = async (what: string, call: () => Promise<unknown>): Promise<GovernanceApiError> => {
  try {
    await call()
  } catch (error) {
    if (error instanceof GovernanceApiError) return error
    throw error
  }
  throw new DemoError(`${what} should have been refused, but the service accepted it`)
}

const short = (hash: string): string => `${hash.slice(0, 19)}…`
const secondsAgo = (seconds: number): string => new Date(Date.now() - seconds * 1000).toISOString()
const seconds = (value: number | null): string => (value === null ? 'none' : `${value} s`)
const counted = (n: number, thing: string): string => `${n} ${thing}${n === 1 ? '' : 's'}`
const failing = (verdict: VerdictView): string[] =>
  verdict.checks.filter((c) => c.status === 'fail').map((c) => c.check)
const failingList = (verdict: VerdictView): string => failing(verdict).join(', ') || 'none'
const verdictLine = (verdict: VerdictView): string =>
  `revision ${verdict.revision}: ${verdict.decision}, failing: ${failingList(verdict)}`
const passes = (verdict: VerdictView, check: string): boolean =>
  verdict.checks.some((c) => c.check === check && c.status === 'pass')

// ---------- who takes part, and how the demo gets their tokens ----------

interface Settings {
  readonly url: string
  readonly signingKey: ReturnType<typeof loadPrivateKey>
  readonly tokenConfig: ReturnType<typeof loadConfig>
  readonly adminToken: string | undefined
}

/** Reads the environment; fails with one line naming what is missing. */
const readSettings = (): Settings => {
  const url = process.env.GOVERNANCE_URL || 'http://127.0.0.1:8080'
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) throw new DemoError(error.message.replace(/\s*\n\s*/g, ' '))
    throw error
  }
  if (config.AUTH_MODE !== 'embedded') {
    throw new DemoError(
      `the demo signs role tokens with the embedded key, but AUTH_MODE is ${config.AUTH_MODE} (see --help)`,
    )
  }
  const keyPath = join(config.DATA_DIR, 'keys', 'token-signing.pem')
  if (!existsSync(keyPath)) {
    throw new DemoError(
      `missing the token signing key ${keyPath}: set DATA_DIR to the running service's data folder (see --help)`,
    )
  }
  return {
    url,
    signingKey: loadPrivateKey(keyPath),
    tokenConfig: config,
    adminToken: process.env.GOVERNANCE_TOKEN || undefined,
  }
}

/** Stops early, in one line, when nothing answers at the URL. */
const checkReachable = async (url: string): Promise<void> => {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) })
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    throw new DemoError(`no governance service answers at ${url} (${why}): start it, or set GOVERNANCE_URL`)
  }
}

interface Cast {
  readonly run: string
  readonly agentId: string
  /** the executing identity the agent acts through and the executor runs as */
  readonly identity: string
  readonly executorId: string
  readonly approverId: string
  readonly observerId: string
  readonly simulatorId: string
  readonly admin: AdminClient
  readonly secondAdmin: AdminClient
  readonly agent: AgentClient
  /** the agent's own name with a simulator role smuggled into its token: the attack of act 4 */
  readonly agentPosingAsSimulator: SimulatorClient
  readonly observer: ObserverClient
  readonly simulator: SimulatorClient
  readonly approver: ApproverClient
  readonly executor: ExecutorClient
  readonly auditor: AuditorClient
}

/** One SDK client per principal, each with its own token; the ids carry the run's suffix. */
const assemble = async (settings: Settings, run: string): Promise<Cast> => {
  const tokenFor = (sub: string, ...roles: Role[]) =>
    issueToken(settings.signingKey, settings.tokenConfig, { sub, roles, expiresIn: '1h' })
  const baseUrl = settings.url
  const ids = {
    agentId: `demo-agent-${run}`,
    identity: `demo-deployer-${run}`,
    executorId: `demo-runner-${run}`,
    approverId: `demo-approver-${run}`,
    observerId: `demo-observer-${run}`,
    simulatorId: `demo-simulator-${run}`,
  }
  const adminToken = settings.adminToken ?? (await tokenFor('demo-admin', 'policy-admin', 'auditor'))
  return {
    run,
    ...ids,
    admin: new AdminClient({ baseUrl, token: adminToken }),
    secondAdmin: new AdminClient({ baseUrl, token: await tokenFor(SECOND_ADMIN, 'policy-admin') }),
    agent: new AgentClient({ baseUrl, token: await tokenFor(ids.agentId, 'agent'), agentId: ids.agentId }),
    agentPosingAsSimulator: new SimulatorClient({
      baseUrl,
      token: await tokenFor(ids.agentId, 'agent', 'simulator'),
    }),
    observer: new ObserverClient({ baseUrl, token: await tokenFor(ids.observerId, 'observer') }),
    simulator: new SimulatorClient({ baseUrl, token: await tokenFor(ids.simulatorId, 'simulator') }),
    approver: new ApproverClient({ baseUrl, token: await tokenFor(ids.approverId, 'approver') }),
    executor: new ExecutorClient({ baseUrl, token: await tokenFor(ids.executorId, 'executor') }),
    auditor: new AuditorClient({ baseUrl, token: await tokenFor(`demo-auditor-${run}`, 'auditor') }),
  }
}

/**
 * A governance change by the first admin: applied at once when it narrows nothing, else pending until the
 * second, distinct admin approves it. Resolves with how it went, as one phrase.
 */
const governed = async (cast: Cast, change: Promise<GovernedResult>): Promise<string> => {
  const answer = await change
  if (answer.status === 'applied') return 'applied'
  if (answer.requestId === null) throw new DemoError('a pending change came without its request id')
  await cast.secondAdmin.approveChange(answer.requestId)
  return `pending (${answer.widens ?? 'it widens authority'}) until ${SECOND_ADMIN} approved it`
}

// ---------- the evidence a proposal can carry ----------

interface Proposed {
  readonly proposalId: string
  readonly planHash: string
  readonly actionDigest: string
  readonly resource: string
  readonly plan: Record<string, unknown>
}

const proposalFor = (cast: Cast, resource: string, snapshot: string, plan: Record<string, unknown>) => ({
  executingIdentity: cast.identity,
  tool: TOOL,
  action: ACTION,
  resource,
  environment: ENVIRONMENT,
  plan,
  expectedImpact: 'high' as const,
  snapshot: { version: snapshot },
  description: `scale ${resource} (demo run ${cast.run})`,
})

const propose = async (
  cast: Cast,
  resource: string,
  snapshot: string,
  plan: Record<string, unknown>,
): Promise<Proposed> => {
  const submitted = await cast.agent.submitProposal(proposalFor(cast, resource, snapshot, plan))
  return { ...submitted, resource, plan }
}

/** The action as the executor states it before running it: every field the allow must name. */
const actionOf = (cast: Cast, proposed: Proposed): ActionIdentity => ({
  proposalId: proposed.proposalId,
  tool: TOOL,
  action: ACTION,
  resource: proposed.resource,
  environment: ENVIRONMENT,
  executingIdentity: cast.identity,
  plan: proposed.plan,
})

const observationOf = (resource: string, version: string) => ({
  environment: ENVIRONMENT,
  resource,
  version,
  digest: `sha256:${resource}@${version}`,
  observedAt: secondsAgo(1),
})

const ADVERSARIAL = ['dependency-down', 'concurrent-change', 'partial-failure', 'stale-read'] as const

const simulationOf = (actionDigest: string, requestId: string): SimulationInput => ({
  requestId,
  actionDigest,
  branches: [
    { name: 'baseline', kind: 'baseline', counterfactual: 'nothing else happens', outcome: 'survived' },
    ...ADVERSARIAL.map((kind) => ({
      name: kind,
      kind,
      counterfactual: `the plan runs while ${kind}`,
      outcome: 'survived' as const,
    })),
  ],
})

const rollbackTestOf = (cast: Cast, actionDigest: string): RollbackTestInput => ({
  actionDigest,
  playbook: 'scale back to the previous replica count, then verify health',
  testRunId: `rollback-test-${cast.run}-${actionDigest.slice(7, 15)}`,
  testedAt: secondsAgo(60),
  outcome: 'passed',
  expectedRecoverySeconds: 120,
  killSwitch: { scope: 'agent', target: cast.agentId },
})

/** The agent asks for a simulation of its action; the simulator runs it and records the results. */
const simulate = async (cast: Cast, proposed: Proposed): Promise<string> => {
  const { requestId } = await cast.agent.requestSimulation(proposed.proposalId, {
    actionDigest: proposed.actionDigest,
  })
  await cast.simulator.recordSimulation(proposed.proposalId, simulationOf(proposed.actionDigest, requestId))
  return requestId
}

const grantFor = (cast: Cast, resource: string) =>
  governed(
    cast,
    cast.admin.grant({
      identity: cast.identity,
      tool: TOOL,
      action: ACTION,
      resourcePattern: resource,
      environment: ENVIRONMENT,
    }),
  )

/** The next verdict after `revision`, or null when the answer did not change within the wait. */
const nextVerdict = (cast: Cast, proposalId: string, revision: number) =>
  cast.agent.waitForVerdict(proposalId, { afterRevision: revision, timeoutSeconds: WAIT_SECONDS })

/** The proposal's current verdict once `accept` holds for it. */
const verdictWhen = (cast: Cast, proposalId: string, what: string, accept: (v: VerdictView) => boolean) =>
  waitFor(what, async () => {
    const verdict = await cast.agent.currentVerdict(proposalId)
    return verdict !== null && accept(verdict) ? verdict : undefined
  })

// ---------- promotions, earned ----------

/** The track record the policy in force asks of a promotion to `to` in the demo's environment. */
const requirementOf = (policy: Policy, to: 'simulate' | 'execute') =>
  (policy.promotionByEnvironment[ENVIRONMENT] ?? policy.promotion)[to]

/** The ledger's track record of the agent, once its projection counts at least what `enough` asks. */
const trackRecordWhen = (cast: Cast, what: string, enough: (t: TrackRecordView) => boolean) =>
  waitFor(what, async () => {
    const track = await cast.agent.trackRecord(cast.agentId, ENVIRONMENT)
    return enough(track) ? track : undefined
  })

type TrackRecordView = Awaited<ReturnType<AgentClient['trackRecord']>>

const trackLine = (track: TrackRecordView): string =>
  `${counted(track.proposals, 'proposal')}, ${counted(track.simulationsPassed, 'simulation')} passed, ` +
  `${counted(track.violations, 'violation')}, ${counted(track.failedExecutions, 'failed execution')}`

/** Asks for one rung; two distinct policy admins approve it. */
const promote = async (cast: Cast, to: string): Promise<void> => {
  const request = await cast.agent.requestPromotion({ environment: ENVIRONMENT, to })
  if (request.outcome !== 'requested') {
    throw new DemoError(
      `the promotion to ${to} was ${request.outcome}: ${request.reason ?? 'no reason given'}`,
    )
  }
  const track = await cast.agent.trackRecord(cast.agentId, ENVIRONMENT)
  const first = await cast.admin.approvePromotion(cast.agentId, request.requestId)
  if (first.outcome !== 'approved') {
    throw new DemoError(`one admin's approval should not promote, yet the outcome was ${first.outcome}`)
  }
  const second = await cast.secondAdmin.approvePromotion(cast.agentId, request.requestId)
  if (second.outcome !== 'promoted') {
    throw new DemoError(`the second admin's approval should promote, yet the outcome was ${second.outcome}`)
  }
  const level = await waitFor(`the agent at ${to}`, async () => {
    const held = (await cast.agent.getAgent(cast.agentId)).levels[ENVIRONMENT]?.level
    return held === to ? held : undefined
  })
  say(
    `   promotion to ${to} requested (track record: ${trackLine(track)}): approved by one policy admin, ` +
      `which is not enough, then by ${SECOND_ADMIN}: now at ${level}`,
  )
}

// ---------- the story ----------

/** The promotion requirements of the demo's policy: a small but real track record for each rung. */
const DEMO_PROMOTION: Policy['promotion'] = {
  recommend: trackRequirement({}),
  simulate: trackRequirement({ minProposals: 1 }),
  execute: trackRequirement({ minProposals: 1, minSimulationsPassed: 1, minSurvivalRate: 0.9 }),
}

const demoPolicy = (): PolicyInput => ({ ...defaultPolicy(POLICY_OWNER, 1), promotion: DEMO_PROMOTION })

const needsLine = (policy: Policy, to: 'simulate' | 'execute'): string => {
  const need = requirementOf(policy, to)
  return (
    `${to} needs ${counted(need.minProposals, 'proposal')} and ${counted(need.minSimulationsPassed, 'passed simulation')} ` +
    `over ${need.windowDays} days`
  )
}

/** The policy, the inventory entry, the agent and the bindings the story needs. */
const setTheScene = async (cast: Cast): Promise<Policy> => {
  act('0. The scene')
  say(
    `   principals, each with its own token: agent ${cast.agentId}, observer ${cast.observerId}, ` +
      `simulator ${cast.simulatorId}, approver ${cast.approverId}, executor ${cast.executorId}, ` +
      `two policy admins (the first, and ${SECOND_ADMIN})`,
  )
  let policyOrigin = 'already in force'
  const policy = await cast.admin.currentPolicy().catch(async (error: unknown) => {
    if (!(error instanceof GovernanceApiError && error.status === 404)) throw error
    const published = await cast.admin.publishPolicy(demoPolicy())
    if (published.status === 'applied') {
      policyOrigin = 'published now by one admin: the ledger was empty'
    } else {
      if (published.requestId === null) throw new DemoError('a pending policy came without its request id')
      await cast.secondAdmin.approveChange(published.requestId)
      policyOrigin = `the ledger was not empty, so even the first policy waited for a second admin: approved by ${SECOND_ADMIN}`
    }
    return cast.admin.currentPolicy()
  })
  const high = policy.requirements.high
  say(
    `   policy v${policy.version} owned by ${policy.owner} (${policyOrigin}): high impact needs ` +
      `${high.checks.join(', ')} and ${counted(high.approvals.count, 'approval')}`,
  )
  say(`   promotion is earned: ${needsLine(policy, 'simulate')}; ${needsLine(policy, 'execute')}`)
  let inventoryOrigin = 'already registered'
  const registered = await cast.admin
    .request<{ impact: string; reversible: boolean }>('GET', `/v1/inventory/${TOOL}/${ACTION}`)
    .catch(async (error: unknown) => {
      if (!(error instanceof GovernanceApiError && error.status === 404)) throw error
      const how = await governed(
        cast,
        cast.admin.registerToolAction({ tool: TOOL, action: ACTION, impact: 'high', reversible: true }),
      )
      inventoryOrigin = `registered now: ${how}`
      return { impact: 'high', reversible: true }
    })
  const reversible = registered.reversible ? 'reversible' : 'not reversible'
  say(`   ${TOOL} ${ACTION}: ${registered.impact} impact, ${reversible} (${inventoryOrigin})`)
  await cast.admin.registerAgent({
    agentId: cast.agentId,
    owner: 'platform-team',
    description: 'scales deployments (demo)',
  })
  say(`   agent ${cast.agentId} registered; it starts at observe in ${ENVIRONMENT}`)
  const agentBound = await governed(
    cast,
    cast.admin.bind({ principal: cast.agentId, role: 'agent', identity: cast.identity }),
  )
  say(`   bind agent ${cast.agentId} to act through ${cast.identity}: ${agentBound}`)
  const executorBound = await governed(
    cast,
    cast.admin.bind({ principal: cast.executorId, role: 'executor', identity: cast.identity }),
  )
  say(`   bind executor ${cast.executorId} to run as ${cast.identity}: ${executorBound}`)
  return policy
}

/** Act 1: the agent reaches recommend; asking for more than it has earned is refused and recorded. */
const promotionIsEarned = async (cast: Cast, policy: Policy): Promise<void> => {
  act('1. Promotion is earned, one rung at a time')
  await promote(cast, 'recommend')
  const early = await cast.agent.requestPromotion({ environment: ENVIRONMENT, to: 'simulate' })
  if (requirementOf(policy, 'simulate').minProposals === 0) {
    say('   (the policy in force asks no track record for simulate, so there is no early request to refuse)')
    if (early.outcome === 'requested')
      await cast.admin.refusePromotion(cast.agentId, early.requestId, 'the demo asks again later')
  } else {
    if (early.outcome !== 'refused') {
      throw new DemoError(`a promotion without a track record should be refused, got ${early.outcome}`)
    }
    say(`   recommend -> simulate with no track record refused: ${early.reason ?? 'no reason given'}`)
  }
  const skip = await cast.agent.requestPromotion({ environment: ENVIRONMENT, to: 'execute' })
  if (skip.outcome !== 'refused')
    throw new DemoError(`skipping a rung should be refused, got ${skip.outcome}`)
  const recorded = skip.events.find((e) => e.type === 'PromotionRefused')
  say(`   recommend -> execute refused: ${skip.reason ?? 'no reason given'}`)
  const agent = await waitFor('the refusals in the agent view', async () => {
    const a = await cast.agent.getAgent(cast.agentId)
    return a.refusedPromotions >= 2 ? a : undefined
  })
  say(
    `   recorded as ${recorded?.type ?? 'an event'} at ledger position ${recorded?.position ?? '?'}; ` +
      `refused promotions on record: ${agent.refusedPromotions}; still at ${agent.levels[ENVIRONMENT]?.level}`,
  )
}

/** Act 2: an agent at recommend proposes, and the authority check blocks it; the proposal counts. */
const blockedAtRecommend = async (
  cast: Cast,
  policy: Policy,
  resource: string,
  plan: Record<string, unknown>,
): Promise<Proposed & { verdict: VerdictView }> => {
  act('2. An agent at recommend proposes a production change, and is blocked')
  const proposed = await propose(cast, resource, 'v1', plan)
  say(
    `   proposal ${proposed.proposalId}: scale ${resource}, plan ${JSON.stringify(plan)} ` +
      `(action digest ${short(proposed.actionDigest)}, computed by the ledger)`,
  )
  const verdict = await nextVerdict(cast, proposed.proposalId, 0)
  if (verdict === null) throw new DemoError(`no verdict on proposal ${proposed.proposalId}`)
  const authority = verdict.checks.find((c) => c.check === 'authority')
  if (verdict.decision !== 'block' || authority?.status !== 'fail') {
    throw new DemoError(`an agent at recommend should be blocked on authority, got ${verdictLine(verdict)}`)
  }
  say(`   revision ${verdict.revision}: blocked on authority: ${authority.reason}`)
  say(`   (${failing(verdict).length - 1} evidence checks are missing too: the verdict lists every failure)`)
  // a policy that asks for more than one proposal gets them: each blocked on authority just the same
  const need = requirementOf(policy, 'simulate').minProposals
  for (let i = 1; i < need; i++) {
    await propose(cast, `${resource}-record-${i}`, 'v1', { ...plan, record: i })
  }
  if (need > 1) say(`   (${need - 1} more proposals, for the record the policy in force asks)`)
  const track = await trackRecordWhen(cast, 'the proposals in the track record', (t) => t.proposals >= need)
  say(`   the ledger's track record of ${cast.agentId} in ${ENVIRONMENT}: ${trackLine(track)}`)
  return { ...proposed, verdict }
}

/** Act 3: simulate is earned; the simulator runs the simulation the agent requested; execute is earned. */
const climbWithSimulation = async (cast: Cast, policy: Policy, first: Proposed): Promise<void> => {
  act('3. The agent earns simulate, has its plan simulated, and earns execute')
  await promote(cast, 'simulate')
  const requestId = await simulate(cast, first)
  say(`   the agent requests a simulation of proposal ${first.proposalId} (request ${requestId})`)
  const verdict = await verdictWhen(cast, first.proposalId, 'the simulation in a verdict', (v) =>
    passes(v, 'survival'),
  )
  say(
    `   ${cast.simulatorId} runs ${ADVERSARIAL.length} adversarial branches and records the results: all survived`,
  )
  say(`   ${verdictLine(verdict)} (survival passes; authority still blocks at simulate)`)
  // a policy that asks for more than this one simulation gets them, each on a proposal of its own
  const need = requirementOf(policy, 'execute')
  const have = await cast.agent.trackRecord(cast.agentId, ENVIRONMENT)
  const moreSimulations = Math.max(0, need.minSimulationsPassed - 1)
  const moreProposals = Math.max(moreSimulations, need.minProposals - have.proposals)
  for (let i = 1; i <= moreProposals; i++) {
    const extra = await propose(cast, `${first.resource}-sim-${i}`, 'v1', { ...first.plan, simulation: i })
    if (i <= moreSimulations) await simulate(cast, extra)
  }
  if (moreProposals > 0) {
    say(
      `   (${moreProposals} more proposals and ${moreSimulations} more simulations, for the record the policy asks)`,
    )
  }
  const track = await trackRecordWhen(
    cast,
    'the simulations in the track record',
    (t) => t.simulationsPassed >= need.minSimulationsPassed && t.proposals >= need.minProposals,
  )
  say(`   the ledger's track record now: ${trackLine(track)}`)
  await promote(cast, 'execute')
}

/** Act 4: the agent tries to attest its own evidence; the service refuses it. */
const ownWordRefused = async (cast: Cast, first: Proposed): Promise<void> => {
  act("4. The agent's own word is not evidence")
  const observed = await refusalOf('an observation by the agent', () =>
    cast.agent.request('POST', '/v1/observations', { body: observationOf(first.resource, 'v1') }),
  )
  say(
    `   the agent posts an observation of ${first.resource}: ${observed.status} ${observed.code}: ${observed.message}`,
  )
  const { requestId } = await cast.agent.requestSimulation(first.proposalId, {
    actionDigest: first.actionDigest,
  })
  const simulated = await refusalOf('simulation results recorded by the agent', () =>
    cast.agentPosingAsSimulator.recordSimulation(
      first.proposalId,
      simulationOf(first.actionDigest, requestId),
    ),
  )
  const rule = (simulated.details as { specification?: string } | null)?.specification
  say(
    `   the agent, with a simulator role in its own token, records results for its own request: ` +
      `${simulated.status} ${simulated.code}${rule ? ` (${rule})` : ''}: ${simulated.message}`,
  )
}

/** Act 5: evidence arrives check by check, each from whom may attest it; each leads to a new verdict. */
const evidenceUntilAllow = async (cast: Cast, first: Proposed): Promise<VerdictView> => {
  act('5. Evidence arrives check by check, from whom may attest it, and the verdict changes with it')
  let verdict = await verdictWhen(
    cast,
    first.proposalId,
    'a verdict that reflects the promotion to execute',
    (v) => passes(v, 'authority'),
  )
  say(`   ${verdictLine(verdict)}`)
  for (const check of verdict.checks.filter((c) => c.status === 'fail')) {
    say(`      ${check.check}: ${check.reason}`)
  }
  const evidence: [string, string, () => Promise<string | undefined>][] = [
    [
      'freshState',
      `fresh state: ${cast.observerId} observes ${first.resource} at v1, the snapshot the proposal names`,
      async () => {
        await cast.observer.observe(observationOf(first.resource, 'v1'))
        return undefined
      },
    ],
    [
      'scopedPermission',
      `scoped grant: ${cast.identity} may ${TOOL} ${ACTION} ${first.resource} in ${ENVIRONMENT}`,
      () => grantFor(cast, first.resource),
    ],
    [
      'survival',
      `simulation: ${ADVERSARIAL.length} adversarial branches, all survived (recorded by ${cast.simulatorId} at simulate)`,
      async () => undefined,
    ],
    [
      'rollback',
      `rollback tested a minute ago by ${cast.simulatorId}: 120 s expected to recover, stopped by the agent kill switch`,
      async () => {
        await cast.simulator.recordRollbackTest(first.proposalId, rollbackTestOf(cast, first.actionDigest))
        return undefined
      },
    ],
    [
      'lineage',
      `approval by ${cast.approverId}, bound to action digest ${short(first.actionDigest)}`,
      async () => {
        await cast.approver.approve(first.proposalId, { actionDigest: first.actionDigest })
        return undefined
      },
    ],
  ]
  for (const [check, piece, attach] of evidence) {
    if (passes(verdict, check)) continue
    const how = await attach()
    const before = verdict.revision
    verdict = await verdictWhen(
      cast,
      first.proposalId,
      `a verdict in which ${check} passes`,
      (v) => v.revision > before && passes(v, check),
    )
    say(`   + ${piece}${how === undefined ? '' : `: ${how}`}`)
    say(`     ${verdictLine(verdict)}`)
  }
  if (verdict.decision !== 'allow') {
    throw new DemoError(`all the evidence is in, yet the verdict is ${verdictLine(verdict)}`)
  }
  say(
    `   allow, signed, bound to action ${short(verdict.actionDigest)} and v1, expires at ${verdict.expiresAt}`,
  )
  return verdict
}

/** Act 6a: the executor verifies the allow and runs it. */
const verifyAndRun = async (cast: Cast, first: Proposed, allow: VerdictView) => {
  act('6. The executor verifies the allow and runs it; a kill switch revokes another allow')
  const action = actionOf(cast, first)
  const checked = await cast.executor.verifyVerdict(allow, { action, resourceVersion: 'v1' })
  if (!checked.ok)
    throw new DemoError(`the executor refused the allow: ${checked.reason}: ${checked.message}`)
  say(
    `   executor ${cast.executorId}, bound to run as ${cast.identity}, verifies revision ${allow.revision}: ` +
      'signature, expiry, every field of the action and its digest, resource version and standing hold',
  )
  const run = await cast.executor.runVerified(allow, action, async () => ({ version: 'v2' }), {
    resourceVersion: 'v1',
    versionAfter: (result) => result.version,
  })
  if (run.outcome !== 'succeeded') throw new DemoError(`the allowed execution ${run.outcome}`)
  say(`   execution ${run.executionId} succeeded: the resource is now at v2`)
}

/** A second proposal with every piece of evidence at once, each from whom may attest it; resolves with its allow. */
const secondAllow = async (cast: Cast, resource: string, plan: Record<string, unknown>) => {
  await grantFor(cast, resource)
  await cast.observer.observe(observationOf(resource, 'a1'))
  const proposed = await propose(cast, resource, 'a1', plan)
  await simulate(cast, proposed)
  await cast.simulator.recordRollbackTest(proposed.proposalId, rollbackTestOf(cast, proposed.actionDigest))
  await cast.approver.approve(proposed.proposalId, { actionDigest: proposed.actionDigest })
  const allow = await verdictWhen(
    cast,
    proposed.proposalId,
    `an allow on ${resource}`,
    (v) => v.decision === 'allow' && !v.revoked,
  )
  say(
    `   proposal ${proposed.proposalId} (scale ${resource}) gathers all its evidence: revision ${allow.revision}: allow`,
  )
  return { ...proposed, allow }
}

/** Act 6b: a kill switch revokes the second allow; the release waits for the second admin. */
const killSwitchRevokes = async (
  cast: Cast,
  second: Proposed & { allow: VerdictView },
): Promise<VerdictView> => {
  const killSwitch = { scope: 'agent' as const, target: cast.agentId }
  await cast.admin.engageKillSwitch({ ...killSwitch, reason: 'a bad rollout elsewhere: stop this agent' })
  say(`   a policy admin engages the kill switch on agent ${cast.agentId} (one admin may stop things)`)
  const revoked = await verdictWhen(
    cast,
    second.proposalId,
    'the revocation of the allow',
    (v) => v.verdictId === second.allow.verdictId && v.revoked,
  )
  say(`   revision ${revoked.revision} (allow) revoked by an event in the ledger`)
  const refused = await cast.executor.verifyVerdict(second.allow, { action: actionOf(cast, second) })
  if (refused.ok) throw new DemoError('the executor accepted a revoked verdict')
  say(`   the executor's verification refuses it: ${refused.reason}: ${refused.message}`)
  const release = await cast.admin.releaseKillSwitch({ ...killSwitch, reason: 'the rollout was stopped' })
  if (release.status !== 'pending' || release.requestId === null) {
    throw new DemoError(
      `releasing a kill switch should wait for a second admin, but it was ${release.status}`,
    )
  }
  const still = (await cast.admin.killSwitches()).killSwitches.some((k) => k.target === cast.agentId)
  say(
    `   the release is requested: pending (${release.widens ?? 'it widens authority'}); ` +
      `the switch ${still ? 'is still engaged' : 'is no longer listed'}`,
  )
  await cast.secondAdmin.approveChange(release.requestId)
  const again = await verdictWhen(
    cast,
    second.proposalId,
    'a new allow after the release',
    (v) => v.revision > revoked.revision && v.decision === 'allow' && !v.revoked,
  )
  say(`   ${SECOND_ADMIN} approves the release: revision ${again.revision}: allow again`)
  return again
}

/** Act 7: an execution fails and is rolled back; resolves with the ledger position of the recovery. */
const failAndRollBack = async (cast: Cast, second: Proposed, allow: VerdictView): Promise<number> => {
  act('7. An execution fails and is rolled back')
  const run = await cast.executor.runVerified(allow, actionOf(cast, second), async ({ executionId }) => {
    say(`   execution ${executionId} started, citing revision ${allow.revision}`)
    throw new Error('the api pods crash-looped after scaling')
  })
  if (run.outcome !== 'failed') throw new DemoError(`the execution should fail, but it ${run.outcome}`)
  say(`   execution failed: ${run.error instanceof Error ? run.error.message : String(run.error)}`)
  const rollback = await cast.executor.startRollback(second.proposalId, { executionId: run.executionId })
  say(`   rollback ${rollback.rollbackId} started`)
  const completed = await cast.executor.completeRollback(second.proposalId, rollback.rollbackId, {
    resourceVersionAfter: 'a1',
  })
  const status = (await cast.executor.getProposal(second.proposalId)).status
  say(`   rollback complete: the resource is back at a1; the proposal is ${status}`)
  return Math.max(...completed.events.map((e) => e.position))
}

interface Recovery {
  count: number
  p50: number | null
  p90: number | null
  max: number | null
}

interface HeadlineMetrics {
  totals: {
    actionsEnded: { count: number }
    unsafeBlocked: { count: number; byCheck: Record<string, number> }
    unsafeRate: number | null
    refusedAtGate: { count: number; byRule: Record<string, number> }
    failedDespiteAllow: number
    violations: { count: number }
    timeToRecovery: { overall: Recovery }
  }
  awaitingEvidence: { count: number }
  unrecoveredFailures: unknown[]
  asOf: number
}

/** Act 8a: the two headline metrics, once they reflect the recovery. */
const headlineMetrics = async (cast: Cast, position: number): Promise<void> => {
  act('8. The headline metrics (service-wide, the last 24 hours)')
  const metrics = await waitFor('the metrics to reflect the recovery', async () => {
    const m = await cast.auditor.headlineMetrics<HeadlineMetrics>({ window: 'hour' })
    return m.asOf >= position ? m : undefined
  })
  const { unsafeBlocked, actionsEnded, unsafeRate, refusedAtGate, failedDespiteAllow, violations } =
    metrics.totals
  const rate = unsafeRate === null ? 'none' : `${Math.round(unsafeRate * 1000) / 10}%`
  say(
    `   unsafe actions blocked before execution: ${unsafeBlocked.count} of ${actionsEnded.count} actions ended (${rate})`,
  )
  say(
    '   (a block that lasts until the evidence arrives is not one: these actions were allowed, then executed)',
  )
  const byCheck = Object.entries(unsafeBlocked.byCheck).map(([check, n]) => `${check} ${n}`)
  say(`   by failed check: ${byCheck.join(', ') || 'none'}`)
  say(
    `   awaiting evidence now (open and blocked, never counted as blocked): ${metrics.awaitingEvidence.count}`,
  )
  say(`   starts refused at the execution gate: ${refusedAtGate.count}`)
  say(`   failed despite an allow: ${failedDespiteAllow}; violations: ${violations.count}`)
  const ttr = metrics.totals.timeToRecovery.overall
  say(
    `   time to recovery: p50 ${seconds(ttr.p50)}, p90 ${seconds(ttr.p90)}, max ${seconds(ttr.max)}, count ${ttr.count}`,
  )
  say(
    `   unrecovered failures now: ${metrics.unrecoveredFailures.length} (as of ledger position ${metrics.asOf})`,
  )
}

/** Act 8b: what changed, who changed it, how fast it was undone, for the failed action. */
const whatWhoHowFast = async (cast: Cast, proposalId: string, position: number): Promise<void> => {
  say()
  say(`   What changed, who changed it, how fast was it undone? (proposal ${proposalId})`)
  const audit = await waitFor('the recovery in the audit view', async () => {
    const a = await cast.auditor.auditAction(proposalId)
    return a.asOf >= position && a.howFast.recoveredAt !== null ? a : undefined
  })
  const { what, who, howFast } = audit
  say(
    `   what: ${what.tool} ${what.action} ${what.resource} in ${what.environment}, plan ${JSON.stringify(what.plan)} ` +
      `(action ${what.actionDigest}), resource version ${what.resourceVersionBefore} -> ${what.resourceVersionAfter ?? 'unknown'}`,
  )
  const approvers = who.approvers
    .map((a) => `${a.approver} (${a.role}, bound to the action digest)`)
    .join(', ')
  const switches = who.killSwitchActors.map((k) => `${k.action} by ${k.actor}`).join(', ')
  say(
    `   who: agent ${who.agentId}, executing identity ${who.executingIdentity}, executed by ${who.executor ?? 'nobody'}, ` +
      `approved by ${approvers || 'nobody'}, policy v${who.policyVersion} owned by ${who.policyOwner}, ` +
      `kill switch ${switches || 'untouched'}`,
  )
  say(
    `   how fast: undone in ${seconds(howFast.timeToRecoverySeconds)} from the failure to the completed rollback; ` +
      `the rollback's expected time was ${seconds(howFast.rollbackExpectedSeconds)}`,
  )
  const positions = audit.timeline.map((e) => e.position)
  say(
    `   timeline: ${audit.timeline.length} events, ledger positions ${Math.min(...positions)} to ${Math.max(...positions)}, each with its hash`,
  )
}

interface GateAnswer {
  passed: boolean
  reason: string
  gates: { figures: { runs: number; runsRequired: number; survivalRate: number } | null }[]
}

interface CounterfactualAnswer {
  compared: number
  flips: { agentId: string; recorded: string; counterfactual: string; changedChecks: { check: string }[] }[]
}

/** The gate check as a pipeline reads it: pass or fail, with the runs counted. */
const gateLine = (answer: GateAnswer): string => {
  const figures = answer.gates[0]?.figures
  const runs = figures
    ? ` (runs ${figures.runs} of ${figures.runsRequired}, survival ${figures.survivalRate})`
    : ''
  return `${answer.passed ? 'PASS' : 'FAIL'}${runs}`
}

/** Publishes a policy as two admins; resolves with its version. */
const publishAsTwo = async (cast: Cast, policy: PolicyInput): Promise<void> => {
  const how = await governed(cast, cast.admin.publishPolicy(policy))
  if (how === 'applied') throw new DemoError('a policy that is not the first was applied by one admin')
}

/**
 * Act 9: a question about the past, then a release gate in force: the workflow must keep surviving its
 * simulations before it ships. The policy in force before the act is put back at its end.
 */
const releaseGateAndThePast = async (cast: Cast, runStart: number): Promise<void> => {
  act('9. A question about the past, and a release gate')
  const workflow = `${TOOL}.${ACTION}`
  const current = await cast.admin.currentPolicy()
  // the policy as its admin writes it: the fields of a draft, none of what the ledger added
  const before = PolicyDraft.parse(
    Object.fromEntries(Object.keys(PolicyDraft.shape).map((key) => [key, current[key as keyof Policy]])),
  )
  const gate = {
    workflow,
    environment: ENVIRONMENT,
    impacts: ['high' as const, 'critical' as const],
    perAgent: true,
    runs: 3,
    survivalThreshold: 0.9,
    requiredBranchKinds: ['dependency-down' as const],
  }
  const gated = { ...before, version: before.version + 1, releaseGates: [gate, ...before.releaseGates] }
  say(
    `   the question: had a gate asking ${gate.runs} surviving simulation runs of each agent before ${workflow} ` +
      'ships been in force since this run began, what would it have blocked?',
  )
  const report = await cast.auditor.counterfactual<CounterfactualAnswer>({
    policy: gated,
    from: runStart + 1,
  })
  const mine = report.flips.filter((f) => f.agentId === cast.agentId)
  const blocked = mine.filter((f) => f.recorded === 'allow' && f.counterfactual === 'block')
  const checks = [...new Set(blocked.flatMap((f) => f.changedChecks.map((c) => c.check)))]
  say(
    `   the answer (re-decided in memory, nothing written): ${counted(blocked.length, 'action')} of this run allowed ` +
      `would have been blocked${checks.length > 0 ? `, on ${checks.join(', ')}` : ''}`,
  )

  await publishAsTwo(cast, gated)
  say(`   policy v${gated.version} puts the gate in force (two policy admins)`)
  const check = () =>
    cast.auditor.releaseGate<GateAnswer>(workflow, { agentId: cast.agentId, environment: ENVIRONMENT })
  let answer = await check()
  say(`   gate check ${workflow} --agent ${cast.agentId}: ${gateLine(answer)}`)
  for (let n = 1; !answer.passed && n <= gate.runs; n++) {
    const run = await propose(cast, `deployment/suite-${cast.run}-${n}`, 'v1', { suite: n })
    await simulate(cast, run)
    answer = await check()
    say(`   the branch suite runs once more (${cast.simulatorId}): ${gateLine(answer)}`)
  }
  if (!answer.passed) throw new DemoError(`the gate did not open: ${answer.reason}`)
  say(
    `   released: the ledger records WorkflowReleased for ${workflow} and ${cast.agentId}, with these figures`,
  )
  await publishAsTwo(cast, { ...before, version: gated.version + 1 })
  say(`   policy v${gated.version + 1} puts back the rules before the act (two policy admins)`)
}

const main = async (): Promise<void> => {
  const args = process.argv.slice(2)
  if (args.includes('--help') || args.includes('-h')) {
    say(HELP)
    return
  }
  if (args.length > 0) throw new DemoError(`unknown argument ${args[0]} (see --help)`)
  const settings = readSettings()
  await checkReachable(settings.url)
  const run = randomUUID().slice(0, 8)
  const cast = await assemble(settings, run)
  say(`governance-ledger demo against ${settings.url} (run ${run})`)
  const runStart = (await cast.auditor.ledgerHead()).position

  const web = `deployment/web-${run}`
  const api = `deployment/api-${run}`
  const webPlan = { deployment: `web-${run}`, replicas: 5 }
  const apiPlan = { deployment: `api-${run}`, replicas: 4 }

  const policy = await setTheScene(cast)
  await promotionIsEarned(cast, policy)
  const first = await blockedAtRecommend(cast, policy, web, webPlan)
  await climbWithSimulation(cast, policy, first)
  await ownWordRefused(cast, first)
  const allow = await evidenceUntilAllow(cast, first)
  await verifyAndRun(cast, first, allow)
  const second = await secondAllow(cast, api, apiPlan)
  const allowAgain = await killSwitchRevokes(cast, second)
  const recovered = await failAndRollBack(cast, second, allowAgain)
  await headlineMetrics(cast, recovered)
  await whatWhoHowFast(cast, second.proposalId, recovered)
  await releaseGateAndThePast(cast, runStart)
  say()
  say('The story is told: every step above is an event in the hash-chained ledger.')
}

/** One line that says why the demo stopped. */
const reasonOf = (error: unknown): string => {
  if (error instanceof DemoError) return error.message
  if (error instanceof GovernanceApiError)
    return `the service answered ${error.status} ${error.code}: ${error.message}`
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

main().then(
  () => {
    process.exitCode = 0
  },
  (error: unknown) => {
    console.error(`demo failed: ${reasonOf(error).replace(/\s*\n\s*/g, ' ')}`)
    process.exitCode = 1
  },
)
