// The console: the static files of the browser app under /console, built by `npm run build` into dist/console.
// It holds no data and no secret: every figure it shows, it reads from the public API with the user's token.
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { z } from 'zod'
import type { Config } from '../config.js'
import { ApiError } from './errors.js'

const here = dirname(fileURLToPath(import.meta.url))
/** The repository root, whether this module runs from src/http or, built, from dist/src/http. */
const root = here.split(/[\\/]/).includes('dist')
  ? resolve(here, '..', '..', '..')
  : resolve(here, '..', '..')
export const CONSOLE_DIR = join(root, 'dist', 'console')

/** Every file the console serves, and its type: nothing else is ever read from the folder. */
const FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
}

/** How the console signs in: with OpenID Connect at the issuer where CONSOLE_OIDC_CLIENT_ID is set, else by paste. */
export const ConsoleSignIn = z.object({
  oidc: z
    .object({
      issuer: z
        .string()
        .describe('AUTH_ISSUER: the discovery document is at <issuer>/.well-known/openid-configuration'),
      clientId: z.string().describe('the console, a public client at the identity provider (no secret)'),
      scopes: z.array(z.string()),
    })
    .nullable()
    .describe('null: the console signs in by paste only'),
})
export type ConsoleSignIn = z.infer<typeof ConsoleSignIn>

export const consoleSignInOf = (
  config: Pick<Config, 'AUTH_ISSUER' | 'CONSOLE_OIDC_CLIENT_ID' | 'CONSOLE_OIDC_SCOPES'>,
): ConsoleSignIn => ({
  oidc:
    config.CONSOLE_OIDC_CLIENT_ID === undefined
      ? null
      : {
          issuer: config.AUTH_ISSUER,
          clientId: config.CONSOLE_OIDC_CLIENT_ID,
          scopes: config.CONSOLE_OIDC_SCOPES,
        },
})

/**
 * Only the console's own files run, nothing inline, no frame embeds it, and it talks to this origin only, and to
 * the identity provider's where it signs in there (discovery and token requests; the sign-in itself is a
 * navigation).
 */
export const consoleCsp = (signIn: ConsoleSignIn = { oidc: null }): string =>
  [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    signIn.oidc === null ? "connect-src 'self'" : `connect-src 'self' ${new URL(signIn.oidc.issuer).origin}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ')

/** The policy of a console that signs in by paste only. */
export const CONSOLE_CSP = consoleCsp()

const secure = (reply: FastifyReply, csp: string): FastifyReply =>
  reply
    .header('content-security-policy', csp)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cache-control', 'no-cache')

/**
 * Serves the console's files at /console, and at /console/config.json how it signs in (nothing secret: a public
 * client has no secret); answers 503 (and keeps serving the API) when it was not built.
 */
export const consoleRoutes =
  (dir: string = CONSOLE_DIR) =>
  async (app: FastifyInstance): Promise<void> => {
    const signIn = consoleSignInOf(app.runtime.config)
    const csp = consoleCsp(signIn)
    const send = async (name: string, reply: FastifyReply) => {
      const type = Object.hasOwn(FILES, name) ? FILES[name] : undefined
      if (type === undefined) throw new ApiError('not-found', `the console has no file ${name}`)
      let body: Buffer
      try {
        body = await readFile(join(dir, name))
      } catch {
        throw new ApiError(
          'unavailable',
          'the console is not built: run `npm run build` (npm start builds it), then reload',
        )
      }
      return secure(reply, csp).type(type).send(body)
    }
    const hidden = { config: { public: true }, schema: { hide: true } }
    app.get(
      '/console/config.json',
      { ...hidden, schema: { hide: true, response: { 200: ConsoleSignIn } } },
      (_request, reply) => secure(reply, csp).type('application/json; charset=utf-8').send(signIn),
    )
    app.get('/console', hidden, (_request, reply) => send('index.html', reply))
    app.get('/console/', hidden, (_request, reply) => send('index.html', reply))
    app.get<{ Params: { file: string } }>('/console/:file', hidden, (request, reply) =>
      send(request.params.file, reply),
    )
  }
