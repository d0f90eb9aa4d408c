import { GovernanceClient, segment } from './client.js'
import type {
  CommandOptions,
  CommandResult,
  Observation,
  RollbackTestInput,
  SimulationInput,
} from './types.js'

/** An observer: reports live state (resource, version, digest, observed at). */
export class ObserverClient extends GovernanceClient {
  observe(observation: Observation, options?: CommandOptions) {
    return this.command<CommandResult>('POST', '/observations', observation, options)
  }
}

/** The simulation harness: runs the branches an agent requested and records their results, and rollback tests. */
export class SimulatorClient extends GovernanceClient {
  recordSimulation(proposalId: string, simulation: SimulationInput, options?: CommandOptions) {
    return this.command<CommandResult>(
      'POST',
      `/proposals/${segment(proposalId)}/simulations`,
      simulation,
      options,
    )
  }

  recordRollbackTest(proposalId: string, test: RollbackTestInput, options?: CommandOptions) {
    return this.postRollbackTest(proposalId, test, options)
  }
}
