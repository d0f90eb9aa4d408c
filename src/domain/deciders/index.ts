/** One pure decider per kind of stream: decide(command, state) -> events, evolve(state, event) -> state. */
export interface Decider<Command, State, Event> {
  readonly initialState: () => State
  readonly evolve: (state: State, event: Event) => State
  readonly decide: (command: Command, state: State) => Event[]
}

export * as agent from './agent.js'
export * as binding from './binding.js'
export * as governance from './governance.js'
export * as grant from './grant.js'
export * as inventory from './inventory.js'
export * as killSwitch from './kill-switch.js'
export * as policy from './policy.js'
export * as proposal from './proposal.js'
export * as resource from './resource.js'
export * as token from './token.js'
