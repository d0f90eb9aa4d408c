import { GovernanceClient, segment } from './client.js'
import type {
  ActionAudit,
  ConsistencyProof,
  LedgerHead,
  LedgerTreeHead,
  LedgerVerification,
  OpenActionsPage,
} from './types.js'

export interface OpenActionsFilter {
  readonly state?: OpenActionsPage['actions'][number]['state']
  readonly agentId?: string
  readonly environment?: string
}

export interface ReleaseGateQuery {
  /** the agent whose own runs a per-agent gate counts */
  readonly agentId?: string
  readonly environment?: string
  readonly impact?: 'read' | 'low' | 'medium' | 'high' | 'critical'
}

/** A counterfactual question: another policy (a draft, or a published version) over a range of positions. */
export interface CounterfactualQuestion {
  readonly policy?: Record<string, unknown>
  readonly policyVersion?: number
  readonly from?: number
  readonly to?: number
}

export interface MetricsQuery {
  readonly window?: 'hour' | 'day'
  readonly from?: string
  readonly to?: string
}

/**
 * The auditor: read-only answers to what changed, who changed it and how fast it can be undone, the open
 * actions, the headline metrics and the ledger's integrity. The per-agent, per-resource and metrics answers
 * are typed by the caller (`T`): they are wide read models.
 */
export class AuditorClient extends GovernanceClient {
  auditAction(proposalId: string): Promise<ActionAudit> {
    return this.get(`/audit/actions/${segment(proposalId)}`)
  }

  auditAgent<T = Record<string, unknown>>(agentId: string): Promise<T> {
    return this.get(`/audit/agents/${segment(agentId)}`)
  }

  auditResource<T = Record<string, unknown>>(environment: string, resource: string): Promise<T> {
    return this.get(`/audit/resources/${segment(environment)}/${segment(resource)}`)
  }

  openActions(filter: OpenActionsFilter = {}): Promise<OpenActionsPage> {
    return this.get('/open-actions', { ...filter })
  }

  headlineMetrics<T = Record<string, unknown>>(query: MetricsQuery = {}): Promise<T> {
    return this.get('/metrics/headline', { ...query })
  }

  /** Whether a workflow (`tool.action`) passes the release gates of the policy in force, with the figures. */
  releaseGate<T = Record<string, unknown>>(workflow: string, query: ReleaseGateQuery = {}): Promise<T> {
    return this.get(`/release-gates/${segment(workflow)}`, { ...query })
  }

  /** Which verdicts another policy would have flipped over a range of the ledger; writes nothing. */
  counterfactual<T = Record<string, unknown>>(question: CounterfactualQuestion): Promise<T> {
    return this.request('POST', '/v1/policies/counterfactual', { body: question, timeoutMs: 120_000 })
  }

  verifyLedger(): Promise<LedgerVerification> {
    return this.get('/ledger/verify', undefined, 120_000)
  }

  ledgerHead(): Promise<LedgerHead> {
    return this.get('/ledger/head')
  }

  /** The Merkle tree's head now, or at a past `size`. */
  ledgerTree(size?: number): Promise<LedgerTreeHead> {
    return this.get('/ledger/tree', { size })
  }

  /**
   * The proof that the tree of `from` leaves is a prefix of the tree of `to` (now, when left out); check it
   * with verifyConsistency against the heads of two checkpoints kept, not the heads it arrives with.
   */
  consistencyProof(from: number, to?: number): Promise<ConsistencyProof> {
    return this.get('/ledger/proofs/consistency', { from, to })
  }
}
