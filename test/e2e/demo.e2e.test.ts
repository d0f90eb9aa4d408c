import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { configFor, openReadOnlyLedger } from '../../src/cli/data-folder.js'
import { streams } from '../../src/domain/events.js'
import { AdminClient, AgentClient, AuditorClient } from '../../src/sdk/index.js'
import { buildConsole, chromiumFor, chromiumFound, launchChromium } from '../support/browser.js'
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
  /**
   * The console in Chromium over the demo's ledger (the demo is not run again for it): every page loads without
   * an error, its figures are the API's for the same token, the open actions follow the verdict stream, and what
   * a token may write decides which write controls show.
   */
  describe('the console, in a real browser, over the ledger the demo filled', () => {
    const found = chromiumFound()
    const shots = join(ROOT, 'test-artifacts', 'console')
    let browser: Browser | undefined
    const errors: string[] = []

    before(async () => {
      if (!found) return
      buildConsole()
      mkdirSync(shots, { recursive: true })
      browser = await launchChromium()
    })
    after(async () => {
      await browser?.close()
    })

    const signIn = async (token: string): Promise<Page> => {
      assert.ok(browser)
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
      const page = await context.newPage()
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(`${page.url()}: ${message.text()}`)
      })
      page.on('pageerror', (error) => errors.push(`${page.url()}: ${error.message}`))
      page.on('dialog', (dialog) => void dialog.accept())
      await page.goto(`${svc.url}/console`)
      await page.getByLabel('Bearer token').fill(token)
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.waitForSelector('main[data-page="overview"]')
      return page
    }

    /** Opens a page of the console and waits until it has drawn; no error so far. */
    const visit = async (page: Page, hash: string, name: string): Promise<void> => {
      await page.evaluate(`location.hash = ${JSON.stringify(hash)}`)
      await page.waitForSelector(`main[data-page="${name}"]`)
      assert.deepEqual(errors, [], `no console error on ${hash}`)
    }

    const text = async (page: Page, selector: string) =>
      ((await page.locator(selector).first().textContent()) ?? '').trim()
    /** what each chart of the page draws: uPlot's own data, x (seconds) then each series */
    const CHART_DATA = `Object.fromEntries([...document.querySelectorAll('figure[data-chart]')]
      .map((figure) => [figure.dataset.chart, figure.chart && figure.chart.data]))`

    /** axe-core, run in the page: no serious or critical accessibility violation. */
    const accessible = async (page: Page, what: string) => {
      const source = readFileSync(join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8')
      await page.evaluate(source)
      const violations = await page.evaluate<string[]>(
        `axe.run().then((result) => result.violations
          .filter((v) => v.impact === 'serious' || v.impact === 'critical')
          .map((v) => v.id + ' (' + v.impact + ', ' + v.nodes.length + ' nodes)'))`,
      )
      assert.deepEqual(violations, [], `accessibility of ${what}`)
    }

    it('is served with strict headers; each page loads and shows the API’s own figures to an auditor, with no write control', async (t) => {
      if (!chromiumFor(t) || !browser) return
      const started = Date.now()
      const served = await fetch(`${svc.url}/console`)
      assert.equal(served.status, 200)
      assert.match(
        served.headers.get('content-security-policy') ?? '',
        /default-src 'self'.*frame-ancestors 'none'/,
      )
      assert.equal(served.headers.get('x-content-type-options'), 'nosniff')

      const token = await svc.tokenFor('console-auditor', 'auditor')
      const page = await signIn(token)
      assert.equal(await text(page, '[data-roles]'), 'auditor')

      // overview: the stats and both charts hold the headline metrics the API gives this token
      for (const window of ['hour', 'day'] as const) {
        if (window === 'day') {
          await page.getByRole('button', { name: /^Daily/ }).click()
          await page.waitForSelector('main[data-page="overview"] button[aria-pressed="true"]:text("Daily")')
        }
        const api = await auditor.headlineMetrics<{
          series: Array<{
            start: string
            unsafeBlocked: { count: number }
            actionsEnded: { count: number }
            refusedAtGate: { count: number }
            timeToRecovery: { overall: Recovery }
          }>
          totals: HeadlineMetrics['totals']
          awaitingEvidence: { count: number }
        }>({ window })
        assert.equal(
          Number(await text(page, '[data-metric="unsafeBlocked"]')),
          api.totals.unsafeBlocked.count,
        )
        assert.equal(Number(await text(page, '[data-metric="actionsEnded"]')), api.totals.actionsEnded.count)
        assert.equal(Number(await text(page, '[data-metric="awaitingEvidence"]')), api.awaitingEvidence.count)
        assert.equal(Number(await text(page, '[data-metric="violations"]')), api.totals.violations.count)
        const charted = await page.evaluate<Record<string, unknown>>(CHART_DATA)
        const xs = api.series.map((w) => Date.parse(w.start) / 1000)
        assert.deepEqual(charted['unsafe-blocked'], [
          xs,
          api.series.map((w) => w.unsafeBlocked.count),
          api.series.map((w) => w.actionsEnded.count),
          api.series.map((w) => w.refusedAtGate.count),
        ])
        assert.deepEqual(charted['time-to-recovery'], [
          xs,
          api.series.map((w) => w.timeToRecovery.overall.p50),
          api.series.map((w) => w.timeToRecovery.overall.p90),
          api.series.map((w) => w.timeToRecovery.overall.max),
        ])
        assert.ok(
          api.series.some((w) => w.actionsEnded.count > 0),
          'the demo ended actions in this range',
        )
        assert.equal(
          await page.locator('[data-chart-table="unsafe-blocked"] tbody tr').count(),
          api.series.length,
        )
        assert.equal(await page.locator('figure[data-chart] canvas').count(), 2, 'both charts are drawn')
      }
      assert.deepEqual(errors, [])
      await accessible(page, 'the overview')
      await page.screenshot({ path: join(shots, 'overview.png') })

      // open actions: counted by state as the API counts them
      await visit(page, '#/open', 'open')
      await page.waitForSelector('[data-live="live"]')
      const open = (await auditor.openActions()).actions
      for (const state of ['awaiting-evidence', 'blocked', 'allowed', 'executing', 'failed']) {
        assert.equal(
          Number(await text(page, `[data-state-count="${state}"]`)),
          open.filter((a) => a.state === state).length,
          state,
        )
      }
      await accessible(page, 'the open actions')
      await page.screenshot({ path: join(shots, 'open-actions.png') })

      // one action: the demo's recovered one, its timeline with proofs, its checks
      const proposalId =
        match(actOf(first.stdout, LAST_ACT), /how fast was it undone\? \(proposal (\S+)\)/)[1] ?? ''
      const audit = await auditor.auditAction(proposalId)
      await visit(page, `#/action/${proposalId}`, 'action')
      assert.equal(await page.locator('[data-timeline] tbody tr').count(), audit.timeline.length)
      assert.equal(await text(page, '[data-outcome]'), audit.outcome)
      assert.equal(
        await page.locator('[data-checks="current"] tbody tr').count(),
        audit.currentVerdict?.checks.length,
      )
      const firstEvent = audit.timeline[0]
      assert.ok(firstEvent)
      assert.ok(
        (await text(page, '[data-timeline] tbody tr')).includes(firstEvent.hash),
        'each event shows its hash',
      )
      const proofButton = page.getByRole('button', { name: `Prove position ${firstEvent.position}` })
      if ((await proofButton.count()) > 0) await proofButton.click()
      await page.waitForSelector(`[data-proof="${firstEvent.position}"]`)
      await accessible(page, 'an action')
      await page.screenshot({ path: join(shots, 'action.png') })

      // the demo's agent: its ladder drawn and its promotions counted from its history
      const agentId = match(first.stdout, /agent (demo-agent-\w+), observer/)[1] ?? ''
      await visit(page, `#/agent/${agentId}`, 'agent')
      const history = (await (
        await fetch(`${svc.url}/v1/agents/${agentId}/history`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).json()) as { events: Array<{ type: string }> }
      const granted = history.events.filter((e) => e.type === 'AgentPromoted').length
      assert.ok(granted >= 3, 'the demo climbs to execute')
      assert.equal(Number(await text(page, '[data-metric="promotionsGranted"]')), granted)
      assert.equal(
        Number(await text(page, '[data-metric="promotionsRefused"]')),
        history.events.filter((e) => e.type === 'PromotionRefused').length,
      )
      const ladder = (await page.evaluate<Record<string, number[][]>>(CHART_DATA)).ladder
      assert.equal(ladder?.[1]?.at(-1), 3, 'the ladder ends at execute in production')
      await page.screenshot({ path: join(shots, 'agent.png') })
      await visit(page, '#/agents', 'agents')
      assert.ok((await text(page, '[data-agents]')).includes(agentId))

      // kill switches: no write control for an auditor, on this page or any other
      await visit(page, '#/kill-switches', 'kill-switches')
      assert.equal(await page.locator('[data-write]').count(), 0)
      assert.equal(await page.getByRole('button', { name: /Engage|Request release/ }).count(), 0)
      await page.screenshot({ path: join(shots, 'kill-switches-auditor.png') })

      // survival, release gates and a counterfactual replay of the policy in force: the API's answer
      await visit(page, '#/release', 'release')
      assert.equal(await text(page, '[data-gate="kubectl.scale"]'), 'PASS')
      await page.getByRole('button', { name: 'Replay' }).click()
      await page.waitForSelector('[data-flips]')
      const policy = (await (
        await fetch(`${svc.url}/v1/policies/current`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as Record<string, unknown>
      const { publishedBy: _p, approvedBy: _a, publishedAt: _t, eventId: _e, ...draft } = policy
      const replay = (await (
        await fetch(`${svc.url}/v1/policies/counterfactual`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ policy: draft }),
        })
      ).json()) as { flips: unknown[] }
      assert.equal(Number(await page.locator('[data-flips]').getAttribute('data-flips')), replay.flips.length)
      await page.screenshot({ path: join(shots, 'release.png') })

      await visit(page, '#/ledger', 'ledger')
      assert.equal(await text(page, '[data-metric="verify.ok"]'), 'verified')
      await accessible(page, 'the ledger page')
      await page.screenshot({ path: join(shots, 'ledger.png') })

      assert.deepEqual(errors, [])
      await page.context().close()
      console.log(`the console's pages as an auditor: ${Date.now() - started} ms`)
    })

    it('follows the verdict stream: a proposal made while the page is open appears in the open actions', async (t) => {
      if (!chromiumFor(t) || !browser) return
      const page = await signIn(svc.bootstrapToken)
      await visit(page, '#/open', 'open')
      await page.waitForSelector('[data-live="live"]')
      const [, agentId = '', identity = ''] = match(
        first.stdout,
        /bind agent (demo-agent-\w+) to act through (demo-deployer-\w+)/,
      )
      const agent = new AgentClient({
        baseUrl: svc.url,
        token: await svc.tokenFor(agentId, 'agent'),
        agentId,
      })
      const { proposalId } = await agent.submitProposal({
        executingIdentity: identity,
        tool: 'kubectl',
        action: 'scale',
        resource: 'deployment/console-live-check',
        environment: 'production',
        plan: { replicas: 2 },
        expectedImpact: 'high',
        snapshot: { version: 'c1' },
      })
      await page.waitForSelector(`tr[data-proposal="${proposalId}"]`, { timeout: 10_000 })
      assert.ok((await text(page, `tr[data-proposal="${proposalId}"]`)).includes('awaiting-evidence'))
      assert.deepEqual(errors, [])
      await page.context().close()
    })

    it('a policy-admin token sees the write controls, engages a kill switch and requests its release', async (t) => {
      if (!chromiumFor(t) || !browser) return
      const page = await signIn(svc.bootstrapToken)
      await visit(page, '#/kill-switches', 'kill-switches')
      await page.getByLabel('Scope').selectOption('tool')
      await page.getByLabel('Target (agent, tool or environment)').fill('console-check-tool')
      await page.locator('#engage-reason').fill('checking the console')
      await page.getByRole('button', { name: 'Engage' }).click()
      await page.waitForSelector('[data-kill-switches] td:text("console-check-tool")')
      await page.waitForSelector('main[data-page="kill-switches"]')
      const engaged = await auditor.killSwitches()
      assert.ok(engaged.killSwitches.some((k) => k.target === 'console-check-tool'))
      const row = page.locator('[data-kill-switches] tr', { hasText: 'console-check-tool' })
      await row.getByLabel('Reason').fill('checked')
      await row.getByRole('button', { name: 'Request release' }).click()
      await page.waitForSelector('[data-outcome]:text("pending")')
      await page.screenshot({ path: join(shots, 'kill-switches-admin.png') })
      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.waitForSelector('textarea#token')
      assert.equal(await page.evaluate('sessionStorage.length'), 0, 'signing out forgets the token')
      assert.deepEqual(errors, [])
      await page.context().close()
    })
  })
})
