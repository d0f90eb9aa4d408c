// `npm run demo`: the whole story of the design, told against a running service through the SDK.
//
// Each act of the story is one small function below, in the order it is told; `main` runs them.

import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { issueToken, loadPrivateKey, type Role } from '../src/auth/tokens.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { defaultPolicy } from '../src/domain/eligibility.js'
import {
  AdminClient,
  AgentClient,
  ApproverClient,
  AuditorClient,
  ExecutorClient,
  GovernanceApiError,
  type RollbackTestInput,
  type SimulationInput,
  type VerdictView,
} from '../src/sdk/index.js'

const HELP = `npm run demo: the governance story, told against a running service through the SDK

  an agent at recommend is blocked; a promotion that skips a rung is refused; the agent climbs to
  execute; evidence arrives check by check until the verdict is allow; an executor verifies and runs
  it; a kill switch revokes another allow; an execution fails and is rolled back; the headline
  metrics and the audit answer (what changed, who changed it, how fast it was undone) close it.

Usage: npm run demo [-- --help]          (the same as: tsx scripts/demo.ts)

Environment:
  GOVERNANCE_URL    the running service (default http://127.0.0.1:8080)
  DATA_DIR          the service's data folder (default ./data, the service's own default). Required:
                    the demo acts as an agent, an approver, an executor and an auditor, and no HTTP
                    route issues tokens, so it signs its own with <DATA_DIR>/keys/token-signing.pem,
                    the embedded key the service creates on its first start (AUTH_MODE=embedded).
  GOVERNANCE_TOKEN  optional: a policy-admin token for the admin's steps, such as the bootstrap admin
                    token the first start printed; without it the demo signs one with the same key.
  AUTH_ISSUER, AUTH_AUDIENCE, AUTH_ROLES_CLAIM
                    as the service has them, when it does not use the defaults.

Every run uses fresh ids (agent, executing identity, resources), so it can run again on the same
service. It publishes policy version 1 (the documented defaults) and registers kubectl scale as a
high-impact, reversible action only when the service has none yet; its kill switch targets only its
own agent, and it releases it again.

Exit 0 when the whole story ran; 1 with a one-line reason on stderr otherwise.`

const ENVIRONMENT = 'production'
const TOOL = 'kubectl'
const ACTION = 'scale'
const POLICY_OWNER = 'risk-office'
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

const short = (hash: string): string => `${hash.slice(0, 19)}…`
const secondsAgo = (seconds: number): string => new Date(Date.now() - seconds * 1000).toISOString()
const seconds = (value: number | null): string => (value === null ? 'none' : `${value} s`)
const counted = (n: number, thing: string): string => `${n} ${thing}${n === 1 ? '' : 's'}`
const failing = (verdict: VerdictView): string[] =>
  verdict.checks.filter((c) => c.status === 'fail').map((c) => c.check)
const failingList = (verdict: VerdictView): string => failing(verdict).join(', ') || 'none'
const verdictLine = (verdict: VerdictView): string =>
  `revision ${verdict.revision}: ${verdict.decision}, failing: ${failingList(verdict)}`

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
  readonly identity: string
  readonly approverId: string
  readonly admin: AdminClient
  readonly agent: AgentClient
  readonly approver: ApproverClient
  readonly executor: ExecutorClient
  readonly auditor: AuditorClient
}

/** One SDK client per principal, each with its own token; the ids carry the run's suffix. */
const assemble = async (settings: Settings, run: string): Promise<Cast> => {
  const tokenFor = (sub: string, ...roles: Role[]) =>
    issueToken(settings.signingKey, settings.tokenConfig, { sub, roles, expiresIn: '1h' })
  const baseUrl = settings.url
  const agentId = `demo-agent-${run}`
  const identity = `demo-deployer-${run}`
  const approverId = `demo-approver-${run}`
  const adminToken = settings.adminToken ?? (await tokenFor('demo-admin', 'policy-admin', 'auditor'))
  return {
    run,
    agentId,
    identity,
    approverId,
    admin: new AdminClient({ baseUrl, token: adminToken }),
    agent: new AgentClient({ baseUrl, token: await tokenFor(agentId, 'agent'), agentId }),
    approver: new ApproverClient({ baseUrl, token: await tokenFor(approverId, 'approver') }),
    executor: new ExecutorClient({ baseUrl, token: await tokenFor(identity, 'executor') }),
    auditor: new AuditorClient({ baseUrl, token: await tokenFor(`demo-auditor-${run}`, 'auditor') }),
  }
}

// ---------- the evidence a proposal can carry ----------

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

const observationOf = (resource: string, version: string) => ({
  environment: ENVIRONMENT,
  resource,
  version,
  digest: `sha256:${resource}@${version}`,
  observedAt: secondsAgo(1),
})

const ADVERSARIAL = ['dependency-down', 'concurrent-change', 'partial-failure', 'stale-read'] as const

const simulationOf = (planHash: string): SimulationInput => ({
  planHash,
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

const rollbackTestOf = (cast: Cast, planHash: string): RollbackTestInput => ({
  planHash,
  playbook: 'scale back to the previous replica count, then verify health',
  testRunId: `rollback-test-${cast.run}-${planHash.slice(7, 15)}`,
  testedAt: secondsAgo(60),
  outcome: 'passed',
  expectedRecoverySeconds: 120,
  killSwitch: { scope: 'agent', target: cast.agentId },
})

const grantFor = (cast: Cast, resource: string) =>
  cast.admin.grant({
    identity: cast.identity,
    tool: TOOL,
    action: ACTION,
    resourcePattern: resource,
    environment: ENVIRONMENT,
  })

/** The next verdict after `revision`, or null when the answer did not change within the wait. */
const nextVerdict = (cast: Cast, proposalId: string, revision: number) =>
  cast.agent.waitForVerdict(proposalId, { afterRevision: revision, timeoutSeconds: WAIT_SECONDS })

/** The proposal's current verdict once `accept` holds for it. */
const verdictWhen = (cast: Cast, proposalId: string, what: string, accept: (v: VerdictView) => boolean) =>
  waitFor(what, async () => {
    const verdict = await cast.agent.currentVerdict(proposalId)
    return verdict !== null && accept(verdict) ? verdict : undefined
  })

/** Asks for one rung and has the policy admin approve it. */
const promote = async (cast: Cast, to: string): Promise<void> => {
  const request = await cast.agent.requestPromotion({ environment: ENVIRONMENT, to })
  if (request.outcome !== 'requested') {
    throw new DemoError(
      `the promotion to ${to} was ${request.outcome}: ${request.reason ?? 'no reason given'}`,
    )
  }
  const track = await cast.agent.trackRecord(cast.agentId, ENVIRONMENT)
  await cast.admin.approvePromotion(cast.agentId, request.requestId)
  const level = (await cast.agent.getAgent(cast.agentId)).levels[ENVIRONMENT]?.level ?? 'observe'
  say(
    `   promotion to ${to} requested (track record: ${counted(track.proposals, 'proposal')}, ` +
      `${counted(track.violations, 'violation')}, ${counted(track.failedExecutions, 'failed execution')}), ` +
      `approved by a policy admin: now at ${level}`,
  )
  if (level !== to) throw new DemoError(`the agent should be at ${to} after the approval, but is at ${level}`)
}

// ---------- the story ----------

/** The policy and the inventory entry the story needs, only when the service has none yet. */
const setTheScene = async (cast: Cast): Promise<void> => {
  act('0. The scene')
  let policyOrigin = 'already in force'
  const policy = await cast.admin.currentPolicy().catch(async (error: unknown) => {
    if (!(error instanceof GovernanceApiError && error.status === 404)) throw error
    await cast.admin.publishPolicy(defaultPolicy(POLICY_OWNER, 1))
    policyOrigin = 'published now, the documented defaults'
    return cast.admin.currentPolicy()
  })
  const high = policy.requirements.high
  say(
    `   policy v${policy.version} owned by ${policy.owner} (${policyOrigin}): high impact needs ` +
      `${high.checks.join(', ')} and ${counted(high.approvals.count, 'approval')}`,
  )
  let inventoryOrigin = 'already registered'
  const registered = await cast.admin
    .request<{ impact: string; reversible: boolean }>('GET', `/v1/inventory/${TOOL}/${ACTION}`)
    .catch(async (error: unknown) => {
      if (!(error instanceof GovernanceApiError && error.status === 404)) throw error
      await cast.admin.registerToolAction({ tool: TOOL, action: ACTION, impact: 'high', reversible: true })
      inventoryOrigin = 'registered now'
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
}

/** Act 1: an agent at recommend proposes, and the authority check blocks it. */
const blockedAtRecommend = async (cast: Cast, resource: string, plan: Record<string, unknown>) => {
  act('1. An agent at recommend proposes a production change, and is blocked')
  await promote(cast, 'recommend')
  const submitted = await cast.agent.submitProposal(proposalFor(cast, resource, 'v1', plan))
  say(
    `   proposal ${submitted.proposalId}: scale ${resource}, plan ${JSON.stringify(plan)} (${short(submitted.planHash)})`,
  )
  const verdict = await nextVerdict(cast, submitted.proposalId, 0)
  if (verdict === null) throw new DemoError(`no verdict on proposal ${submitted.proposalId}`)
  const authority = verdict.checks.find((c) => c.check === 'authority')
  if (verdict.decision !== 'block' || authority?.status !== 'fail') {
    throw new DemoError(`an agent at recommend should be blocked on authority, got ${verdictLine(verdict)}`)
  }
  say(`   revision ${verdict.revision}: blocked on authority: ${authority.reason}`)
  say(`   (${failing(verdict).length - 1} evidence checks are missing too: the verdict lists every failure)`)
  return { ...submitted, verdict }
}

/** Act 2: a promotion that skips a rung is refused, and the refusal is recorded. */
const skipRefused = async (cast: Cast): Promise<void> => {
  act('2. A promotion that skips a rung')
  const skip = await cast.agent.requestPromotion({ environment: ENVIRONMENT, to: 'execute' })
  if (skip.outcome !== 'refused')
    throw new DemoError(`skipping a rung should be refused, got ${skip.outcome}`)
  const recorded = skip.events.find((e) => e.type === 'PromotionRefused')
  say(`   recommend -> execute refused: ${skip.reason ?? 'no reason given'}`)
  const agent = await cast.agent.getAgent(cast.agentId)
  say(
    `   recorded as ${recorded?.type ?? 'an event'} at ledger position ${recorded?.position ?? '?'}; ` +
      `refused promotions on record: ${agent.refusedPromotions}; still at ${agent.levels[ENVIRONMENT]?.level}`,
  )
}

/** Act 3: the agent climbs one rung at a time, each approved by a policy admin. */
const climbToExecute = async (cast: Cast): Promise<void> => {
  act('3. The agent climbs one rung at a time')
  await promote(cast, 'simulate')
  await promote(cast, 'execute')
}

/** Act 4: evidence arrives check by check; each piece leads to a new verdict, until allow. */
const evidenceUntilAllow = async (
  cast: Cast,
  first: { proposalId: string; planHash: string; verdict: VerdictView },
  resource: string,
): Promise<VerdictView> => {
  act('4. Evidence arrives check by check, and the verdict changes with it')
  let verdict = await verdictWhen(
    cast,
    first.proposalId,
    'a verdict that reflects the promotion to execute',
    (v) => v.checks.some((c) => c.check === 'authority' && c.status === 'pass'),
  )
  say(`   ${verdictLine(verdict)}`)
  for (const check of verdict.checks.filter((c) => c.status === 'fail')) {
    say(`      ${check.check}: ${check.reason}`)
  }
  const evidence: [string, () => Promise<unknown>][] = [
    [
      `fresh state: ${resource} observed at v1, the snapshot the proposal names`,
      () => cast.agent.observe(observationOf(resource, 'v1')),
    ],
    [
      `scoped grant: ${cast.identity} may ${TOOL} ${ACTION} ${resource} in ${ENVIRONMENT}`,
      () => grantFor(cast, resource),
    ],
    [
      `simulation of this plan: ${ADVERSARIAL.length} adversarial branches, all survived`,
      () => cast.agent.attachSimulation(first.proposalId, simulationOf(first.planHash)),
    ],
    [
      'rollback tested a minute ago: 120 s expected to recover, stopped by the agent kill switch',
      () => cast.agent.attachRollbackTest(first.proposalId, rollbackTestOf(cast, first.planHash)),
    ],
    [
      `approval by ${cast.approverId}, bound to plan ${short(first.planHash)}`,
      () => cast.approver.approve(first.proposalId, { planHash: first.planHash }),
    ],
  ]
  for (const [piece, attach] of evidence) {
    await attach()
    const next = await nextVerdict(cast, first.proposalId, verdict.revision)
    if (next === null) {
      say(`   + ${piece}: no new verdict, the answer did not change`)
      continue
    }
    verdict = next
    say(`   + ${piece}`)
    say(`     ${verdictLine(verdict)}`)
  }
  if (verdict.decision !== 'allow') {
    throw new DemoError(`all the evidence is in, yet the verdict is ${verdictLine(verdict)}`)
  }
  say(`   allow, signed, bound to plan ${short(verdict.planHash)} and v1, expires at ${verdict.expiresAt}`)
  return verdict
}

/** Act 5a: the executor verifies the allow and runs it. */
const verifyAndRun = async (cast: Cast, allow: VerdictView, plan: Record<string, unknown>) => {
  act('5. The executor verifies the allow and runs it; a kill switch revokes another allow')
  const checked = await cast.executor.verifyVerdict(allow, {
    planHash: allow.planHash,
    resourceVersion: 'v1',
  })
  if (!checked.ok)
    throw new DemoError(`the executor refused the allow: ${checked.reason}: ${checked.message}`)
  say(
    `   executor ${cast.identity} verifies revision ${allow.revision}: signature, expiry, plan hash, resource version and standing hold`,
  )
  const run = await cast.executor.runVerified(allow, plan, async () => ({ version: 'v2' }), {
    resourceVersion: 'v1',
    versionAfter: (result) => result.version,
  })
  if (run.outcome !== 'succeeded') throw new DemoError(`the allowed execution ${run.outcome}`)
  say(`   execution ${run.executionId} succeeded: the resource is now at v2`)
}

/** A second proposal with every piece of evidence at once; resolves with its allow. */
const secondAllow = async (cast: Cast, resource: string, plan: Record<string, unknown>) => {
  await grantFor(cast, resource)
  await cast.agent.observe(observationOf(resource, 'a1'))
  const submitted = await cast.agent.submitProposal(proposalFor(cast, resource, 'a1', plan))
  await cast.agent.attachSimulation(submitted.proposalId, simulationOf(submitted.planHash))
  await cast.agent.attachRollbackTest(submitted.proposalId, rollbackTestOf(cast, submitted.planHash))
  await cast.approver.approve(submitted.proposalId, { planHash: submitted.planHash })
  const allow = await verdictWhen(
    cast,
    submitted.proposalId,
    `an allow on ${resource}`,
    (v) => v.decision === 'allow' && !v.revoked,
  )
  say(
    `   proposal ${submitted.proposalId} (scale ${resource}) gathers all its evidence: revision ${allow.revision}: allow`,
  )
  return { ...submitted, allow }
}

/** Act 5b: a kill switch revokes the second allow; the executor's verification refuses it. */
const killSwitchRevokes = async (
  cast: Cast,
  second: { proposalId: string; planHash: string; allow: VerdictView },
): Promise<VerdictView> => {
  const killSwitch = { scope: 'agent' as const, target: cast.agentId }
  await cast.admin.engageKillSwitch({ ...killSwitch, reason: 'a bad rollout elsewhere: stop this agent' })
  say(`   a policy admin engages the kill switch on agent ${cast.agentId}`)
  const revoked = await verdictWhen(
    cast,
    second.proposalId,
    'the revocation of the allow',
    (v) => v.verdictId === second.allow.verdictId && v.revoked,
  )
  say(`   revision ${revoked.revision} (allow) revoked by an event in the ledger`)
  const refused = await cast.executor.verifyVerdict(second.allow, { planHash: second.planHash })
  if (refused.ok) throw new DemoError('the executor accepted a revoked verdict')
  say(`   the executor's verification refuses it: ${refused.reason}: ${refused.message}`)
  await cast.admin.releaseKillSwitch({ ...killSwitch, reason: 'the rollout was stopped' })
  const again = await verdictWhen(
    cast,
    second.proposalId,
    'a new allow after the release',
    (v) => v.revision > revoked.revision && v.decision === 'allow' && !v.revoked,
  )
  say(`   the kill switch is released: revision ${again.revision}: allow again`)
  return again
}

/** Act 6: an execution fails and is rolled back; resolves with the ledger position of the recovery. */
const failAndRollBack = async (
  cast: Cast,
  proposalId: string,
  allow: VerdictView,
  plan: Record<string, unknown>,
): Promise<number> => {
  act('6. An execution fails and is rolled back')
  const run = await cast.executor.runVerified(allow, plan, async ({ executionId }) => {
    say(`   execution ${executionId} started, citing revision ${allow.revision}`)
    throw new Error('the api pods crash-looped after scaling')
  })
  if (run.outcome !== 'failed') throw new DemoError(`the execution should fail, but it ${run.outcome}`)
  say(`   execution failed: ${run.error instanceof Error ? run.error.message : String(run.error)}`)
  const rollback = await cast.executor.startRollback(proposalId, { executionId: run.executionId })
  say(`   rollback ${rollback.rollbackId} started`)
  const completed = await cast.executor.completeRollback(proposalId, rollback.rollbackId, {
    resourceVersionAfter: 'a1',
  })
  const status = (await cast.executor.getProposal(proposalId)).status
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
    proposalsDecided: number
    unsafeBlocked: { count: number; byCheck: Record<string, number> }
    unsafeRate: number | null
    failedDespiteAllow: number
    violations: { count: number }
    timeToRecovery: { overall: Recovery }
  }
  unrecoveredFailures: unknown[]
  asOf: number
}

/** Act 7a: the two headline metrics, once they reflect the recovery. */
const headlineMetrics = async (cast: Cast, position: number): Promise<void> => {
  act('7. The headline metrics (service-wide, the last 24 hours)')
  const metrics = await waitFor('the metrics to reflect the recovery', async () => {
    const m = await cast.auditor.headlineMetrics<HeadlineMetrics>({ window: 'hour' })
    return m.asOf >= position ? m : undefined
  })
  const { unsafeBlocked, proposalsDecided, unsafeRate, failedDespiteAllow, violations } = metrics.totals
  const rate = unsafeRate === null ? 'none' : `${Math.round(unsafeRate * 1000) / 10}%`
  say(
    `   unsafe actions blocked before execution: ${unsafeBlocked.count} of ${proposalsDecided} proposals decided (${rate})`,
  )
  const byCheck = Object.entries(unsafeBlocked.byCheck).map(([check, n]) => `${check} ${n}`)
  say(`   by failed check: ${byCheck.join(', ') || 'none'}`)
  say(`   failed despite an allow: ${failedDespiteAllow}; violations: ${violations.count}`)
  const ttr = metrics.totals.timeToRecovery.overall
  say(
    `   time to recovery: p50 ${seconds(ttr.p50)}, p90 ${seconds(ttr.p90)}, max ${seconds(ttr.max)}, count ${ttr.count}`,
  )
  say(
    `   unrecovered failures now: ${metrics.unrecoveredFailures.length} (as of ledger position ${metrics.asOf})`,
  )
}

/** Act 7b: what changed, who changed it, how fast it was undone, for the failed action. */
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
      `(${what.planHash}), resource version ${what.resourceVersionBefore} -> ${what.resourceVersionAfter ?? 'unknown'}`,
  )
  const approvers = who.approvers.map((a) => `${a.approver} (${a.role}, bound to the plan hash)`).join(', ')
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

  const web = `deployment/web-${run}`
  const api = `deployment/api-${run}`
  const webPlan = { deployment: `web-${run}`, replicas: 5 }
  const apiPlan = { deployment: `api-${run}`, replicas: 4 }

  await setTheScene(cast)
  const first = await blockedAtRecommend(cast, web, webPlan)
  await skipRefused(cast)
  await climbToExecute(cast)
  const allow = await evidenceUntilAllow(cast, first, web)
  await verifyAndRun(cast, allow, webPlan)
  const second = await secondAllow(cast, api, apiPlan)
  const allowAgain = await killSwitchRevokes(cast, second)
  const recovered = await failAndRollBack(cast, second.proposalId, allowAgain, apiPlan)
  await headlineMetrics(cast, recovered)
  await whatWhoHowFast(cast, second.proposalId, recovered)
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
