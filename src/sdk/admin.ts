import { GovernanceClient, segment } from './client.js'
import type {
  CommandOptions,
  CommandResult,
  GrantInput,
  KillSwitchInput,
  Policy,
  ToolAction,
} from './types.js'

/** The policy admin: agents and promotions, grants, the tool inventory, policies and kill switches. */
export class AdminClient extends GovernanceClient {
  registerAgent(agent: { agentId: string; owner: string; description?: string }, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/agents', agent, options)
  }

  approvePromotion(agentId: string, requestId: string, options?: CommandOptions) {
    return this.command<CommandResult>(
      'POST',
      `/agents/${segment(agentId)}/promotions/${segment(requestId)}/approval`,
      {},
      options,
    )
  }

  refusePromotion(agentId: string, requestId: string, reason: string, options?: CommandOptions) {
    return this.command<CommandResult>(
      'POST',
      `/agents/${segment(agentId)}/promotions/${segment(requestId)}/refusal`,
      { reason },
      options,
    )
  }

  grant(grant: GrantInput, options?: CommandOptions): Promise<CommandResult & { grantId: string }> {
    return this.command('POST', '/grants', grant, options)
  }

  revokeGrant(grantId: string, reason: string, options?: CommandOptions) {
    return this.command<CommandResult>('POST', `/grants/${segment(grantId)}/revocation`, { reason }, options)
  }

  registerToolAction(
    entry: Pick<ToolAction, 'tool' | 'action' | 'impact' | 'reversible'> & { description?: string },
    options?: CommandOptions,
  ) {
    const { tool, action, ...body } = entry
    return this.command<CommandResult>('PUT', `/inventory/${segment(tool)}/${segment(action)}`, body, options)
  }

  /** Publishes a policy; its version must be the next one. */
  publishPolicy(policy: Policy, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/policies', policy, options)
  }

  currentPolicy(): Promise<Policy> {
    return this.get('/policies/current')
  }

  engageKillSwitch(killSwitch: KillSwitchInput, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/kill-switches', killSwitch, options)
  }

  releaseKillSwitch(killSwitch: KillSwitchInput, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/kill-switches/release', killSwitch, options)
  }
}
