// Sign-in at the identity provider with OpenID Connect, where the service is configured for it: the authorization
// code flow of a public client with PKCE (S256, RFC 7636), state and nonce. The provider is found by OpenID Connect
// Discovery at its issuer; the access token it answers is kept as a pasted one is, for this tab only.
import { payloadOf } from './session.js'

/** How the service says the console signs in (GET /console/config.json). */
export interface OidcSettings {
  readonly issuer: string
  readonly clientId: string
  readonly scopes: readonly string[]
}

/** A sign-in that cannot go on: shown to the user, who stays signed out. */
export class SignInError extends Error {}

/** What a started sign-in needs on its return, in sessionStorage until that return uses it (or the tab closes). */
interface Pending {
  readonly state: string
  readonly nonce: string
  readonly verifier: string
  readonly issuer: string
  readonly clientId: string
  readonly tokenEndpoint: string
}
const PENDING = 'governance-console-oidc'

let settings: Promise<OidcSettings | null> | undefined
/** The service's OpenID Connect settings for the console; null where it signs in by paste only. */
export const oidcSettings = (): Promise<OidcSettings | null> => {
  settings ??= (async () => {
    try {
      const response = await fetch('/console/config.json', { headers: { accept: 'application/json' } })
      if (!response.ok) return null
      const body = (await response.json()) as { oidc?: OidcSettings | null }
      return body.oidc ?? null
    } catch {
      return null
    }
  })()
  return settings
}

/** Where the provider sends the user back: the console itself, as registered at the provider. */
const redirectUri = (): string => `${location.origin}/console`

const base64url = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')

/** A random value of `bytes` bytes, base64url: 32 bytes give the 43 characters of a PKCE verifier. */
const randomText = (bytes: number): string => base64url(crypto.getRandomValues(new Uint8Array(bytes)))

/** The S256 code challenge of a verifier: BASE64URL(SHA-256(verifier)). */
const challengeOf = async (verifier: string): Promise<string> =>
  base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))))

const message = async (response: Response): Promise<string> => {
  try {
    const body = (await response.json()) as { error?: unknown; error_description?: unknown }
    if (typeof body.error === 'string')
      return typeof body.error_description === 'string'
        ? `${body.error}: ${body.error_description}`
        : body.error
  } catch {
    // no JSON: the status says it
  }
  return `${response.status} ${response.statusText}`.trim()
}

/** The provider's endpoints, from its discovery document, checked against what the console may reach. */
const discover = async (issuer: string): Promise<{ authorization: URL; token: URL }> => {
  const where = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
  let response: Response
  try {
    response = await fetch(where, { headers: { accept: 'application/json' } })
  } catch (error) {
    throw new SignInError(
      `the identity provider's discovery document could not be read at ${where} (${error})`,
    )
  }
  if (!response.ok)
    throw new SignInError(
      `the identity provider's discovery document at ${where}: ${await message(response)}`,
    )
  const document = (await response.json().catch(() => null)) as Record<string, unknown> | null
  if (document?.issuer !== issuer)
    throw new SignInError(
      `the discovery document at ${where} names the issuer ${JSON.stringify(document?.issuer)}, not ${issuer}`,
    )
  const endpoint = (name: string): URL => {
    const value = document[name]
    try {
      if (typeof value === 'string') return new URL(value)
    } catch {
      // reported below
    }
    throw new SignInError(`the discovery document at ${where} gives no ${name}`)
  }
  const authorization = endpoint('authorization_endpoint')
  const token = endpoint('token_endpoint')
  const { origin, protocol } = new URL(issuer)
  // the user is sent to the authorization endpoint: an https:// page (http:// only for an http:// issuer), never
  // a script
  for (const [name, url] of [
    ['authorization_endpoint', authorization],
    ['token_endpoint', token],
  ] as const)
    if (url.protocol !== 'https:' && url.protocol !== protocol)
      throw new SignInError(`the discovery document's ${name} ${url.href} is not an ${protocol}// URL`)
  if (token.origin !== origin)
    throw new SignInError(
      `the token endpoint ${token.href} is not on the issuer's origin ${origin}, the only one the console may call`,
    )
  return { authorization, token }
}

/** Starts a sign-in: to the provider's authorization endpoint, the verifier, state and nonce kept for the return. */
export const beginSignIn = async (oidc: OidcSettings): Promise<void> => {
  const { authorization, token } = await discover(oidc.issuer)
  const pending: Pending = {
    state: randomText(32),
    nonce: randomText(32),
    verifier: randomText(32),
    issuer: oidc.issuer,
    clientId: oidc.clientId,
    tokenEndpoint: token.href,
  }
  sessionStorage.setItem(PENDING, JSON.stringify(pending))
  const url = new URL(authorization)
  url.searchParams.set('response_type', 'code')
  url.searchParams.set('client_id', oidc.clientId)
  url.searchParams.set('redirect_uri', redirectUri())
  url.searchParams.set('scope', oidc.scopes.join(' '))
  url.searchParams.set('state', pending.state)
  url.searchParams.set('nonce', pending.nonce)
  url.searchParams.set('code_challenge', await challengeOf(pending.verifier))
  url.searchParams.set('code_challenge_method', 'S256')
  location.assign(url.href)
}

/** The sign-in started in this tab, taken out of sessionStorage: it is used once, whatever the outcome. */
const takePending = (): Pending | null => {
  const text = sessionStorage.getItem(PENDING)
  sessionStorage.removeItem(PENDING)
  if (text === null) return null
  try {
    return JSON.parse(text) as Pending
  } catch {
    return null
  }
}

/**
 * On the return from the provider (code or error, and state, in the query): the access token for the code, the
 * URL cleaned of them. Null when this page load is no such return; a SignInError when the sign-in failed.
 */
export const finishSignIn = async (): Promise<string | null> => {
  const query = new URLSearchParams(location.search)
  if (!query.has('state') && !query.has('code') && !query.has('error')) return null
  // the code is single-use and the state spent: neither stays in the address bar or the history
  history.replaceState(null, '', `${location.pathname}${location.hash}`)
  const pending = takePending()
  const error = query.get('error')
  if (error !== null) {
    const description = query.get('error_description')
    throw new SignInError(
      `the identity provider refused the sign-in: ${error}${description ? `: ${description}` : ''}`,
    )
  }
  if (pending === null)
    throw new SignInError('no sign-in was started in this tab, or its answer was used already')
  if (query.get('state') !== pending.state)
    throw new SignInError('the answer does not carry the state this sign-in sent: it is refused')
  // RFC 9207: a provider that names itself in the answer must be the one asked
  const iss = query.get('iss')
  if (iss !== null && iss !== pending.issuer)
    throw new SignInError(`the answer comes from ${iss}, not from ${pending.issuer}: it is refused`)
  const code = query.get('code')
  if (!code) throw new SignInError('the identity provider answered without a code')

  let response: Response
  try {
    response = await fetch(pending.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri(),
        client_id: pending.clientId,
        code_verifier: pending.verifier,
      }),
    })
  } catch (reason) {
    throw new SignInError(`the token endpoint ${pending.tokenEndpoint} could not be reached (${reason})`)
  }
  if (!response.ok) throw new SignInError(`the token endpoint refused the code: ${await message(response)}`)
  const tokens = (await response.json().catch(() => null)) as Record<string, unknown> | null
  const accessToken = tokens?.access_token
  if (typeof accessToken !== 'string' || accessToken === '')
    throw new SignInError('the token endpoint answered no access token')
  if (typeof tokens?.token_type === 'string' && tokens.token_type.toLowerCase() !== 'bearer')
    throw new SignInError(`the token endpoint answered a ${tokens.token_type} token, not a bearer token`)
  // the ID token came straight from the token endpoint: its nonce must be the one this sign-in sent
  if (typeof tokens?.id_token === 'string' && payloadOf(tokens.id_token)?.nonce !== pending.nonce)
    throw new SignInError('the ID token does not carry the nonce this sign-in sent: it is refused')
  return accessToken
}
