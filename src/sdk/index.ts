// The TypeScript SDK: one client per role, over fetch only, so it runs in any process that can reach the service.

export { type ActionIdentity, actionDigestOf, planHashOf } from '../domain/canonical.js'
export { AdminClient } from './admin.js'
export { AgentClient, type AgentClientOptions, type WaitOptions } from './agent.js'
export { ApproverClient } from './approver.js'
export { ObserverClient, SimulatorClient } from './attesters.js'
export { AuditorClient, type MetricsQuery, type OpenActionsFilter } from './auditor.js'
export { type ClientOptions, GovernanceClient, type RequestOptions } from './client.js'
export { GovernanceApiError } from './errors.js'
export { type ExecutionContext, ExecutorClient, type RunOptions, type RunOutcome } from './executor.js'
export {
  type Checkpoint,
  CheckpointError,
  leafHash,
  leafOf,
  openCheckpoint,
  verifyCheckpointConsistency,
  verifyConsistency,
  verifyEventInclusion,
} from './proofs.js'
export { type SseMessage, SseParser } from './sse.js'
export {
  backoffMs,
  type ConnectionChange,
  followVerdicts,
  type StreamSource,
  type SubscribeOptions,
  type VerdictSubscription,
} from './stream.js'
export type * from './types.js'
export {
  type RefusalReason,
  UnknownSigningKeyError,
  VERDICT_ISSUER,
  VERDICT_JWS_TYPE,
  type VerdictExpectations,
  type Verification,
  verifyVerdictOffline,
  verifyVerdictSignature,
} from './verify.js'
