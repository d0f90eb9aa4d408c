import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRemoteJWKSet, errors, type JWTVerifyGetKey, jwtVerify, SignJWT } from 'jose'
import { z } from 'zod'
import type { Config } from '../config.js'
import { type Actor, BASE_APPROVAL_ROLE, Role } from '../domain/actor.js'
import { Identifier } from '../domain/events.js'

export { ROLES, Role } from '../domain/actor.js'

/** The authenticated caller: `sub` of the token, the roles it grants and the roles it may approve in. */
export type Principal = Actor

export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError'
}

export interface TokenVerifier {
  verify(token: string): Promise<Principal>
}

interface VerifierKeys {
  readonly key: KeyObject | JWTVerifyGetKey
  readonly algorithms: string[]
}

/** The key material tokens are checked against, by AUTH_MODE; HS256 only when explicitly asked for. */
export const verifierKeys = (config: Config, embeddedKey: KeyObject | null): VerifierKeys => {
  switch (config.AUTH_MODE) {
    case 'embedded':
      if (!embeddedKey) throw new Error('the embedded token key is missing')
      return { key: createPublicKey(embeddedKey), algorithms: ['EdDSA'] }
    case 'jwks':
      return {
        key: createRemoteJWKSet(new URL(String(config.AUTH_JWKS_URL))),
        algorithms: ['EdDSA', 'RS256'],
      }
    case 'key-file': {
      const key = createPublicKey(readFileSync(String(config.AUTH_PUBLIC_KEY_FILE)))
      return { key, algorithms: key.asymmetricKeyType === 'rsa' ? ['RS256'] : ['EdDSA'] }
    }
    case 'hs256-development':
      return {
        key: createSecretKey(Buffer.from(String(config.AUTH_HS256_SECRET), 'utf8')),
        algorithms: ['HS256'],
      }
  }
}

const Claims = (rolesClaim: string, approvalRolesClaim: string) =>
  z
    .looseObject({ sub: Identifier })
    .and(z.looseObject({ [rolesClaim]: z.array(Role).min(1) }))
    .and(z.looseObject({ [approvalRolesClaim]: z.array(Identifier).max(50).optional() }))
    .transform((c): Principal => {
      const claims = c as Record<string, unknown>
      const roles = claims[rolesClaim] as Role[]
      const extra = (claims[approvalRolesClaim] as string[] | undefined) ?? []
      // approval roles mean something only to an approver
      const approvalRoles = roles.includes('approver') ? [...new Set([BASE_APPROVAL_ROLE, ...extra])] : []
      return { sub: c.sub, roles, approvalRoles }
    })

/** How long a verified token is taken on trust again, at most (never past its own expiry). */
const TRUSTED_MS = 60_000
const TRUSTED_TOKENS = 1024

/** Tokens verified lately: a client that sends the same token again is not verified again for a minute. */
class TrustedTokens {
  private readonly byToken = new Map<string, { readonly principal: Principal; readonly until: number }>()

  get(token: string, now: number): Principal | undefined {
    const hit = this.byToken.get(token)
    if (hit && hit.until > now) return hit.principal
    if (hit) this.byToken.delete(token)
    return undefined
  }

  add(token: string, principal: Principal, expiresAt: number | undefined, now: number): void {
    if (this.byToken.size >= TRUSTED_TOKENS) {
      const oldest = this.byToken.keys().next()
      if (!oldest.done) this.byToken.delete(oldest.value)
    }
    this.byToken.set(token, { principal, until: Math.min(now + TRUSTED_MS, expiresAt ?? now + TRUSTED_MS) })
  }
}

export const createTokenVerifier = (
  config: Config,
  keys: VerifierKeys,
  clock: () => number = Date.now,
): TokenVerifier => {
  const claims = Claims(config.AUTH_ROLES_CLAIM, config.AUTH_APPROVAL_ROLES_CLAIM)
  const trusted = new TrustedTokens()
  return {
    async verify(token) {
      const now = clock()
      const known = trusted.get(token, now)
      if (known) return known
      try {
        const options = {
          issuer: config.AUTH_ISSUER,
          audience: config.AUTH_AUDIENCE,
          algorithms: keys.algorithms,
          currentDate: new Date(now),
        }
        const { key } = keys
        const { payload } =
          typeof key === 'function'
            ? await jwtVerify(token, key, options)
            : await jwtVerify(token, key, options)
        const parsed = claims.safeParse(payload)
        if (!parsed.success)
          throw new AuthenticationError(
            `token claims: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`,
          )
        trusted.add(token, parsed.data, payload.exp === undefined ? undefined : payload.exp * 1000, now)
        return parsed.data
      } catch (error) {
        if (error instanceof AuthenticationError) throw error
        if (error instanceof errors.JWTExpired) throw new AuthenticationError('the token has expired')
        if (error instanceof errors.JOSEError) throw new AuthenticationError(`invalid token: ${error.code}`)
        throw error
      }
    },
  }
}

export interface IssueTokenOptions {
  readonly sub: string
  readonly roles: readonly Role[]
  /** extra roles an approver may approve in (the approval-roles claim) */
  readonly approvalRoles?: readonly string[]
  readonly expiresIn?: string
}

/** Issues a token signed with the embedded key (EdDSA), as the CLI's `token issue` and the first start do. */
export const issueToken = (
  privateKey: KeyObject,
  config: Pick<Config, 'AUTH_ISSUER' | 'AUTH_AUDIENCE' | 'AUTH_ROLES_CLAIM' | 'AUTH_APPROVAL_ROLES_CLAIM'>,
  options: IssueTokenOptions,
): Promise<string> =>
  new SignJWT({
    [config.AUTH_ROLES_CLAIM]: [...options.roles],
    ...(options.approvalRoles?.length
      ? { [config.AUTH_APPROVAL_ROLES_CLAIM]: [...options.approvalRoles] }
      : {}),
  })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuer(config.AUTH_ISSUER)
    .setAudience(config.AUTH_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '24h')
    .sign(privateKey)

export const loadPrivateKey = (path: string): KeyObject => createPrivateKey(readFileSync(path))
