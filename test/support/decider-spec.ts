import assert from 'node:assert/strict'
import type { Decider } from '../../src/domain/deciders/index.js'
import { DomainError, type DomainErrorCode } from '../../src/domain/errors.js'
import { DomainEvent } from '../../src/domain/events.js'

/** given(events).when(command).then(events): a decider rule read as a specification. */
export const spec = <Command, State, Event extends DomainEvent>(decider: Decider<Command, State, Event>) => ({
  given: (events: readonly Event[]) => ({
    when: (command: Command) => {
      const state = events.reduce(decider.evolve, decider.initialState())
      const run = () => decider.decide(command, state)
      return {
        // biome-ignore lint/suspicious/noThenProperty: the given/when/then of a specification, never awaited
        then: (expected: readonly Event[]): void => {
          const actual = run()
          assert.deepEqual(actual, expected)
          // what a decider emits must also satisfy its event schema
          for (const event of actual) DomainEvent.parse(event)
        },
        thenThrows: (code: DomainErrorCode, message?: RegExp): void => {
          assert.throws(run, (error: unknown) => {
            assert.ok(error instanceof DomainError, `expected a DomainError, got ${String(error)}`)
            assert.equal(error.code, code, error.message)
            if (message !== undefined) assert.match(error.message, message)
            return true
          })
        },
      }
    },
  }),
})
