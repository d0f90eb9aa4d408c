import { type ClientOptions, GovernanceClient, segment } from './client.js'
import type {
  CommandOptions,
  CommandResult,
  Observation,
  PromotionResult,
  ProposalInput,
  ProposalView,
  RollbackTestInput,
  SimulationInput,
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

/** An agent: proposes, attaches its own evidence, waits for the verdict, observes, asks for promotion. */
export class AgentClient extends GovernanceClient {
  readonly agentId: string

  constructor(options: AgentClientOptions) {
    super(options)
    this.agentId = options.agentId
  }

  /** Submits a proposal; the ledger computes the plan hash from the plan. */
  submitProposal(
    proposal: ProposalInput,
    options?: CommandOptions,
  ): Promise<CommandResult & { proposalId: string; planHash: string }> {
    return this.command('POST', '/proposals', { agentId: this.agentId, ...proposal }, options)
  }

  attachSimulation(proposalId: string, simulation: SimulationInput, options?: CommandOptions) {
    return this.command<CommandResult>(
      'POST',
      `/proposals/${segment(proposalId)}/simulations`,
      simulation,
      options,
    )
  }

  attachRollbackTest(proposalId: string, test: RollbackTestInput, options?: CommandOptions) {
    return this.command<CommandResult>(
      'POST',
      `/proposals/${segment(proposalId)}/rollback-tests`,
      test,
      options,
    )
  }

  withdraw(proposalId: string, reason: string, options?: CommandOptions) {
    return this.command<CommandResult>(
      'POST',
      `/proposals/${segment(proposalId)}/withdrawal`,
      { reason },
      options,
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

  /** Publishes an observation of live state. */
  observe(observation: Observation, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/observations', observation, options)
  }

  /** Asks for the next rung in an environment; the ledger computes the track record itself. */
  requestPromotion(
    promotion: { environment: string; to: string; requestId?: string },
    options?: CommandOptions,
  ): Promise<PromotionResult> {
    return this.command('POST', `/agents/${segment(this.agentId)}/promotions`, promotion, options)
  }
}
