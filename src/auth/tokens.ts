import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRemoteJWKSet, errors, type JWK, type JWTVerifyGetKey, jwtVerify, SignJWT } from 'jose'
import { z } from 'zod'
import type { Config } from '../config.js'
import { type Actor, BASE_APPROVAL_ROLE, Role } from '../domain/actor.js'
import { DomainError } from '../domain/errors.js'
import { Identifier, TokenId } from '../domain/events.js'
import { isVerdictJwsType, jwsTypeOf, keyIdOf, publicJwk } from '../domain/signing.js'
import { formatLifetime, Lifetime, lifetimeBeyond } from './lifetime.js'
import { RevokedTokens } from './revocations.js'

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
  /** retired embedded token keys by kid, with when each was retired (seconds): it verifies the tokens issued before */
  readonly retiredAt?: ReadonlyMap<string, number>
}

/** A retired embedded token key: its public half, and when it was retired (seconds). */
export interface RetiredTokenKey {
  readonly jwk: JWK
  readonly retiredAt: number
}

/** The public half of the embedded token key, as it is published in the service's JWKS. */
export const tokenKeyJwk = (key: KeyObject): JWK => publicJwk(key, keyIdOf(key, 'tokens')) as JWK

/**
 * The key material tokens are checked against, by AUTH_MODE; HS256 only when explicitly asked for. In embedded
 * mode, the token keys retired whose tokens may still be alive verify those tokens too.
 */
export const verifierKeys = (
  config: Config,
  embeddedKey: KeyObject | null,
  retired: ReadonlyMap<string, RetiredTokenKey> = new Map(),
): VerifierKeys => {
  switch (config.AUTH_MODE) {
    case 'embedded': {
      if (!embeddedKey) throw new Error('the embedded token key is missing')
      const current = createPublicKey(embeddedKey)
      const byKid = new Map<string, KeyObject>([
        [keyIdOf(embeddedKey, 'tokens'), current],
        ...[...retired].map(([kid, r]) => [kid, createPublicKey({ key: r.jwk, format: 'jwk' })] as const),
      ])
      return {
        // a token naming a kid the service does not sign tokens with (the verdict key's, say) is refused; one
        // naming none is checked against the current key alone
        key: async (header) => {
          const key = header.kid === undefined ? current : byKid.get(header.kid)
          if (!key) throw new errors.JWKSNoMatchingKey()
          return key
        },
        algorithms: ['EdDSA'],
        retiredAt: new Map([...retired].map(([kid, r]) => [kid, r.retiredAt])),
      }
    }
    case 'jwks':
    case 'jwks-development':
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
    .looseObject({ sub: Identifier, jti: TokenId.optional() })
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

interface Trusted {
  readonly principal: Principal
  readonly jti: string | undefined
  readonly until: number
}

/** Tokens verified lately: a client that sends the same token again is not verified again for a minute. */
class TrustedTokens {
  private readonly byToken = new Map<string, Trusted>()

  get(token: string, now: number): Trusted | undefined {
    const hit = this.byToken.get(token)
    if (hit && hit.until > now) return hit
    if (hit) this.byToken.delete(token)
    return undefined
  }

  /** Trusted for a minute at most, and never past the token's expiry nor its maximum age. */
  add(token: string, principal: Principal, jti: string | undefined, lastValid: number, now: number): void {
    if (this.byToken.size >= TRUSTED_TOKENS) {
      const oldest = this.byToken.keys().next()
      if (!oldest.done) this.byToken.delete(oldest.value)
    }
    this.byToken.set(token, { principal, jti, until: Math.min(now + TRUSTED_MS, lastValid) })
  }
}

export interface VerifierOptions {
  /** the time tokens are checked at, in ms (tests move it) */
  readonly clock?: () => number
  /** the token ids a policy admin revoked; checked on every request, a trusted token's too */
  readonly revoked?: RevokedTokens
}

/** What a token says and how long it may live: the settings the verifier and the issuer share. */
export type TokenSettings = Pick<
  Config,
  | 'AUTH_ISSUER'
  | 'AUTH_AUDIENCE'
  | 'AUTH_ROLES_CLAIM'
  | 'AUTH_APPROVAL_ROLES_CLAIM'
  | 'AUTH_MAX_TOKEN_LIFETIME'
>

/** How far apart the issuer's clock and the service's may be when `iat`, `exp` and `nbf` are checked. */
export const CLOCK_TOLERANCE_SECONDS = 10

/**
 * Checks a bearer token: signature, issuer, audience, exp and iat required, a lifetime (exp - iat) within
 * AUTH_MAX_TOKEN_LIFETIME and an age (now - iat) within it too, a jti unless AUTH_REQUIRE_JTI=false, and
 * that jti not revoked; no token at all while revocations cannot be checked. A verifier for another audience
 * is the same call with another AUTH_AUDIENCE.
 */
export const createTokenVerifier = (
  config: TokenSettings & Pick<Config, 'AUTH_REQUIRE_JTI'>,
  keys: VerifierKeys,
  { clock = Date.now, revoked = new RevokedTokens(config.AUTH_MAX_TOKEN_LIFETIME) }: VerifierOptions = {},
): TokenVerifier => {
  const claims = Claims(config.AUTH_ROLES_CLAIM, config.AUTH_APPROVAL_ROLES_CLAIM)
  const trusted = new TrustedTokens()
  const maxLifetime = config.AUTH_MAX_TOKEN_LIFETIME
  const notRevoked = (jti: string | undefined, now: number) => {
    const unsure = revoked.unsureBecause()
    if (unsure !== null)
      throw new DomainError('unavailable', `no token is taken while revocations cannot be checked: ${unsure}`)
    if (jti !== undefined && revoked.has(jti, now))
      throw new AuthenticationError('the token has been revoked')
  }
  return {
    async verify(token) {
      const now = clock()
      const known = trusted.get(token, now)
      if (known) {
        notRevoked(known.jti, now)
        return known.principal
      }
      // a verdict is signed by the service too, and may share a JWKS with tokens: never a token, however it verifies
      if (isVerdictJwsType(jwsTypeOf(token)))
        throw new AuthenticationError('invalid token: a verdict is not a token')
      try {
        const options = {
          issuer: config.AUTH_ISSUER,
          audience: config.AUTH_AUDIENCE,
          algorithms: keys.algorithms,
          currentDate: new Date(now),
          requiredClaims: config.AUTH_REQUIRE_JTI ? ['exp', 'jti'] : ['exp'],
          // requires iat, in the past and at most this old
          maxTokenAge: maxLifetime,
          // an identity provider's clock a little ahead of ours is no reason to refuse its fresh tokens
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        }
        const { key } = keys
        const { payload, protectedHeader } =
          typeof key === 'function'
            ? await jwtVerify(token, key, options)
            : await jwtVerify(token, key, options)
        const exp = Number(payload.exp)
        const iat = Number(payload.iat)
        const retiredAt =
          protectedHeader.kid === undefined ? undefined : keys.retiredAt?.get(protectedHeader.kid)
        // whoever kept a retired key could sign with it still: only what it signed before it was retired counts
        if (retiredAt !== undefined && iat > retiredAt)
          throw new AuthenticationError('invalid token: issued after its key was retired')
        const tooLong = lifetimeBeyond(exp - iat, maxLifetime)
        if (tooLong !== null) throw new AuthenticationError(`invalid token: ${tooLong}`)
        const parsed = claims.safeParse(payload)
        if (!parsed.success)
          throw new AuthenticationError(
            `token claims: ${parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`,
          )
        const jti = payload.jti
        notRevoked(jti, now)
        trusted.add(token, parsed.data, jti, Math.min(exp, iat + maxLifetime) * 1000, now)
        return parsed.data
      } catch (error) {
        if (error instanceof AuthenticationError) throw error
        if (error instanceof errors.JWTExpired)
          throw new AuthenticationError(
            error.claim === 'iat'
              ? `the token is older than ${formatLifetime(maxLifetime)} (AUTH_MAX_TOKEN_LIFETIME)`
              : 'the token has expired',
          )
        if (error instanceof errors.JWTClaimValidationFailed)
          throw new AuthenticationError(`invalid token: ${error.message}`)
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
  /** a lifetime such as 30m, 24h or 7d; default and at most AUTH_MAX_TOKEN_LIFETIME */
  readonly expiresIn?: string
  /** default AUTH_AUDIENCE; another audience makes a token the HTTP API refuses */
  readonly audience?: string
}

/** The lifetime asked for, in seconds, or why it may not be issued. */
export const tokenLifetime = (
  expiresIn: string | undefined,
  maxSeconds: number,
): { seconds: number } | { refused: string } => {
  if (expiresIn === undefined) return { seconds: maxSeconds }
  const parsed = Lifetime.safeParse(expiresIn)
  if (!parsed.success) return { refused: parsed.error.issues[0]?.message ?? 'not a lifetime' }
  const refused = lifetimeBeyond(parsed.data, maxSeconds)
  return refused === null ? { seconds: parsed.data } : { refused }
}

/**
 * Issues a token signed with the embedded key (EdDSA), as the CLI's `token issue` and the first start do:
 * with a fresh jti, so that a policy admin can revoke it, and a lifetime within AUTH_MAX_TOKEN_LIFETIME.
 */
export const issueToken = (
  privateKey: KeyObject,
  config: TokenSettings,
  options: IssueTokenOptions,
): Promise<string> => {
  const lifetime = tokenLifetime(options.expiresIn, config.AUTH_MAX_TOKEN_LIFETIME)
  if ('refused' in lifetime)
    return Promise.reject(new Error(`a token for ${options.expiresIn}: ${lifetime.refused}`))
  const iat = Math.floor(Date.now() / 1000)
  return new SignJWT({
    [config.AUTH_ROLES_CLAIM]: [...options.roles],
    ...(options.approvalRoles?.length
      ? { [config.AUTH_APPROVAL_ROLES_CLAIM]: [...options.approvalRoles] }
      : {}),
  })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: keyIdOf(privateKey, 'tokens') })
    .setSubject(options.sub)
    .setIssuer(config.AUTH_ISSUER)
    .setAudience(options.audience ?? config.AUTH_AUDIENCE)
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + lifetime.seconds)
    .sign(privateKey)
}

export const loadPrivateKey = (path: string): KeyObject => createPrivateKey(readFileSync(path))
