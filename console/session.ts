// The bearer token of this tab: pasted once, kept in sessionStorage (this tab only, gone when it closes).
const KEY = 'governance-console-token'

export type Role =
  | 'agent'
  | 'observer'
  | 'simulator'
  | 'approver'
  | 'executor'
  | 'policy-admin'
  | 'auditor'
  | string

export interface Principal {
  readonly sub: string
  readonly roles: readonly Role[]
  readonly approvalRoles: readonly string[]
}

export const storedToken = (): string | null => sessionStorage.getItem(KEY)
export const keepToken = (token: string): void => sessionStorage.setItem(KEY, token)
export const forgetToken = (): void => sessionStorage.removeItem(KEY)

/** The token's payload, decoded for display only (the service verifies it and enforces its roles). */
export const payloadOf = (token: string): Record<string, unknown> | null => {
  const part = token.split('.')[1]
  if (!part) return null
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/')
    const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')), (c) =>
      c.charCodeAt(0),
    )
    const payload: unknown = JSON.parse(new TextDecoder().decode(bytes))
    return payload !== null && typeof payload === 'object' ? (payload as Record<string, unknown>) : null
  } catch {
    return null
  }
}

/** When the token stops working, from its exp claim (display only). */
export const expiresAt = (token: string): Date | null => {
  const exp = payloadOf(token)?.exp
  return typeof exp === 'number' ? new Date(exp * 1000) : null
}

export const holds = (principal: Principal, ...roles: Role[]): boolean =>
  principal.roles.some((role) => roles.includes(role))
