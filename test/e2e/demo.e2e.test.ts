import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { AuditorClient } from '../../src/sdk/index.js'
import { type RunningService, startService } from '../support/service.js'

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
  proposalsDecided: number
  byCheck: Record<string, number>
  failedDespiteAllow: number
  violations: number
  timeToRecovery: Recovery
}

/** The headline metrics as the demo printed them. */
const printedMetrics = (stdout: string): PrintedMetrics => {
  const act7 = actOf(stdout, 7)
  const blocked = match(act7, /unsafe actions blocked before execution: (\d+) of (\d+) proposals decided/)
  const byCheck = match(act7, /by failed check: (.+)$/m)[1] ?? ''
  const failed = match(act7, /failed despite an allow: (\d+); violations: (\d+)/)
  const ttr = match(act7, /time to recovery: p50 ([^,]+), p90 ([^,]+), max ([^,]+), count (\d+)/)
  return {
    unsafeBlocked: Number(blocked[1]),
    proposalsDecided: Number(blocked[2]),
    byCheck: Object.fromEntries(
      byCheck.split(', ').map((pair) => {
        const [check = '', n = ''] = pair.split(' ')
        return [check, Number(n)]
      }),
    ),
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
    proposalsDecided: number
    unsafeBlocked: { count: number; byCheck: Record<string, number> }
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
    svc = await startService()
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
      proposalsDecided: totals.proposalsDecided,
      byCheck: totals.unsafeBlocked.byCheck,
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
    assert.match(actOf(first.stdout, 0), /policy v1 owned by risk-office \(published now/)
  })

  it('act 1: the agent at recommend is blocked on authority, the reason naming its level', () => {
    const act1 = actOf(first.stdout, 1)
    assert.match(act1, /now at recommend/)
    assert.match(act1, /blocked on authority: agent demo-agent-\w+ holds 'recommend' in production/i)
  })

  it('act 2: the promotion that skips a rung is refused and recorded', () => {
    const act2 = actOf(first.stdout, 2)
    assert.match(act2, /recommend -> execute refused: promotion is one rung at a time/)
    assert.match(act2, /recorded as PromotionRefused at ledger position \d+; refused promotions on record: 1/)
  })

  it('act 3: the agent climbs one rung at a time, each approved by a policy admin', () => {
    const act3 = actOf(first.stdout, 3)
    assert.match(act3, /promotion to simulate requested .*approved by a policy admin: now at simulate/)
    assert.match(act3, /promotion to execute requested .*approved by a policy admin: now at execute/)
  })

  it('act 4: one revision per piece of evidence, the failing checks shrinking to none, then allow', () => {
    const revisions = [
      ...actOf(first.stdout, 4).matchAll(/revision (\d+): (allow|block), failing: (.+)$/gm),
    ].map(([, revision, decision, failing]) => ({
      revision: Number(revision),
      decision,
      failing: failing === 'none' ? [] : (failing ?? '').split(', '),
    }))
    assert.deepEqual(
      revisions.map((r) => r.failing.length),
      [5, 4, 3, 2, 1, 0],
    )
    assert.deepEqual(revisions[0]?.failing, [
      'scopedPermission',
      'freshState',
      'survival',
      'rollback',
      'lineage',
    ])
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
      ['block', 'block', 'block', 'block', 'block', 'allow'],
    )
  })

  it('act 5: the executor verifies and runs the allow; a kill switch revokes another, and verification refuses it', () => {
    const act5 = actOf(first.stdout, 5)
    assert.match(act5, /executor demo-deployer-\w+ verifies revision \d+/)
    assert.match(act5, /execution \S+ succeeded/)
    assert.match(act5, /engages the kill switch on agent demo-agent-\w+/)
    assert.match(act5, /revision \d+ \(allow\) revoked/)
    assert.match(act5, /the executor's verification refuses it: revoked: verdict \S+ was revoked/)
    assert.match(act5, /released: revision \d+: allow again/)
  })

  it('act 6: an execution fails and is rolled back: start, failure, rollback start, rollback complete', () => {
    const act6 = actOf(first.stdout, 6)
    const steps = [
      /execution \S+ started, citing revision \d+/,
      /execution failed: the api pods crash-looped/,
      /rollback \S+ started/,
      /rollback complete: .*the proposal is recovered/,
    ]
    let from = 0
    for (const step of steps) {
      const at = act6.slice(from).search(step)
      assert.ok(at >= 0, `act 6 tells ${step} after the step before it`)
      from += at
    }
  })

  it('act 7: the headline metrics printed are the API’s own numbers', async () => {
    const printed = await assertMetricsMatch(first.stdout)
    assert.equal(printed.unsafeBlocked, 2, 'both proposals were blocked before they were allowed')
    assert.equal(printed.byCheck.authority, 1)
    assert.equal(printed.failedDespiteAllow, 1)
    assert.equal(printed.violations, 0)
    assert.equal(printed.timeToRecovery.count, 1)
    assert.ok(printed.timeToRecovery.p50 !== null && printed.timeToRecovery.p50 >= 0)
  })

  it('act 7: what changed, who changed it and how fast it was undone, as the audit view answers', async () => {
    const act7 = actOf(first.stdout, 7)
    const proposalId = match(act7, /how fast was it undone\? \(proposal (\S+)\)/)[1] ?? ''
    const audit = await auditor.auditAction(proposalId)
    const what = match(act7, /what: kubectl scale (\S+) in production, plan .* \((sha256:[0-9a-f]{64})\)/)
    assert.equal(what[1], audit.what.resource)
    assert.equal(what[2], audit.what.planHash)
    assert.match(act7, /resource version a1 -> a1/)
    const who = match(act7, /who: agent (\S+), executing identity (\S+), executed by (\S+),/)
    assert.deepEqual(who.slice(1), [audit.who.agentId, audit.who.executingIdentity, audit.who.executor])
    assert.match(
      act7,
      /policy v1 owned by risk-office, kill switch engaged by demo-admin, released by demo-admin/,
    )
    const howFast = match(act7, /how fast: undone in (\S+) s .*the rollback's expected time was 120 s/)
    assert.equal(secondsOf(howFast[1]), audit.howFast.timeToRecoverySeconds)
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
    assert.match(actOf(again.stdout, 0), /policy v1 owned by risk-office \(already in force\)/)
    assert.match(actOf(again.stdout, 0), /kubectl scale: high impact, reversible \(already registered\)/)
    assert.match(
      actOf(again.stdout, 7),
      /kill switch engaged by bootstrap-admin, released by bootstrap-admin/,
    )
    const printed = await assertMetricsMatch(again.stdout)
    assert.equal(printed.unsafeBlocked, 4)
    assert.equal(printed.timeToRecovery.count, 2)
    assert.equal((await auditor.verifyLedger()).ok, true)
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
    for (const word of ['GOVERNANCE_URL', 'DATA_DIR', 'token-signing.pem', 'GOVERNANCE_TOKEN']) {
      assert.ok(run.stdout.includes(word), `--help mentions ${word}`)
    }
  })
})
