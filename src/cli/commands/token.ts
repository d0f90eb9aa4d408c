import { existsSync } from 'node:fs'
import { decodeJwt } from 'jose'
import { issueToken, type Role, tokenLifetime } from '../../auth/tokens.js'
import type { Config } from '../../config.js'
import { tokenKey } from '../../keys/service-keys.js'
import { dataPaths } from '../../runtime.js'
import { CliError, UsageError } from '../errors.js'
import { done, type Outcome } from '../outcome.js'

export interface TokenRequest {
  readonly sub: string
  readonly roles: readonly Role[]
  readonly approvalRoles?: readonly string[]
  /** undefined: the longest AUTH_MAX_TOKEN_LIFETIME allows */
  readonly expires: string | undefined
  /** undefined: AUTH_AUDIENCE */
  readonly audience: string | undefined
}

/** `token issue`: a bearer token signed with the embedded key, as the service's first start does. */
export const issueTokenCommand = async (config: Config, request: TokenRequest): Promise<Outcome> => {
  const lifetime = tokenLifetime(request.expires, config.AUTH_MAX_TOKEN_LIFETIME)
  if ('refused' in lifetime) throw new UsageError(`--expires ${request.expires}: ${lifetime.refused}`)
  if (config.AUTH_MODE !== 'embedded')
    throw new CliError(
      `token issue signs with the embedded key, but AUTH_MODE is ${config.AUTH_MODE}: issue tokens with your identity provider`,
    )
  const path = dataPaths(config).tokenKey
  if (config.TOKEN_KEY_FILE === undefined && !existsSync(path))
    throw new CliError(
      `no token signing key at ${path}: start the service once on this data folder to create it`,
    )
  const token = await issueToken(tokenKey(config).key, config, {
    sub: request.sub,
    roles: request.roles,
    ...(request.approvalRoles?.length ? { approvalRoles: request.approvalRoles } : {}),
    ...(request.expires === undefined ? {} : { expiresIn: request.expires }),
    ...(request.audience === undefined ? {} : { audience: request.audience }),
  })
  const { exp, jti } = decodeJwt(token)
  const expiresAt = exp === undefined ? null : new Date(exp * 1000).toISOString()
  return done(
    {
      token,
      sub: request.sub,
      roles: request.roles,
      issuer: config.AUTH_ISSUER,
      audience: request.audience ?? config.AUTH_AUDIENCE,
      jti,
      expiresAt,
    },
    token,
  )
}
