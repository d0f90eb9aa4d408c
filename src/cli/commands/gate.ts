import type { z } from 'zod'
import type { ImpactClass } from '../../domain/events.js'
import { GateAnswerSchema } from '../../http/routes/release-gates.js'
import { CliError, UsageError } from '../errors.js'
import { percent } from '../format.js'
import { request } from '../http.js'
import type { Context, Outcome } from '../outcome.js'

export interface GateCheckOptions {
  readonly workflow: string
  readonly agentId: string | undefined
  readonly environment: string | undefined
  readonly impact: ImpactClass | undefined
  /** the service, without /v1; GOVERNANCE_URL when not given */
  readonly url: string | undefined
}

type GateAnswer = z.infer<typeof GateAnswerSchema>

const gateText = (answer: GateAnswer): string => {
  const lines = [`${answer.passed ? 'PASS' : 'FAIL'} ${answer.reason}`]
  for (const result of answer.gates) {
    const { gate, figures } = result
    const where = `${gate.workflow} in ${gate.environment ?? 'every environment'} at ${gate.impacts.join(', ')}`
    const numbers =
      figures === null
        ? ''
        : ` runs ${figures.runs}/${figures.runsRequired}, survival ${percent(figures.survivalRate)} (threshold ${percent(figures.threshold)})`
    lines.push(`  ${result.passed ? 'pass' : 'fail'} gate ${where}:${numbers}`, `       ${result.reason}`)
  }
  return lines.join('\n')
}

/**
 * `gate check`: asks the service whether a workflow passes the release gates of the policy in force. Exit 0 on
 * pass, 1 on fail or when the service cannot answer: a pipeline stops on anything but a clear pass.
 */
export const gateCheckCommand = async (options: GateCheckOptions, context: Context): Promise<Outcome> => {
  const base = (options.url ?? context.env.GOVERNANCE_URL ?? '').replace(/\/+$/, '')
  if (base === '') throw new UsageError('gate check: give --url or set GOVERNANCE_URL')
  const query = new URLSearchParams()
  if (options.agentId !== undefined) query.set('agentId', options.agentId)
  if (options.environment !== undefined) query.set('environment', options.environment)
  if (options.impact !== undefined) query.set('impact', options.impact)
  const search = query.size > 0 ? `?${query}` : ''
  const url = `${base}/v1/release-gates/${encodeURIComponent(options.workflow)}${search}`
  const parsed = GateAnswerSchema.safeParse(JSON.parse(await request(url, context.env.GOVERNANCE_TOKEN)))
  // an answer that is not a gate answer is no pass
  if (!parsed.success) throw new CliError(`${url} answered something that is not a release gate answer`)
  const answer = parsed.data
  return { data: answer, text: gateText(answer), exitCode: answer.passed ? 0 : 1 }
}
