import type { JSONWebKeySet } from 'jose'
import { type ActionIdentity, actionDigestOf } from '../domain/canonical.js'
import { GovernanceClient, segment } from './client.js'
import { GovernanceApiError } from './errors.js'
import type { CommandOptions, CommandResult, ProposalView, RollbackTestInput, Verdict } from './types.js'
import {
  refuse,
  UnknownSigningKeyError,
  type VerdictExpectations,
  type Verification,
  verifyVerdictOffline,
} from './verify.js'

export interface ExecutionContext {
  readonly executionId: string
  readonly verdict: Verdict
}

export interface RunOptions<T> extends Partial<Pick<VerdictExpectations, 'resourceVersion'>> {
  readonly executionId?: string
  /** the resource version after a successful run, reported with the success */
  readonly versionAfter?: (result: T) => string | null
}

export type RunOutcome<T> =
  | { readonly outcome: 'refused'; readonly reason: Verification & { ok: false } }
  | { readonly outcome: 'succeeded'; readonly executionId: string; readonly result: T }
  | { readonly outcome: 'failed'; readonly executionId: string; readonly error: unknown }

/** How long the service's keys are trusted before they are fetched again. */
const JWKS_TTL_MS = 5 * 60_000

/** The executor's side: follow verdicts, verify one before acting on it, and report what happened. */
export class ExecutorClient extends GovernanceClient {
  private jwks: { keys: JSONWebKeySet; fetchedAt: number } | null = null

  /** The public keys the service signs with (its JWKS), cached; `refresh` fetches them again (key rotation). */
  async signingKeys(refresh = false): Promise<JSONWebKeySet> {
    if (!refresh && this.jwks && Date.now() - this.jwks.fetchedAt < JWKS_TTL_MS) return this.jwks.keys
    const keys = await this.request<JSONWebKeySet>('GET', '/.well-known/jwks.json', { retries: 2 })
    this.jwks = { keys, fetchedAt: Date.now() }
    return keys
  }

  /**
   * Everything that must hold before the caller acts on a verdict: the signature against the service's
   * keys, decision allow, not expired, the plan and resource version it is bound to, and, asked of the
   * service, that it is still the proposal's current verdict and neither revoked nor expired.
   */
  async verifyVerdict(verdict: unknown, expected: VerdictExpectations): Promise<Verification> {
    let offline: Verification
    try {
      offline = await verifyVerdictOffline(verdict, await this.signingKeys(), expected)
    } catch (error) {
      if (!(error instanceof UnknownSigningKeyError)) throw error
      try {
        offline = await verifyVerdictOffline(verdict, await this.signingKeys(true), expected)
      } catch (again) {
        if (!(again instanceof UnknownSigningKeyError)) throw again
        return refuse('signature', 'no key of the service has signed this verdict')
      }
    }
    if (!offline.ok) return offline
    const mine = offline.verdict
    let view: ProposalView
    try {
      view = await this.get<ProposalView>(`/proposals/${segment(mine.proposalId)}`)
    } catch (error) {
      if (error instanceof GovernanceApiError && error.status === 404) {
        return refuse('unknown-proposal', `the service knows no proposal ${mine.proposalId}`)
      }
      throw error
    }
    const current = view.verdict
    if (current?.verdictId !== mine.verdictId) {
      return refuse(
        'superseded',
        `verdict ${mine.verdictId} was superseded by ${current ? `${current.verdictId} (revision ${current.revision})` : 'none'}`,
      )
    }
    if (current.revoked) return refuse('revoked', `verdict ${mine.verdictId} was revoked`)
    if (current.expired) return refuse('expired', `verdict ${mine.verdictId} has expired`)
    if (view.status !== 'open') {
      return refuse('not-open', `proposal ${mine.proposalId} is ${view.status}: nothing more may start`)
    }
    return offline
  }

  /**
   * Verifies the verdict for this exact action (proposal, tool, action, resource, environment, identity and
   * plan) and runs it only when it holds, reporting the start, then the success or the failure. An action
   * that throws is reported as failed, never rethrown.
   */
  async runVerified<T>(
    verdict: unknown,
    toRun: ActionIdentity,
    action: (context: ExecutionContext) => Promise<T>,
    options: RunOptions<T> = {},
  ): Promise<RunOutcome<T>> {
    const checked = await this.verifyVerdict(verdict, {
      action: toRun,
      ...(options.resourceVersion === undefined ? {} : { resourceVersion: options.resourceVersion }),
    })
    if (!checked.ok) return { outcome: 'refused', reason: checked }
    const { proposalId, verdictId } = checked.verdict
    const { executionId } = await this.reportStart(proposalId, {
      verdictId,
      actionDigest: actionDigestOf(toRun),
      ...(options.executionId === undefined ? {} : { executionId: options.executionId }),
    })
    let result: T
    try {
      result = await action({ executionId, verdict: checked.verdict })
    } catch (error) {
      await this.reportFailure(proposalId, executionId, {
        error: describe(error),
        resourceVersionAfter: null,
      })
      return { outcome: 'failed', executionId, error }
    }
    await this.reportSuccess(proposalId, executionId, {
      resourceVersionAfter: options.versionAfter?.(result) ?? null,
    })
    return { outcome: 'succeeded', executionId, result }
  }

  reportStart(
    proposalId: string,
    start: { verdictId: string | null; actionDigest: string; executionId?: string },
    options?: CommandOptions,
  ): Promise<CommandResult & { executionId: string }> {
    return this.command('POST', `/proposals/${segment(proposalId)}/executions`, start, options)
  }

  reportSuccess(
    proposalId: string,
    executionId: string,
    success: { resourceVersionAfter: string | null },
    options?: CommandOptions,
  ): Promise<CommandResult> {
    return this.command(
      'POST',
      `/proposals/${segment(proposalId)}/executions/${segment(executionId)}/success`,
      success,
      options,
    )
  }

  reportFailure(
    proposalId: string,
    executionId: string,
    failure: { error: string; resourceVersionAfter: string | null },
    options?: CommandOptions,
  ): Promise<CommandResult> {
    return this.command(
      'POST',
      `/proposals/${segment(proposalId)}/executions/${segment(executionId)}/failure`,
      failure,
      options,
    )
  }

  startRollback(
    proposalId: string,
    rollback: { executionId: string; rollbackId?: string },
    options?: CommandOptions,
  ): Promise<CommandResult & { rollbackId: string }> {
    return this.command('POST', `/proposals/${segment(proposalId)}/rollbacks`, rollback, options)
  }

  completeRollback(
    proposalId: string,
    rollbackId: string,
    completion: { resourceVersionAfter: string | null },
    options?: CommandOptions,
  ): Promise<CommandResult> {
    return this.command(
      'POST',
      `/proposals/${segment(proposalId)}/rollbacks/${segment(rollbackId)}/completion`,
      completion,
      options,
    )
  }

  failRollback(
    proposalId: string,
    rollbackId: string,
    failure: { error: string },
    options?: CommandOptions,
  ): Promise<CommandResult> {
    return this.command(
      'POST',
      `/proposals/${segment(proposalId)}/rollbacks/${segment(rollbackId)}/failure`,
      failure,
      options,
    )
  }

  recordRollbackTest(proposalId: string, test: RollbackTestInput, options?: CommandOptions) {
    return this.postRollbackTest(proposalId, test, options)
  }

  getProposal(proposalId: string): Promise<ProposalView> {
    return this.get(`/proposals/${segment(proposalId)}`)
  }
}

/** An error as one line the ledger accepts (a reason is 1 to 2000 characters). */
const describe = (error: unknown): string => {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return (text.trim() || 'the action failed').slice(0, 2000)
}
