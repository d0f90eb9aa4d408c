import { type ClientOptions, GovernanceClient, segment } from './client.js'
import type {
  CommandOptions,
  CommandResult,
  PromotionResult,
  ProposalInput,
  ProposalView,
  VerdictView,
} from './types.js'

export interface AgentClientOptions extends ClientOptions {
  /** the agent this client acts as: the subject of its token */
  readonly agentId: string
}

export interface WaitOptions {
  /** wait for a verdict with a higher revision than this (0: any verdict) */
  readonly afterRevision?: number
  /** give up after this long; the service caps each long-poll, so the client asks again */
  readonly timeoutSeconds?: number
}

/** The longest single long-poll the client asks for; the service may cap it lower. */
const POLL_SECONDS = 25

/**
 * An agent: proposes, requests simulations of its plan (from the 'simulate' rung up), waits for the verdict,
 * asks for promotion. It attests no evidence: its word about itself is not evidence.
 */
export class AgentClient extends GovernanceClient {
  readonly agentId: string

  constructor(options: AgentClientOptions) {
    super(options)
    this.agentId = options.agentId
  }

  /**
   * Submits a proposal; the ledger computes the plan hash and the action digest evidence binds to. The answer holds
   * its first verdict too, decided in the commit that recorded the proposal (`Prefer: wait`): no second request.
   */
  submitProposal(
    proposal: ProposalInput,
    options?: CommandOptions,
  ): Promise<
    CommandResult & {
      proposalId: string
      planHash: string
      actionDigest: string
      verdict: VerdictView | null
    }
  > {
    return this.command('POST', '/proposals', { agentId: this.agentId, ...proposal }, options, {
      prefer: 'wait=0',
    })
  }

  /** Asks the simulation harness to run the action's branches; its results, not the agent's, are evidence. */
  requestSimulation(
    proposalId: string,
    request: { actionDigest: string; branchKinds?: string[]; requestId?: string },
    options?: CommandOptions,
  ): Promise<CommandResult & { requestId: string }> {
    return this.command('POST', `/proposals/${segment(proposalId)}/simulation-requests`, request, options)
  }

  /** Withdraws an open proposal; `supersededBy` names this agent's proposal that replaces it. */
  withdraw(proposalId: string, reason: string, options?: CommandOptions & { supersededBy?: string }) {
    const { supersededBy, ...command } = options ?? {}
    return this.command<CommandResult>(
      'POST',
      `/proposals/${segment(proposalId)}/withdrawal`,
      supersededBy === undefined ? { reason } : { reason, supersededBy },
      command,
    )
  }

  getProposal(proposalId: string): Promise<ProposalView> {
    return this.get(`/proposals/${segment(proposalId)}`)
  }

  /** The current verdict, or null when none has been issued yet. */
  async currentVerdict(proposalId: string): Promise<VerdictView | null> {
    const { verdict } = await this.get<{ verdict: VerdictView | null }>(
      `/proposals/${segment(proposalId)}/verdict`,
    )
    return verdict
  }

  /**
   * Waits for a verdict newer than `afterRevision`, long-polling the service; resolves with it, or with
   * null when none arrived within the timeout.
   */
  async waitForVerdict(proposalId: string, options: WaitOptions = {}): Promise<VerdictView | null> {
    const afterRevision = options.afterRevision ?? 0
    const deadline = Date.now() + (options.timeoutSeconds ?? 60) * 1000
    for (;;) {
      const remaining = Math.max(0, Math.ceil((deadline - Date.now()) / 1000))
      const wait = Math.min(POLL_SECONDS, remaining)
      const { verdict } = await this.get<{ verdict: VerdictView | null; timedOut: boolean }>(
        `/proposals/${segment(proposalId)}/verdict`,
        { wait, afterRevision },
        (wait + 10) * 1000,
      )
      if (verdict !== null && verdict.revision > afterRevision) return verdict
      if (Date.now() >= deadline) return null
    }
  }

  /** Asks for the next rung in an environment; the ledger computes the track record itself. */
  requestPromotion(
    promotion: { environment: string; to: string; requestId?: string },
    options?: CommandOptions,
  ): Promise<PromotionResult> {
    return this.command('POST', `/agents/${segment(this.agentId)}/promotions`, promotion, options)
  }
}
