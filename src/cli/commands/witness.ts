import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { type Checkpoint, CheckpointError, openCheckpoint } from '../../checkpoint/note.js'
import { judge, proofNeeded, type WitnessJudgement } from '../../checkpoint/witness.js'
import { CliError } from '../errors.js'
import { request } from '../http.js'
import type { Context, Outcome } from '../outcome.js'

export interface WitnessOptions {
  /** the service's address, without /v1 */
  readonly url: string
  /** the checkpoint verifier keys the witness trusts (C2SP vkeys): pinned, never fetched from the service */
  readonly keys: readonly string[]
  /** the file where the witness keeps the last checkpoint it accepted */
  readonly state: string
  readonly follow: boolean
  readonly intervalSeconds: number
  /** a Prometheus text file the witness rewrites after every check (node_exporter's textfile collector reads it) */
  readonly metrics: string | undefined
}

const b64 = (hash: Uint8Array) => Buffer.from(hash).toString('base64')

/** Writes a file whole or not at all: a crash never leaves half a state file. */
const writeAtomically = (path: string, text: string): void => {
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, text, { mode: 0o644 })
  renameSync(temporary, path)
}

const consistencyProof = async (
  options: WitnessOptions,
  from: number,
  to: number,
  token: string | undefined,
): Promise<Uint8Array[]> => {
  const answer = JSON.parse(
    await request(`${options.url}/v1/ledger/proofs/consistency?from=${from}&to=${to}`, token),
  ) as { hashes?: unknown }
  if (!Array.isArray(answer.hashes) || !answer.hashes.every((h) => typeof h === 'string'))
    throw new CliError('the consistency proof is not a list of hashes')
  return answer.hashes.map((h: string) => new Uint8Array(Buffer.from(h, 'base64')))
}

/** The witness's own state cannot be read: no later check can mend it, so following stops at it. */
class WitnessStateError extends CliError {}

const keptCheckpoint = (options: WitnessOptions): { note: string; checkpoint: Checkpoint } | null => {
  let note: string
  try {
    note = readFileSync(options.state, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
  // the witness's own file: a signature that no longer verifies under the pinned keys is its operator's to see
  try {
    return { note, checkpoint: openCheckpoint(note, options.keys) }
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error
    throw new WitnessStateError(
      `the kept checkpoint in ${options.state} does not verify under the pinned keys (${error.message}): pin the key it was signed with as well (--key), or move the file away to start afresh`,
    )
  }
}

const metricsText = (judgement: WitnessJudgement | null, kept: Checkpoint | null, at: Date): string =>
  [
    '# HELP governance_witness_alarm Whether the last check found a fork, a rollback or another log (1) or not (0)',
    '# TYPE governance_witness_alarm gauge',
    `governance_witness_alarm ${judgement?.alarm ? 1 : 0}`,
    '# HELP governance_witness_checkpoint_size The tree size of the checkpoint the witness keeps',
    '# TYPE governance_witness_checkpoint_size gauge',
    `governance_witness_checkpoint_size ${kept?.size ?? 0}`,
    '# HELP governance_witness_last_check_timestamp_seconds When the witness last checked, in Unix seconds',
    '# TYPE governance_witness_last_check_timestamp_seconds gauge',
    `governance_witness_last_check_timestamp_seconds ${Math.floor(at.getTime() / 1000)}`,
    '',
  ].join('\n')

/** One check: read the newest checkpoint, judge it against the kept one, keep it when it may be kept. */
export const witnessOnce = async (
  options: WitnessOptions,
  context: Context,
): Promise<{ judgement: WitnessJudgement; kept: Checkpoint | null }> => {
  const token = context.env.GOVERNANCE_TOKEN
  const note = await request(`${options.url}/v1/checkpoints/latest`, undefined)
  let next: Checkpoint
  try {
    next = openCheckpoint(note, options.keys)
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error
    // a checkpoint no pinned key signed is no commitment at all: that is an alarm, not a pause
    const judgement: WitnessJudgement = {
      finding: 'unsigned',
      alarm: true,
      reason: `the newest checkpoint does not verify under the pinned keys: ${error.message}`,
      keep: 'kept',
    }
    return { judgement, kept: keptCheckpoint(options)?.checkpoint ?? null }
  }
  const kept = keptCheckpoint(options)
  const needed = proofNeeded(kept?.checkpoint ?? null, next)
  const proof = needed ? await consistencyProof(options, needed.from, needed.to, token) : null
  const judgement = judge(kept?.checkpoint ?? null, next, proof)
  if (judgement.keep === 'new') writeAtomically(options.state, note)
  return { judgement, kept: judgement.keep === 'new' ? next : (kept?.checkpoint ?? null) }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * `witness`: follows the service's published checkpoints, keeps the last one it accepted, and checks each new
 * one against it (a consistency proof when it grew). Every check is one JSON line on stderr; the metrics file
 * is rewritten after each. On a fork, a rollback or another log: exit 1 (with --follow, at the first alarm).
 */
export const witnessCommand = async (options: WitnessOptions, context: Context): Promise<Outcome> => {
  for (;;) {
    const at = context.now()
    let checked: Awaited<ReturnType<typeof witnessOnce>>
    try {
      checked = await witnessOnce(options, context)
    } catch (error) {
      // once: the error is the answer; following: the service may be back at the next check
      if (!options.follow || error instanceof WitnessStateError) throw error
      const reason = error instanceof Error ? error.message : String(error)
      context.stderr.write(
        `${JSON.stringify({ time: at.toISOString(), component: 'witness', level: 'warn', msg: `check failed: ${reason}` })}\n`,
      )
      await sleep(options.intervalSeconds * 1000)
      continue
    }
    const { judgement, kept } = checked
    const line = {
      time: at.toISOString(),
      component: 'witness',
      level: judgement.alarm ? 'error' : 'info',
      finding: judgement.finding,
      alarm: judgement.alarm,
      size: kept?.size ?? null,
      rootHash: kept ? b64(kept.rootHash) : null,
      msg: judgement.reason,
    }
    context.stderr.write(`${JSON.stringify(line)}\n`)
    if (options.metrics) writeAtomically(options.metrics, metricsText(judgement, kept, at))
    if (judgement.alarm || !options.follow) {
      const text = `${judgement.alarm ? 'ALARM' : 'ok'}: ${judgement.reason}`
      return { data: line, text, exitCode: judgement.alarm ? 1 : 0 }
    }
    await sleep(options.intervalSeconds * 1000)
  }
}
