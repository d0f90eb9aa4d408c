import { DomainError, type DomainErrorCode } from './errors.js'

/**
 * A named rule about who may do what, or what a command needs: `check` answers null when the candidate
 * satisfies it, otherwise the reason a person reads. Deciders demand specifications; tests name them.
 */
export interface Specification<T> {
  readonly name: string
  readonly rule: string
  readonly check: (candidate: T) => string | null
}

export const specification = <T>(
  name: string,
  rule: string,
  check: (candidate: T) => string | null,
): Specification<T> => ({ name, rule, check })

/** Refuses the command with the specification's reason, naming the specification in the error's details. */
export const demand = <T>(
  spec: Specification<T>,
  candidate: T,
  code: DomainErrorCode = 'forbidden',
): void => {
  const why = spec.check(candidate)
  if (why !== null) throw new DomainError(code, why, { specification: spec.name })
}

/** Every specification in `specs` that the candidate fails, with its reason. */
export const unmet = <T>(
  specs: readonly Specification<T>[],
  candidate: T,
): { readonly specification: string; readonly reason: string }[] =>
  specs.flatMap((spec) => {
    const reason = spec.check(candidate)
    return reason === null ? [] : [{ specification: spec.name, reason }]
  })
