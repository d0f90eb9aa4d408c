import { createHash } from 'node:crypto'

/** Printable ASCII but `"` and `\`: a string of these is its own JSON form between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/** A high surrogate not followed by a low one, or a low one not preceded by a high one (UTF-16 code units). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/

/** Whether a string is valid Unicode: no lone surrogate, which UTF-8 (and so RFC 8785) cannot carry. */
export const isWellFormed = (text: string): boolean => PLAIN.test(text) || !LONE_SURROGATE.test(text)

/** Why a value has no RFC 8785 form. */
export type CanonicalJsonReason = 'non-finite-number' | 'unsafe-integer' | 'lone-surrogate' | 'not-json'

/** A value canonical JSON cannot write, with where it stands in the value (`$.a.0.b`). */
export class CanonicalJsonError extends TypeError {
  override readonly name = 'CanonicalJsonError'
  constructor(
    readonly reason: CanonicalJsonReason,
    message: string,
    readonly path: string,
  ) {
    super(path === '$' ? message : `${message} (at ${path})`)
  }
}

/** Path steps shown in a message; a deeper path ends in '…'. */
const PATH_STEPS_SHOWN = 8

/** Where a value stands in another, for a message: `$` for the whole, `$.plan.steps.0` for a part. */
export const jsonPath = (steps: readonly (string | number)[]): string =>
  `$${steps
    .slice(0, PATH_STEPS_SHOWN)
    .map((step) => `.${step}`)
    .join('')}${steps.length > PATH_STEPS_SHOWN ? '…' : ''}`

/** Deeper than any JSON value held: only a cycle gets there, which has no JSON form. */
const CYCLE_DEPTH = 1_000_000

/** An array or object being written: its items, or its sorted keys, and how far it has got. */
interface Frame {
  readonly container: unknown[] | Record<string, unknown>
  /** null for an array */
  readonly keys: string[] | null
  next: number
  /** for an object: nothing written inside it yet */
  empty: boolean
}

const pathOf = (stack: readonly Frame[]): string =>
  jsonPath(stack.map((frame) => (frame.keys === null ? frame.next - 1 : (frame.keys[frame.next - 1] ?? ''))))

const quote = (text: string, strict: boolean, stack: readonly Frame[]): string => {
  if (PLAIN.test(text)) return `"${text}"`
  if (strict && LONE_SURROGATE.test(text)) {
    throw new CanonicalJsonError(
      'lone-surrogate',
      'canonical JSON has no form for a lone surrogate',
      pathOf(stack),
    )
  }
  return JSON.stringify(text)
}

const numberText = (value: number, strict: boolean, stack: readonly Frame[]): string => {
  if (!Number.isFinite(value)) {
    throw new CanonicalJsonError(
      'non-finite-number',
      'canonical JSON has no form for non-finite numbers',
      pathOf(stack),
    )
  }
  if (strict && Math.abs(value) > Number.MAX_SAFE_INTEGER) {
    throw new CanonicalJsonError(
      'unsafe-integer',
      'canonical JSON holds numbers within ±(2^53-1) only: write a larger one as a string',
      pathOf(stack),
    )
  }
  return JSON.stringify(value)
}

/**
 * Writes a value without recursion, so no depth of nesting can overflow the stack. Strict: RFC 8785, which
 * refuses lone surrogates and numbers beyond ±(2^53-1); otherwise those are written as ECMAScript writes them.
 */
const write = (root: unknown, strict: boolean): string => {
  const stack: Frame[] = []
  let out = ''
  let value = root
  for (;;) {
    switch (typeof value) {
      case 'string':
        out += quote(value, strict, stack)
        break
      case 'boolean':
        out += value ? 'true' : 'false'
        break
      case 'number':
        out += numberText(value, strict, stack)
        break
      case 'object':
        if (value === null) {
          out += 'null'
          break
        }
        if (stack.length >= CYCLE_DEPTH) {
          throw new CanonicalJsonError('not-json', 'canonical JSON has no form for a cyclic value', '$')
        }
        if (Array.isArray(value)) {
          out += '['
          stack.push({ container: value, keys: null, next: 0, empty: true })
        } else {
          // the default sort compares UTF-16 code units, which is the order RFC 8785 asks for
          const keys = Object.keys(value).sort()
          out += '{'
          stack.push({ container: value as Record<string, unknown>, keys, next: 0, empty: true })
        }
        break
      default:
        throw new CanonicalJsonError(
          'not-json',
          `canonical JSON has no form for ${typeof value}`,
          pathOf(stack),
        )
    }
    // the next value to write, closing every container that has none left
    for (;;) {
      const top = stack.at(-1)
      if (top === undefined) return out
      const { container, keys } = top
      if (keys === null) {
        const items = container as unknown[]
        if (top.next < items.length) {
          if (top.next > 0) out += ','
          value = items[top.next] ?? null
          top.next += 1
          break
        }
        out += ']'
        stack.pop()
        continue
      }
      const object = container as Record<string, unknown>
      let found = false
      while (top.next < keys.length) {
        const key = keys[top.next] as string
        top.next += 1
        const member = object[key]
        if (member === undefined) continue
        if (!top.empty) out += ','
        top.empty = false
        out += `${quote(key, strict, stack)}:`
        value = member
        found = true
        break
      }
      if (found) break
      out += '}'
      stack.pop()
    }
  }
}

/**
 * RFC 8785 (JCS) canonical JSON: sorted keys by UTF-16 code units, ECMAScript number and string forms; finite
 * numbers within ±(2^53-1) and well-formed strings only, else a CanonicalJsonError naming where.
 */
export const canonicalize = (value: unknown): string => write(value, true)

/**
 * The canonical form of data already in a ledger, as it was hashed when recorded: an older ledger may hold
 * lone surrogates or integers beyond 2^53, written as ECMAScript writes them. Only for reading back.
 */
export const canonicalizeRecorded = (value: unknown): string => write(value, false)

/**
 * JSON text of any value the ledger holds, however deeply nested: the native writer (indented by `space`), or
 * the iterative one, compact, past its stack.
 */
export const jsonText = (value: unknown, space?: number): string => {
  try {
    return JSON.stringify(value, null, space)
  } catch (error) {
    if (error instanceof RangeError) return canonicalizeRecorded(value)
    throw error
  }
}

export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex')

/** The plan hash binds verdicts, evidence and approvals to one exact plan. */
export const planHashOf = (plan: unknown): string => `sha256:${sha256Hex(canonicalize(plan))}`

/** Everything that names one action: what its digest covers. */
export interface ActionIdentity {
  readonly proposalId: string
  readonly tool: string
  readonly action: string
  readonly resource: string
  readonly environment: string
  readonly executingIdentity: string
  readonly plan: unknown
}

/**
 * The digest of the whole action, which the verdict and every piece of evidence bind to: the same plan on
 * another resource, environment, identity or proposal is another action with another digest.
 */
export const actionDigestOf = (a: ActionIdentity): string =>
  `sha256:${sha256Hex(
    canonicalize({
      domain: 'governance-ledger/action/v1',
      proposalId: a.proposalId,
      tool: a.tool,
      action: a.action,
      resource: a.resource,
      environment: a.environment,
      executingIdentity: a.executingIdentity,
      plan: a.plan,
    }),
  )}`
