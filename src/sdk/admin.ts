import { GovernanceClient, segment } from './client.js'
import type {
  CommandOptions,
  CommandResult,
  GovernedResult,
  GrantInput,
  KillSwitchInput,
  Policy,
  PolicyInput,
  PromotionResult,
  ShadowPolicyView,
  ToolAction,
} from './types.js'

/**
 * The policy admin: agents and promotions, grants, bindings, the tool inventory, policies, kill switches and
 * token revocations.
 * A change that widens authority answers `pending`: a second, distinct admin approves it with approveChange.
 */
export class AdminClient extends GovernanceClient {
  registerAgent(agent: { agentId: string; owner: string; description?: string }, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/agents', agent, options)
  }

  approvePromotion(agentId: string, requestId: string, options?: CommandOptions) {
    return this.command<PromotionResult>(
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

  grant(grant: GrantInput, options?: CommandOptions): Promise<GovernedResult & { grantId: string }> {
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
    return this.command<GovernedResult>(
      'PUT',
      `/inventory/${segment(tool)}/${segment(action)}`,
      body,
      options,
    )
  }

  /** Publishes a policy; its version must be the next one. */
  publishPolicy(policy: PolicyInput, options?: CommandOptions) {
    return this.command<GovernedResult & { version: number }>('POST', '/policies', policy, options)
  }

  /**
   * Requests the next policy version in shadow mode (a second admin approves the change): decided beside the
   * live policy, never enforced. Promote it with publishPolicy(the same policy); withdraw it with
   * withdrawShadowPolicy.
   */
  publishShadowPolicy(policy: PolicyInput, options?: CommandOptions) {
    return this.command<GovernedResult & { version: number }>('POST', '/policies/shadow', policy, options)
  }

  /** Withdraws the shadow policy: its counting stops. One admin may. */
  withdrawShadowPolicy(reason: string, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/policies/shadow/withdrawal', { reason }, options)
  }

  /** The shadow policy in force, its would-flip counts and the proposals it would flip. */
  shadowPolicy(): Promise<ShadowPolicyView> {
    return this.get('/policies/shadow')
  }

  /** Binds a principal to an identity: an agent acts through it, an executor runs as it. */
  bind(
    binding: { principal: string; role: 'agent' | 'executor'; identity: string },
    options?: CommandOptions,
  ) {
    return this.command<GovernedResult>('POST', '/bindings', binding, options)
  }

  unbind(
    binding: { principal: string; role: 'agent' | 'executor'; identity: string; reason: string },
    options?: CommandOptions,
  ) {
    return this.command<CommandResult>('POST', '/bindings/removal', binding, options)
  }

  /** Approves a pending change as the second, distinct policy admin: it takes effect in the same commit. */
  approveChange(requestId: string, options?: CommandOptions) {
    return this.command<CommandResult>('POST', `/changes/${segment(requestId)}/approval`, {}, options)
  }

  refuseChange(requestId: string, reason: string, options?: CommandOptions) {
    return this.command<CommandResult>('POST', `/changes/${segment(requestId)}/refusal`, { reason }, options)
  }

  currentPolicy(): Promise<Policy> {
    return this.get('/policies/current')
  }

  engageKillSwitch(killSwitch: KillSwitchInput, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/kill-switches', killSwitch, options)
  }

  /** Requests the release; it takes effect once a second policy admin approves the change. */
  releaseKillSwitch(killSwitch: KillSwitchInput, options?: CommandOptions) {
    return this.command<GovernedResult>('POST', '/kill-switches/release', killSwitch, options)
  }

  /** Revokes a bearer token by its jti, at once: no events when it was revoked already. */
  revokeToken(revocation: { jti: string; reason: string }, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/token-revocations', revocation, options)
  }
}
