// How large what the ledger records may be: one table, read by the schemas, the edge parser, the docs and the tests.
import { CanonicalJsonError, canonicalize, jsonPath } from './canonical.js'
import type { EventType } from './events.js'

/** How large a free-form JSON value (a plan) may be when it is recorded. */
export interface JsonLimits {
  /** bytes of its canonical JSON, in UTF-8 */
  readonly maxBytes: number
  /** levels of nesting, the value itself being the first */
  readonly maxDepth: number
  /** members of any one object */
  readonly maxKeys: number
  /** UTF-16 code units of any one string, key or value */
  readonly maxStringLength: number
  /** items of any one array */
  readonly maxArrayLength: number
}

const KiB = 1024

/** A proposal's plan: what it does, in the agent's own terms. */
export const PLAN_LIMITS: JsonLimits = {
  maxBytes: 64 * KiB,
  maxDepth: 32,
  maxKeys: 256,
  maxStringLength: 16 * KiB,
  maxArrayLength: 1024,
}

/**
 * Any JSON the edge parses (an HTTP body, a Kafka message), before any field's own limits: deeper is refused
 * while parsing, so that no value deeper than this is ever built.
 */
export const EDGE_JSON_MAX_DEPTH = 64

/** Per event type: the most bytes its data takes in canonical JSON, and the limits of its free-form fields. */
export interface EventLimits {
  readonly maxBytes: number
  readonly json?: Readonly<Record<string, JsonLimits>>
}

/** What every other event type takes: its schema bounds each field, this bounds the whole. */
export const DEFAULT_EVENT_LIMITS: EventLimits = { maxBytes: 16 * KiB }

/** The event types that may be larger than the default, and why. */
const LARGER: Partial<Record<EventType, EventLimits>> = {
  /** the plan, with the description and the resource beside it */
  ProposalSubmitted: { maxBytes: 128 * KiB, json: { plan: PLAN_LIMITS } },
  /** every rung's requirements, per environment */
  PolicyPublished: { maxBytes: 64 * KiB },
  /** a whole policy waiting for its second admin */
  ChangeRequested: { maxBytes: 96 * KiB },
  /** up to 1000 branches, each with its counterfactual and detail */
  SimulationRecorded: { maxBytes: 256 * KiB },
  /** the playbook */
  RollbackTested: { maxBytes: 128 * KiB },
  /** up to 20 refusals with their reasons */
  ExecutionRefused: { maxBytes: 256 * KiB },
}

/**
 * The limits of one event type, checked on every event a command appends (application/handle.ts); the decision
 * service's own events are bounded by their schemas. Events already recorded are read as they are.
 */
export const limitsOf = (type: EventType): EventLimits => LARGER[type] ?? DEFAULT_EVENT_LIMITS

/** Every type with limits other than the default, for the docs and the tests. */
export const LARGER_EVENT_TYPES = Object.keys(LARGER) as EventType[]

/** A limit a value goes beyond: which, in words that name it, and whether it is one of size (a 413). */
export interface LimitViolation {
  readonly limit: keyof JsonLimits | 'canonical'
  readonly message: string
  readonly tooLarge: boolean
}

/** A value to look at, and where it stands: the member or item of its parent, found again only for a message. */
interface Visit {
  readonly value: unknown
  readonly depth: number
  readonly parent: Visit | null
  readonly key: string | number
}

/** The bytes of a value's canonical JSON, or why it has none. */
const canonicalSize = (value: unknown): number | LimitViolation => {
  try {
    return Buffer.byteLength(canonicalize(value), 'utf8')
  } catch (error) {
    if (error instanceof CanonicalJsonError)
      return { limit: 'canonical', message: error.message, tooLarge: false }
    throw error
  }
}

/** ` (at $.a.0.b)`; nothing for the value itself. */
const at = (visit: Visit): string => {
  const path: (string | number)[] = []
  for (let v: Visit | null = visit; v?.parent; v = v.parent) path.unshift(v.key)
  return path.length === 0 ? '' : ` (at ${jsonPath(path)})`
}

/**
 * The first limit a JSON value goes beyond, or null: walked without recursion, each limit named with its
 * figure; then its canonical JSON, which must exist (RFC 8785) and fit in `maxBytes`.
 */
export const jsonLimitViolation = (root: unknown, limits: JsonLimits): LimitViolation | null => {
  const stack: Visit[] = [{ value: root, depth: 1, parent: null, key: '' }]
  for (let visit = stack.pop(); visit !== undefined; visit = stack.pop()) {
    const { value, depth } = visit
    if (typeof value === 'string') {
      if (value.length > limits.maxStringLength) {
        return {
          limit: 'maxStringLength',
          message: `has a string longer than ${limits.maxStringLength} characters${at(visit)}`,
          tooLarge: false,
        }
      }
      continue
    }
    if (typeof value !== 'object' || value === null) continue
    if (depth > limits.maxDepth) {
      return {
        limit: 'maxDepth',
        message: `is deeper than ${limits.maxDepth} levels${at(visit)}`,
        tooLarge: false,
      }
    }
    if (Array.isArray(value)) {
      if (value.length > limits.maxArrayLength) {
        return {
          limit: 'maxArrayLength',
          message: `has an array longer than ${limits.maxArrayLength} items${at(visit)}`,
          tooLarge: false,
        }
      }
      for (let i = value.length - 1; i >= 0; i -= 1) {
        stack.push({ value: value[i], depth: depth + 1, parent: visit, key: i })
      }
      continue
    }
    const keys = Object.keys(value)
    if (keys.length > limits.maxKeys) {
      return {
        limit: 'maxKeys',
        message: `has an object with more than ${limits.maxKeys} keys${at(visit)}`,
        tooLarge: false,
      }
    }
    for (let i = keys.length - 1; i >= 0; i -= 1) {
      const key = keys[i] as string
      if (key.length > limits.maxStringLength) {
        return {
          limit: 'maxStringLength',
          message: `has a key longer than ${limits.maxStringLength} characters${at(visit)}`,
          tooLarge: false,
        }
      }
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, parent: visit, key })
    }
  }
  const bytes = canonicalSize(root)
  if (typeof bytes !== 'number') return bytes
  if (bytes > limits.maxBytes) {
    return {
      limit: 'maxBytes',
      message: `is larger than ${limits.maxBytes} bytes of canonical JSON (${bytes})`,
      tooLarge: true,
    }
  }
  return null
}

/**
 * The first limit a new event goes beyond, or null: its type's byte size, then each free-form field's limits.
 * The message names the field and the limit: `plan is deeper than 32 levels (at $.a.b)`.
 */
export const eventLimitViolation = (event: { type: EventType; data: unknown }): LimitViolation | null => {
  const limits = limitsOf(event.type)
  const data = event.data as Record<string, unknown>
  for (const [field, json] of Object.entries(limits.json ?? {})) {
    const violation = jsonLimitViolation(data[field], json)
    if (violation) return { ...violation, message: `${field} ${violation.message}` }
  }
  const bytes = canonicalSize(data)
  if (typeof bytes !== 'number') return bytes
  if (bytes > limits.maxBytes) {
    return {
      limit: 'maxBytes',
      message: `a ${event.type} takes at most ${limits.maxBytes} bytes of canonical JSON; this one takes ${bytes}`,
      tooLarge: true,
    }
  }
  return null
}
