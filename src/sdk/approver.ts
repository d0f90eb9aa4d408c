import { GovernanceClient, segment } from './client.js'
import type { CommandOptions, CommandResult, ProposalView } from './types.js'

/** A person who approves proposals, bound to the action digest they saw; never the proposer or an executor. */
export class ApproverClient extends GovernanceClient {
  /** `role` must be one the approver's token grants (its approval-roles claim); 'approver' by default. */
  approve(
    proposalId: string,
    approval: { actionDigest: string; role?: string },
    options?: CommandOptions,
  ): Promise<CommandResult> {
    return this.command('POST', `/proposals/${segment(proposalId)}/approvals`, approval, options)
  }

  getProposal(proposalId: string): Promise<ProposalView> {
    return this.get(`/proposals/${segment(proposalId)}`)
  }
}
