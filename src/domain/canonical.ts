import { createHash } from 'node:crypto'

/** RFC 8785 (JCS) canonical JSON: sorted keys by UTF-16 code units, ECMAScript number and string forms. */
export const canonicalize = (value: unknown): string => {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no form for non-finite numbers')
    return JSON.stringify(value)
  }
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map((item) => canonicalize(item ?? null)).join(',')}]`
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalize(v)}`).join(',')}}`
  }
  throw new TypeError(`canonical JSON has no form for ${typeof value}`)
}

export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex')

/** The plan hash binds verdicts, evidence and approvals to one exact plan. */
export const planHashOf = (plan: unknown): string => `sha256:${sha256Hex(canonicalize(plan))}`
