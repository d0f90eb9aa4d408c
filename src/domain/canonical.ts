import { createHash } from 'node:crypto'

/** Printable ASCII but `"` and `\`: a string of these is its own JSON form between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

/** A string's JSON form (RFC 8785 uses ECMAScript's), without JSON.stringify for the usual plain strings. */
const quoted = (text: string): string => (PLAIN.test(text) ? `"${text}"` : JSON.stringify(text))

/** RFC 8785 (JCS) canonical JSON: sorted keys by UTF-16 code units, ECMAScript number and string forms. */
export const canonicalize = (value: unknown): string => {
  switch (typeof value) {
    case 'string':
      return quoted(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no form for non-finite numbers')
      return JSON.stringify(value)
    case 'object':
      if (value === null) return 'null'
      return Array.isArray(value) ? canonicalArray(value) : canonicalObject(value as Record<string, unknown>)
    default:
      throw new TypeError(`canonical JSON has no form for ${typeof value}`)
  }
}

const canonicalArray = (items: readonly unknown[]): string => {
  let out = '['
  for (let i = 0; i < items.length; i += 1) {
    if (i > 0) out += ','
    out += canonicalize(items[i] ?? null)
  }
  return `${out}]`
}

const canonicalObject = (object: Record<string, unknown>): string => {
  // the default sort compares UTF-16 code units, which is the order RFC 8785 asks for
  const keys = Object.keys(object).sort()
  let out = '{'
  for (const key of keys) {
    const v = object[key]
    if (v === undefined) continue
    if (out.length > 1) out += ','
    out += `${quoted(key)}:${canonicalize(v)}`
  }
  return `${out}}`
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
