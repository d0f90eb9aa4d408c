// A small OpenID provider on 127.0.0.1, for the console's sign-in: discovery, an authorization endpoint that checks
// what a public client with PKCE must send and answers with a code, a token endpoint that checks the code verifier
// against the challenge (S256) and answers an access token and an ID token signed with the key it serves at its
// JWKS, and CORS for the console's origin. What it refused is kept in `problems`, for the test to assert on.
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, SignJWT } from 'jose'

export interface FakeProvider {
  /** the issuer, http://127.0.0.1:<port> */
  readonly issuer: string
  /** the origin the console is served from; the only one CORS lets read the answers */
  consoleOrigin: string
  /** the client id the console must send */
  readonly clientId: string
  /** the next sign-in's answer: as asked, with another state, a refusal, or a code the token endpoint refuses */
  next: 'normal' | 'tampered-state' | 'access-denied' | 'bad-code'
  /** the token requests received, and the access tokens answered */
  readonly tokenRequests: URLSearchParams[]
  readonly issued: string[]
  /** what a request lacked or got wrong, in a sentence each */
  readonly problems: string[]
  close(): Promise<void>
}

interface Grant {
  readonly challenge: string
  readonly nonce: string
  readonly redirectUri: string
  used: boolean
}

const s256 = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url')

/** Starts the provider; the access tokens it issues name `sub` and `roles` for `audience`. */
export const startFakeProvider = async (options: {
  clientId: string
  audience: string
  sub: string
  roles: readonly string[]
}): Promise<FakeProvider> => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const kid = 'fake-provider-1'
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' }
  const grants = new Map<string, Grant>()

  const server = createServer()
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const provider: FakeProvider = {
    issuer,
    consoleOrigin: '',
    clientId: options.clientId,
    next: 'normal',
    tokenRequests: [],
    issued: [],
    problems: [],
    close: () =>
      new Promise((done) => {
        server.closeAllConnections()
        server.close(() => done())
      }),
  }

  const sign = (claims: Record<string, unknown>, audience: string) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(options.sub)
      .setIssuedAt()
      .setExpirationTime('10m')
      .setJti(randomUUID())
      .sign(privateKey)

  const json = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'access-control-allow-origin': provider.consoleOrigin,
      vary: 'origin',
    })
    response.end(JSON.stringify(body))
  }

  const authorize = (url: URL, response: ServerResponse) => {
    const q = url.searchParams
    const wrong: string[] = []
    const expect = (name: string, ok: boolean) => {
      if (!ok) wrong.push(`authorize: ${name} is ${JSON.stringify(q.get(name))}`)
    }
    const redirectUri = `${provider.consoleOrigin}/console`
    expect('response_type', q.get('response_type') === 'code')
    expect('client_id', q.get('client_id') === options.clientId)
    expect('redirect_uri', q.get('redirect_uri') === redirectUri)
    expect('scope', (q.get('scope') ?? '').split(' ').includes('openid'))
    expect('code_challenge_method', q.get('code_challenge_method') === 'S256')
    expect('code_challenge', /^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? ''))
    expect('state', (q.get('state') ?? '').length >= 16)
    expect('nonce', (q.get('nonce') ?? '').length >= 16)
    if (wrong.length > 0) {
      provider.problems.push(...wrong)
      response.writeHead(400, { 'content-type': 'text/plain' }).end(wrong.join('\n'))
      return
    }
    const back = new URL(redirectUri)
    const state = String(q.get('state'))
    const next = provider.next
    provider.next = 'normal'
    if (next === 'access-denied') {
      back.searchParams.set('error', 'access_denied')
      back.searchParams.set('error_description', 'the user declined')
    } else {
      const code = randomBytes(16).toString('base64url')
      if (next !== 'bad-code')
        grants.set(code, {
          challenge: String(q.get('code_challenge')),
          nonce: String(q.get('nonce')),
          redirectUri,
          used: false,
        })
      back.searchParams.set('code', code)
    }
    back.searchParams.set('state', next === 'tampered-state' ? `${state}x` : state)
    back.searchParams.set('iss', issuer)
    response.writeHead(302, { location: back.href }).end()
  }

  const token = async (request: IncomingMessage, response: ServerResponse) => {
    let text = ''
    for await (const chunk of request) text += chunk
    const form = new URLSearchParams(text)
    provider.tokenRequests.push(form)
    const refuse = (error: string, description: string) => {
      provider.problems.push(`token: ${description}`)
      json(response, 400, { error, error_description: description })
    }
    if (request.headers['content-type'] !== 'application/x-www-form-urlencoded')
      return refuse('invalid_request', `content-type ${request.headers['content-type']}`)
    if (form.get('grant_type') !== 'authorization_code')
      return refuse('unsupported_grant_type', `grant_type ${form.get('grant_type')}`)
    if (form.get('client_id') !== options.clientId)
      return refuse('invalid_client', `client_id ${form.get('client_id')}`)
    const grant = grants.get(form.get('code') ?? '')
    if (!grant || grant.used) return refuse('invalid_grant', 'the code is unknown or used')
    grant.used = true
    if (form.get('redirect_uri') !== grant.redirectUri)
      return refuse('invalid_grant', `redirect_uri ${form.get('redirect_uri')}`)
    if (s256(form.get('code_verifier') ?? '') !== grant.challenge)
      return refuse('invalid_grant', 'the code verifier does not match the challenge')
    const accessToken = await sign({ roles: options.roles }, options.audience)
    provider.issued.push(accessToken)
    json(response, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 600,
      id_token: await sign({ nonce: grant.nonce }, options.clientId),
    })
  }

  server.on('request', (request, response) => {
    const url = new URL(request.url ?? '/', issuer)
    const route = `${request.method} ${url.pathname}`
    if (route === 'GET /.well-known/openid-configuration')
      return json(response, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['EdDSA'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none'],
      })
    if (route === 'GET /jwks') return json(response, 200, { keys: [jwk] })
    if (route === 'GET /authorize') return authorize(url, response)
    if (route === 'POST /token')
      return void token(request, response).catch((error) => {
        provider.problems.push(`token: ${error}`)
        json(response, 500, { error: 'server_error' })
      })
    response.writeHead(404).end()
  })
  return provider
}
