import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { configFor, openReadOnlyLedger } from '../../src/cli/data-folder.js'
import { streams } from '../../src/domain/events.js'
import { AdminClient, AuditorClient } from '../../src/sdk/index.js'
import { DEFAULT_RATES, type RunningService, startService } from '../support/service.js'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
const DEMO_TIMEOUT_MS = 120_000

interface DemoRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `scripts/demo.ts` as `npm run demo` would, with only the given environment (and PATH, HOME). */
const runDemo = (env: Record<string, string>, args: string[] = []): Promise<DemoRun> =>
  new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), DEMO_TIMEOUT_MS)
    child.once('error', (error) => {
      clearTimeout(timer)
      fail(error)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
  })

/** The text of one act: from its numbered heading to the next one (or the end). */
const actOf = (stdout: string, n: number): string => {
  const start = stdout.indexOf(`\n${n}. `)
  assert.ok(start >= 0, `the output has act ${n}`)
  const end = stdout.indexOf(`\n${n + 1}. `, start)
  return stdout.slice(start, end < 0 ? undefined : end)
}

const match = (text: string, pattern: RegExp): RegExpExecArray => {
  const found = pattern.exec(text)
  assert.ok(found, `the output should match ${pattern}`)
  return found
}

/** `0.057 s` -> 0.057, `none` -> null, as the demo prints durations. */
const secondsOf = (text: string | undefined): number | null =>
  text === undefined || text.trim() === 'none' ? null : Number.parseFloat(text)

interface Recovery {
  count: number
  p50: number | null
  p90: number | null
  max: number | null
}

interface PrintedMetrics {
  unsafeBlocked: number
  actionsEnded: number
  byCheck: Record<string, number>
  refusedAtGate: number
  failedDespiteAllow: number
  violations: number
  timeToRecovery: Recovery
}

/** The act that closes the story: the headline metrics and the audit answer. */
const LAST_ACT = 8

/** The headline metrics as the demo printed them. */
const printedMetrics = (stdout: string): PrintedMetrics => {
  const last = actOf(stdout, LAST_ACT)
  const blocked = match(last, /unsafe actions blocked before execution: (\d+) of (\d+) actions ended/)
  const byCheck = match(last, /by failed check: (.+)$/m)[1] ?? ''
  const checks = byCheck === 'none' ? [] : byCheck.split(', ')
  const gate = match(last, /starts refused at the execution gate: (\d+)/)
  const failed = match(last, /failed despite an allow: (\d+); violations: (\d+)/)
  const ttr = match(last, /time to recovery: p50 ([^,]+), p90 ([^,]+), max ([^,]+), count (\d+)/)
  return {
    unsafeBlocked: Number(blocked[1]),
    actionsEnded: Number(blocked[2]),
    byCheck: Object.fromEntries(
      checks.map((pair) => {
        const [check = '', n = ''] = pair.split(' ')
        return [check, Number(n)]
      }),
    ),
    refusedAtGate: Number(gate[1]),
    failedDespiteAllow: Number(failed[1]),
    violations: Number(failed[2]),
    timeToRecovery: {
      p50: secondsOf(ttr[1]),
      p90: secondsOf(ttr[2]),
      max: secondsOf(ttr[3]),
      count: Number(ttr[4]),
    },
  }
}

interface HeadlineMetrics {
  totals: {
    actionsEnded: { count: number }
    unsafeBlocked: { count: number; byCheck: Record<string, number> }
    refusedAtGate: { count: number }
    failedDespiteAllow: number
    violations: { count: number }
    timeToRecovery: { overall: Recovery }
  }
}

/** `npm run demo` against the real service: every act told, and its figures the API's own. */
describe('npm run demo tells the whole story against a running service', () => {
  let svc: RunningService
  let auditor: AuditorClient
  let first: DemoRun

  before(async () => {
    // the demo is a real client: it runs within the limits a service starts with
    svc = await startService(DEFAULT_RATES)
    auditor = new AuditorClient({ baseUrl: svc.url, token: await svc.tokenFor('auditor-1', 'auditor') })
  })

  after(async () => {
    await svc?.close()
  })

  const demoEnv = () => ({ GOVERNANCE_URL: svc.url, DATA_DIR: svc.dataDir })

  /** The printed metrics equal the API's, read now. */
  const assertMetricsMatch = async (stdout: string): Promise<PrintedMetrics> => {
    const printed = printedMetrics(stdout)
    const { totals } = await auditor.headlineMetrics<HeadlineMetrics>({ window: 'hour' })
    assert.deepEqual(printed, {
      unsafeBlocked: totals.unsafeBlocked.count,
      actionsEnded: totals.actionsEnded.count,
      byCheck: totals.unsafeBlocked.byCheck,
      refusedAtGate: totals.refusedAtGate.count,
      failedDespiteAllow: totals.failedDespiteAllow,
      violations: totals.violations.count,
      timeToRecovery: totals.timeToRecovery.overall,
    })
    return printed
  }

  it('runs to the end and exits 0, printing one line per step', async () => {
    first = await runDemo(demoEnv())
    console.log(`---- npm run demo (first run) ----\n${first.stdout}${first.stderr}---- end of demo ----`)
    assert.equal(first.code, 0, `the demo failed: ${first.stderr}`)
    assert.equal(first.stderr, '')
    assert.doesNotMatch(first.stdout, /eyJ[\w-]+\.eyJ/, 'no token is printed')
  })

  it('act 0: one admin publishes the first policy of the empty ledger; what widens authority waits for a second', async () => {
    const act0 = actOf(first.stdout, 0)
    assert.match(act0, /agent demo-agent-\w+, observer demo-observer-\w+, simulator demo-simulator-\w+/)
    assert.match(act0, /approver demo-approver-\w+, executor demo-runner-\w+, two policy admins/)
    assert.match(act0, /policy v1 owned by risk-office \(published now by one admin: the ledger was empty\)/)
    assert.match(
      act0,
      /simulate needs 1 proposal and 0 passed simulations over 30 days; execute needs 1 proposal and 1 passed simulation/,
    )
    assert.match(
      act0,
      /kubectl scale: high impact, reversible \(registered now: pending \(.+\) until demo-admin-2/,
    )
    assert.match(
      act0,
      /bind agent demo-agent-\w+ to act through demo-deployer-\w+: pending \(.+\) until demo-admin-2/,
    )
    assert.match(
      act0,
      /bind executor demo-runner-\w+ to run as demo-deployer-\w+: pending \(.+\) until demo-admin-2/,
    )
    const policy = (await auditor.policies()).policies
    assert.equal(policy[0]?.version, 1)
    assert.equal(policy[0]?.publishedBy, 'demo-admin')
    assert.equal(policy[0]?.approvedBy, null, 'the first policy of an empty ledger takes one admin')
    assert.equal(policy[0]?.promotion.simulate.minProposals, 1)
    assert.equal(policy[0]?.promotion.execute.minSimulationsPassed, 1)
  })

  it('act 1: promotion is earned: asked without a record it is refused with the numbers; a skipped rung is refused', () => {
    const act1 = actOf(first.stdout, 1)
    assert.match(
      act1,
      /approved by one policy admin, which is not enough, then by demo-admin-2: now at recommend/,
    )
    assert.match(
      act1,
      /recommend -> simulate with no track record refused: .*does not earn simulate: 0 proposals of 1 required/,
    )
    assert.match(act1, /recommend -> execute refused: promotion is one rung at a time/)
    assert.match(act1, /recorded as PromotionRefused at ledger position \d+; refused promotions on record: 2/)
  })

  it('act 2: the agent at recommend is blocked on authority, the reason naming its level; the proposal counts', () => {
    const act2 = actOf(first.stdout, 2)
    assert.match(act2, /action digest sha256:[0-9a-f]+…, computed by the ledger/)
    assert.match(act2, /blocked on authority: agent demo-agent-\w+ holds 'recommend' in production/i)
    assert.match(act2, /track record of demo-agent-\w+ in production: 1 proposal, 0 simulations passed/)
  })

  it('act 3: simulate is earned with two admins; the simulator runs the requested simulation; execute is earned', () => {
    const act3 = actOf(first.stdout, 3)
    const steps = [
      /promotion to simulate requested \(track record: 1 proposal, 0 simulations passed.*then by demo-admin-2: now at simulate/,
      /the agent requests a simulation of proposal \S+ \(request \S+\)/,
      /demo-simulator-\w+ runs 4 adversarial branches and records the results: all survived/,
      /revision \d+: block, failing: authority, .*\(survival passes; authority still blocks at simulate\)/,
      /promotion to execute requested \(track record: 1 proposal, 1 simulation passed.*then by demo-admin-2: now at execute/,
    ]
    let from = 0
    for (const step of steps) {
      const at = act3.slice(from).search(step)
      assert.ok(at >= 0, `act 3 tells ${step} after the step before it`)
      from += at
    }
  })

  it("act 4: the agent's own observation and simulation results are refused with 403", () => {
    const act4 = actOf(first.stdout, 4)
    assert.match(act4, /the agent posts an observation of \S+: 403 forbidden/)
    assert.match(
      act4,
      /records results for its own request: 403 forbidden \(simulatorAttestsSimulation\): demo-agent-\w+ proposed this action/,
    )
  })

  it('act 5: one revision per piece of evidence, the failing checks shrinking to none, then allow', () => {
    const act5 = actOf(first.stdout, 5)
    const revisions = [...act5.matchAll(/revision (\d+): (allow|block), failing: (.+)$/gm)].map(
      ([, revision, decision, failing]) => ({
        revision: Number(revision),
        decision,
        failing: failing === 'none' ? [] : (failing ?? '').split(', '),
      }),
    )
    assert.deepEqual(
      revisions.map((r) => r.failing.length),
      [4, 3, 2, 1, 0],
    )
    assert.deepEqual(
      revisions[0]?.failing,
      ['scopedPermission', 'freshState', 'rollback', 'lineage'],
      'the simulation recorded at simulate already counts',
    )
    for (let i = 1; i < revisions.length; i++) {
      const [before, now] = [revisions[i - 1], revisions[i]]
      assert.ok(
        before && now && now.revision > before.revision,
        'each piece of evidence leads to a new revision',
      )
      assert.ok(
        now.failing.every((check) => before.failing.includes(check)),
        'no check starts failing',
      )
    }
    assert.deepEqual(
      revisions.map((r) => r.decision),
      ['block', 'block', 'block', 'block', 'allow'],
    )
    assert.match(act5, /demo-observer-\w+ observes/)
    assert.match(
      act5,
      /scoped grant: .*: pending \(kubectl\.scale is 'high' impact\) until demo-admin-2 approved it/,
    )
    assert.match(act5, /rollback tested a minute ago by demo-simulator-\w+/)
    assert.match(act5, /approval by demo-approver-\w+, bound to action digest sha256:/)
  })

  it('act 6: the executor verifies and runs the allow; a kill switch revokes another; its release waits for a second admin', () => {
    const act6 = actOf(first.stdout, 6)
    assert.match(act6, /executor demo-runner-\w+, bound to run as demo-deployer-\w+, verifies revision \d+/)
    assert.match(act6, /execution \S+ succeeded/)
    assert.match(act6, /engages the kill switch on agent demo-agent-\w+/)
    assert.match(act6, /revision \d+ \(allow\) revoked/)
    assert.match(act6, /the executor's verification refuses it: revoked: verdict \S+ was revoked/)
    assert.match(act6, /the release is requested: pending \(.+\); the switch is still engaged/)
    assert.match(act6, /demo-admin-2 approves the release: revision \d+: allow again/)
  })

  it('act 7: an execution fails and is rolled back: start, failure, rollback start, rollback complete', () => {
    const act7 = actOf(first.stdout, 7)
    const steps = [
      /execution \S+ started, citing revision \d+/,
      /execution failed: the api pods crash-looped/,
      /rollback \S+ started/,
      /rollback complete: .*the proposal is recovered/,
    ]
    let from = 0
    for (const step of steps) {
      const at = act7.slice(from).search(step)
      assert.ok(at >= 0, `act 7 tells ${step} after the step before it`)
      from += at
    }
  })

  it('act 8: the headline metrics printed are the API’s own numbers', async () => {
    const printed = await assertMetricsMatch(first.stdout)
    // both proposals were blocked until their evidence arrived, then allowed and executed: no unsafe action
    assert.equal(
      printed.unsafeBlocked,
      0,
      'a block until the evidence arrives is not an unsafe action blocked',
    )
    assert.equal(printed.actionsEnded, 2)
    assert.deepEqual(printed.byCheck, {})
    assert.match(
      actOf(first.stdout, LAST_ACT),
      /awaiting evidence now \(open and blocked, never counted as blocked\): 0/,
    )
    assert.equal(printed.refusedAtGate, 0)
    assert.equal(printed.failedDespiteAllow, 1)
    assert.equal(printed.violations, 0)
    assert.equal(printed.timeToRecovery.count, 1)
    assert.ok(printed.timeToRecovery.p50 !== null && printed.timeToRecovery.p50 >= 0)
  })

  it('act 8: what changed, who changed it and how fast it was undone, as the audit view answers', async () => {
    const last = actOf(first.stdout, LAST_ACT)
    const proposalId = match(last, /how fast was it undone\? \(proposal (\S+)\)/)[1] ?? ''
    const audit = await auditor.auditAction(proposalId)
    const what = match(
      last,
      /what: kubectl scale (\S+) in production, plan .* \(action (sha256:[0-9a-f]{64})\)/,
    )
    assert.equal(what[1], audit.what.resource)
    assert.equal(what[2], audit.what.actionDigest)
    assert.match(last, /resource version a1 -> a1/)
    const who = match(last, /who: agent (\S+), executing identity (\S+), executed by (\S+),/)
    assert.deepEqual(who.slice(1), [audit.who.agentId, audit.who.executingIdentity, audit.who.executor])
    assert.match(audit.who.executor ?? '', /^demo-runner-/, 'the executor principal, not the identity')
    assert.match(
      last,
      /policy v1 owned by risk-office, kill switch engaged by demo-admin, released by demo-admin-2/,
    )
    const howFast = match(last, /how fast: undone in (\S+) s .*the rollback's expected time was 120 s/)
    assert.equal(secondsOf(howFast[1]), audit.howFast.timeToRecoverySeconds)
  })

  it('act 9: a counterfactual question answered by the API, then a release gate that opens on one more run', async () => {
    const act9 = actOf(first.stdout, 9)
    const agentId = match(first.stdout, /agent (demo-agent-\w+), observer/)[1] ?? ''
    // the question, asked again of the API: the demo printed its answer
    const blocked = match(
      act9,
      /(\d+) actions? of this run allowed would have been blocked, on releaseGate\n/,
    )
    assert.equal(Number(blocked[1]), 2, 'both allows of the run came after fewer than 3 runs of the agent')
    assert.match(act9, /policy v2 puts the gate in force \(two policy admins\)/)
    assert.match(act9, /gate check kubectl\.scale --agent demo-agent-\w+: FAIL \(runs 2 of 3, survival 1\)/)
    assert.match(act9, /runs once more \(demo-simulator-\w+\): PASS \(runs 3 of 3, survival 1\)/)
    assert.match(act9, /policy v3 puts back the rules before the act/)
    const policies = (await auditor.policies()).policies
    const gated = policies.find((p) => p.version === 2)
    assert.equal(gated?.releaseGates[0]?.workflow, 'kubectl.scale')
    assert.equal(gated?.approvedBy, 'demo-admin-2', 'a gate is put in force by two admins')
    assert.deepEqual(
      policies.find((p) => p.version === 3)?.releaseGates,
      [],
      'the rules before the act are back',
    )
    // the ledger itself records the release, for this agent, with the figures printed, and its end
    const ledger = openReadOnlyLedger(configFor({}, svc.dataDir))
    try {
      const turns = (await ledger.readStream(streams.workflow('kubectl', 'scale'))).filter(
        (e) => (e.data as { agentId: string }).agentId === agentId,
      )
      assert.deepEqual(
        turns.map((e) => [e.type, (e.data as { figures: { runs: number } }).figures.runs]),
        [
          ['WorkflowReleased', 3],
          ['WorkflowReleaseRevoked', 0],
        ],
        'released on the third run; the policy put back without the gate ends the release',
      )
    } finally {
      await ledger.close()
    }
  })

  it('leaves a ledger that verifies', async () => {
    const verification = await auditor.verifyLedger()
    assert.equal(verification.ok, true)
    assert.equal(verification.firstFault, null)
  })

  it('runs again on the same service with fresh ids, here with the bootstrap admin token', async () => {
    const again = await runDemo({ ...demoEnv(), GOVERNANCE_TOKEN: svc.bootstrapToken })
    console.log(`---- npm run demo (second run, GOVERNANCE_TOKEN) ----\n${again.stdout}${again.stderr}----`)
    assert.equal(again.code, 0, `the second run failed: ${again.stderr}`)
    assert.match(actOf(again.stdout, 0), /policy v3 owned by risk-office \(already in force\)/)
    assert.match(actOf(again.stdout, 0), /kubectl scale: high impact, reversible \(already registered\)/)
    assert.match(
      actOf(again.stdout, LAST_ACT),
      /kill switch engaged by bootstrap-admin, released by demo-admin-2/,
    )
    const printed = await assertMetricsMatch(again.stdout)
    assert.equal(printed.unsafeBlocked, 0)
    assert.equal(printed.actionsEnded, 4)
    assert.equal(printed.timeToRecovery.count, 2)
    assert.equal((await auditor.verifyLedger()).ok, true)
  })

  it('on a ledger that is not empty, the first policy waits for the second admin, who approves it', async () => {
    const busy = await startService(DEFAULT_RATES)
    try {
      const admin = new AdminClient({ baseUrl: busy.url, token: busy.bootstrapToken })
      await admin.registerAgent({ agentId: 'someone-else', owner: 'another-team' })
      const run = await runDemo({ GOVERNANCE_URL: busy.url, DATA_DIR: busy.dataDir })
      assert.equal(run.code, 0, `the demo failed: ${run.stderr}`)
      assert.match(
        actOf(run.stdout, 0),
        /policy v1 owned by risk-office \(the ledger was not empty, so even the first policy waited for a second admin: approved by demo-admin-2\)/,
      )
      const [policy] = (await admin.policies()).policies
      assert.equal(policy?.publishedBy, 'demo-admin')
      assert.equal(policy?.approvedBy, 'demo-admin-2')
    } finally {
      await busy.close()
    }
  })

  it('without the service’s data folder it stops at once, with one line naming what is missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'governance-demo-'))
    try {
      const run = await runDemo({ GOVERNANCE_URL: svc.url, DATA_DIR: empty })
      assert.equal(run.code, 1)
      assert.equal(run.stdout, '')
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr)
      assert.match(
        run.stderr,
        /^demo failed: missing the token signing key .*token-signing\.pem: set DATA_DIR/,
      )
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })

  it('without a service at the URL it stops at once, with one line naming the URL', async () => {
    const run = await runDemo({ GOVERNANCE_URL: 'http://127.0.0.1:9', DATA_DIR: svc.dataDir })
    assert.equal(run.code, 1)
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr)
    assert.match(run.stderr, /no governance service answers at http:\/\/127\.0\.0\.1:9 .*GOVERNANCE_URL/)
  })

  it('--help explains what it needs, and why the data folder', async () => {
    const run = await runDemo({}, ['--help'])
    assert.equal(run.code, 0)
    for (const word of [
      'GOVERNANCE_URL',
      'DATA_DIR',
      'token-signing.pem',
      'GOVERNANCE_TOKEN',
      'empty',
      'demo-admin-2',
    ]) {
      assert.ok(run.stdout.includes(word), `--help mentions ${word}`)
    }
  })
})
