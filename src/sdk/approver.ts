import { GovernanceClient, segment } from './client.js'
import type { CommandOptions, CommandResult, ProposalView } from './types.js'

/** A person who approves proposals, bound to the plan hash they saw; never the proposer. */
export class ApproverClient extends GovernanceClient {
  approve(
    proposalId: string,
    approval: { planHash: string; role?: string },
    options?: CommandOptions,
  ): Promise<CommandResult> {
    return this.command('POST', `/proposals/${segment(proposalId)}/approvals`, approval, options)
  }

  getProposal(proposalId: string): Promise<ProposalView> {
    return this.get(`/proposals/${segment(proposalId)}`)
  }
}
