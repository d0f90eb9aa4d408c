import { z } from 'zod'
import { Lifetime } from './auth/lifetime.js'
import { isKeyName, parseVerifierKey, VerifierKeyText } from './checkpoint/note.js'
import { VERDICT_ISSUER } from './domain/signing.js'

const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')

/**
 * Origins as a browser sends them in its Origin header, comma-separated: scheme://host[:port] exactly, with
 * no path, no default port, lower case; `*` never (every page on the web could then read the answers).
 */
const Origins = z.string().transform((text, ctx) => {
  const origins = text.split(',').map((o) => o.trim())
  for (const origin of origins) {
    const why = notAnOrigin(origin)
    if (why) ctx.addIssue({ code: 'custom', message: why })
  }
  return origins
})

/** Why a text is not an origin, in a sentence that names it (a user name or password it holds excepted). */
const notAnOrigin = (text: string): string | null => {
  const named = JSON.stringify(text)
  if (text === '*') return '* is not accepted: list the origins allowed, e.g. https://dashboard.example.com'
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return `${named} is not an origin: scheme://host[:port], e.g. https://dashboard.example.com`
  }
  if (url.username !== '' || url.password !== '') return 'an origin holds no user name or password'
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return `${named} is not an http:// or https:// origin`
  if (url.origin === text) return null
  return `${named} is not an origin as a browser sends it: scheme://host[:port], no path; write ${url.origin}`
}

/**
 * Why a text is not an OpenID Connect issuer (OpenID Connect Discovery 1.0 section 2): an https:// URL with no
 * query, fragment, user name or password; plain http:// only when `http` allows it (development).
 */
const notAnIssuerUrl = (text: string, http: boolean): string | null => {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return `${JSON.stringify(text)} is not a URL`
  }
  if (url.protocol !== 'https:' && !(http && url.protocol === 'http:'))
    return http
      ? 'an https:// or http:// URL'
      : 'an https:// URL (plain http only with AUTH_MODE=jwks-development)'
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '')
    return 'a URL with no query, fragment, user name or password'
  return null
}

/**
 * A program and its arguments, run without a shell: a JSON array of strings (`["kms-sign", "--key", "a b"]`),
 * or words separated by spaces (`kms-sign --key checkpoints`), taken as they are (no quotes, no variables).
 */
const Command = z.string().transform((text, ctx): string[] => {
  const trimmed = text.trim()
  if (!trimmed.startsWith('[')) return trimmed.split(/\s+/)
  try {
    const parsed = z.array(z.string().min(1)).min(1).safeParse(JSON.parse(trimmed))
    if (parsed.success) return parsed.data
  } catch {
    // reported below
  }
  ctx.addIssue({
    code: 'custom',
    message: 'a JSON array of strings, the program first, or words separated by spaces',
  })
  return z.NEVER
})

/** OAuth scopes (RFC 6749 section 3.3) separated by spaces, openid among them (an OpenID Connect request). */
const Scopes = z
  .string()
  .max(1000)
  .transform((text, ctx): string[] => {
    const scopes = [...new Set(text.trim().split(/\s+/))]
    const bad = scopes.find((s) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))
    if (bad !== undefined)
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(bad)} is not a scope: printable ASCII, no " or \\`,
      })
    else if (!scopes.includes('openid'))
      ctx.addIssue({
        code: 'custom',
        message: 'must include openid: the console signs in with OpenID Connect',
      })
    return scopes
  })

/** A key name: what a checkpoint's origin must be, since it names the key that signs it too. */
const KeyName = z
  .string()
  .max(255)
  .refine(isKeyName, 'a key name: no spaces and no +, such as ledger.example.com/governance-ledger')

/** The name of a well-formed verifier key; null for none or a malformed one (reported on its variable). */
const verifierKeyName = (text: string | undefined): string | null => {
  try {
    return text === undefined ? null : parseVerifierKey(text).name
  } catch {
    return null
  }
}

/** Every setting comes from the environment and is checked here, at start, before anything opens. */
export const ConfigSchema = z
  .object({
    DATA_DIR: z.string().min(1).default('./data'),
    /** where the ledger lives: the embedded SQLite file in DATA_DIR, a PostgreSQL database, or KurrentDB */
    LEDGER: z.enum(['sqlite', 'postgres', 'kurrentdb']).default('sqlite'),
    /** libpq URL of the PostgreSQL ledger, e.g. postgres://user:password@host:5432/database */
    POSTGRES_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
      .optional(),
    POSTGRES_SCHEMA: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier')
      .default('public'),
    /** KurrentDB connection string, e.g. kurrentdb://host:2113?tls=false */
    KURRENTDB_URL: z
      .string()
      .regex(/^(kurrentdb|kdb|esdb)(\+discover)?:\/\//, 'a kurrentdb:// connection string')
      .optional(),
    /** the one KurrentDB stream that holds the ledger's global order */
    KURRENTDB_STREAM: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'letters, digits and . _ - only')
      .default('governance-ledger'),
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** the URL printed at first start and used in links; defaults to http://HOST:PORT */
    PUBLIC_URL: z.url().optional(),
    /** the verdict signing key, a PEM Ed25519 private key; unset: DATA_DIR/keys/verdict-signing.pem */
    VERDICT_KEY_FILE: z.string().min(1).optional(),
    /** the embedded token signing key, a PEM Ed25519 private key; unset: DATA_DIR/keys/token-signing.pem */
    TOKEN_KEY_FILE: z.string().min(1).optional(),
    /** the log's identity in its checkpoints, and the name of the checkpoint key; default from PUBLIC_URL */
    CHECKPOINT_ORIGIN: KeyName.optional(),
    /** the checkpoint signing key, PEM Ed25519 or a note private key; unset: DATA_DIR/keys/checkpoint-signing.pem */
    CHECKPOINT_KEY_FILE: z.string().min(1).optional(),
    /** a program that signs checkpoints with a key the service never sees: the message on stdin, the signature on stdout */
    CHECKPOINT_SIGN_COMMAND: Command.optional(),
    /** the public key CHECKPOINT_SIGN_COMMAND signs with, as a note verifier key */
    CHECKPOINT_VERIFIER_KEY: VerifierKeyText.optional(),
    /** how long CHECKPOINT_SIGN_COMMAND may take to sign */
    CHECKPOINT_SIGN_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(300).default(10),
    AUTH_MODE: z
      .enum(['embedded', 'jwks', 'jwks-development', 'key-file', 'hs256-development'])
      .default('embedded'),
    /** https only; plain http only with AUTH_MODE=jwks-development */
    AUTH_JWKS_URL: z.url().optional(),
    AUTH_PUBLIC_KEY_FILE: z.string().min(1).optional(),
    AUTH_HS256_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    AUTH_ISSUER: z.string().min(1).default('governance-ledger'),
    AUTH_AUDIENCE: z.string().min(1).default('governance-ledger'),
    AUTH_ROLES_CLAIM: z.string().min(1).default('roles'),
    /** the claim listing the roles an approver may approve in, beside the base 'approver' role */
    AUTH_APPROVAL_ROLES_CLAIM: z.string().min(1).default('approval_roles'),
    /** the longest a token may live (exp - iat), in seconds; the service refuses longer ones, the CLI will not issue them */
    AUTH_MAX_TOKEN_LIFETIME: Lifetime.pipe(
      z
        .number()
        .min(60, 'at least 1m')
        .max(30 * 86_400, 'at most 30d'),
    ).default(24 * 3600),
    /** a token without jti could never be revoked: refused unless this is false */
    AUTH_REQUIRE_JTI: flag.default(true),
    /**
     * the console's client id at the identity provider (a public client: no secret); when set, the console signs
     * in there with OpenID Connect (authorization code and PKCE), found at AUTH_ISSUER; jwks modes only
     */
    CONSOLE_OIDC_CLIENT_ID: z
      .string()
      .max(255)
      .regex(/^[\x21-\x7e]+$/, 'printable ASCII, no spaces')
      .optional(),
    /** the scopes the console asks for, separated by spaces; openid among them */
    CONSOLE_OIDC_SCOPES: Scopes.default(['openid']),
    /** how far an observation's observedAt may run ahead of ledger time (observers' clocks drift) */
    OBSERVATION_MAX_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
    BODY_LIMIT_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    WAIT_MAX_SECONDS: z.coerce.number().int().min(1).max(300).default(30),
    /** verdict long-polls (?wait=) one principal may hold open at once, and the service in all */
    WAIT_MAX_PER_PRINCIPAL: z.coerce.number().int().min(1).max(100_000).default(100),
    WAIT_MAX_TOTAL: z.coerce.number().int().min(1).max(100_000).default(1000),
    /** verdict streams (Server-Sent Events) one principal may hold open at once, and the service in all */
    STREAM_MAX_PER_PRINCIPAL: z.coerce.number().int().min(1).max(10_000).default(8),
    STREAM_MAX_TOTAL: z.coerce.number().int().min(1).max(10_000).default(200),
    /** the most a verdict stream writes before it waits for the client to take it (at least one event) */
    STREAM_PAGE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(64 * 1024),
    /** requests per principal in each second, on every /v1 route */
    RATE_LIMIT_REQUESTS_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(50),
    /** commands (POST, PUT, DELETE under /v1: what appends to the ledger) per principal in each minute */
    RATE_LIMIT_COMMANDS_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(300),
    /** commands (bodies arriving or being handled) one principal may have in flight at once; one more is a 429 */
    COMMANDS_IN_FLIGHT_PER_PRINCIPAL: z.coerce.number().int().min(1).max(10_000).default(16),
    /** commands the service has in flight in all; one more is a 503 */
    COMMANDS_IN_FLIGHT_TOTAL: z.coerce.number().int().min(1).max(100_000).default(256),
    /**
     * the longest a command may have been in progress (body received, not yet answered) before new commands are
     * refused with 503 and Retry-After, before any work: the ledger is backed up (see src/http/overload.ts)
     */
    OVERLOAD_MAX_COMMAND_WAIT_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
    /** how long a client may take to send a whole request (headers and body) before it is answered 408 */
    REQUEST_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(600).default(30),
    SCHEDULER_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
    /** a signed checkpoint of the ledger's Merkle tree is cut when the tree grew by this many events... */
    CHECKPOINT_EVERY_EVENTS: z.coerce.number().int().min(1).max(10_000_000).default(1000),
    /** ...or when it grew at all and this many seconds passed since the last one */
    CHECKPOINT_EVERY_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
    /** the append-only folder of signed checkpoints witnesses copy (default: DATA_DIR/checkpoints) */
    CHECKPOINT_DIR: z.string().min(1).optional(),
    /**
     * how long a ledger consumer (decision service, projections) may keep failing, retried with backoff and
     * the gate closed, before the process exits non-zero for its supervisor to restart it
     */
    RECOVERY_MAX_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
    /**
     * whether this instance keeps the read models (projections, shadow decisions, the Merkle tree and its
     * checkpoints); false: it decides, answers commands and verdicts, and answers reads of them 503
     */
    READ_MODELS: flag.default(true),
    /** Prometheus /metrics without a token; off by default */
    METRICS_PUBLIC: flag.default(false),
    /** the browser origins that may call the API (CORS), comma-separated; unset: none */
    CORS_ALLOWED_ORIGINS: Origins.optional(),
    /** host:port[,host:port...]; when set, the relay and the ingress start */
    KAFKA_BROKERS: z
      .string()
      .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, 'host:port, comma-separated')
      .optional(),
    KAFKA_CLIENT_ID: z.string().min(1).default('governance-ledger'),
    /** prepended to every topic name, for clusters shared by several installations */
    KAFKA_TOPIC_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/, 'letters, digits, . _ - only')
      .default(''),
    KAFKA_TOPIC_PARTITIONS: z.coerce.number().int().min(1).max(1000).default(3),
    KAFKA_REPLICATION_FACTOR: z.coerce.number().int().min(1).max(10).default(1),
    /** proposals larger than this on governance.proposals go to the DLQ */
    KAFKA_MAX_MESSAGE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(1024 * 1024),
    /** the `aud` a token on governance.proposals must carry: never AUTH_AUDIENCE, so no HTTP token works there */
    KAFKA_TOKEN_AUDIENCE: z.string().min(1).default('governance-ledger-kafka'),
  })
  .superRefine((c, ctx) => {
    const need = (when: boolean, key: 'AUTH_JWKS_URL' | 'AUTH_PUBLIC_KEY_FILE' | 'AUTH_HS256_SECRET') => {
      if (when && c[key] === undefined)
        ctx.addIssue({ code: 'custom', path: [key], message: `required when AUTH_MODE=${c.AUTH_MODE}` })
    }
    need(c.AUTH_MODE === 'jwks' || c.AUTH_MODE === 'jwks-development', 'AUTH_JWKS_URL')
    if (c.AUTH_JWKS_URL !== undefined) {
      const { protocol } = new URL(c.AUTH_JWKS_URL)
      const allowed = c.AUTH_MODE === 'jwks-development' ? ['https:', 'http:'] : ['https:']
      if (!allowed.includes(protocol))
        ctx.addIssue({
          code: 'custom',
          path: ['AUTH_JWKS_URL'],
          message:
            protocol === 'http:'
              ? 'an https:// URL (plain http only with AUTH_MODE=jwks-development)'
              : `an https:// URL, not ${protocol}`,
        })
    }
    if (c.CONSOLE_OIDC_CLIENT_ID !== undefined) {
      if (c.AUTH_MODE !== 'jwks' && c.AUTH_MODE !== 'jwks-development')
        ctx.addIssue({
          code: 'custom',
          path: ['CONSOLE_OIDC_CLIENT_ID'],
          message: `only with AUTH_MODE=jwks or jwks-development: with ${c.AUTH_MODE} no identity provider issues the tokens`,
        })
      else {
        const why = notAnIssuerUrl(c.AUTH_ISSUER, c.AUTH_MODE === 'jwks-development')
        if (why)
          ctx.addIssue({
            code: 'custom',
            path: ['AUTH_ISSUER'],
            message: `${why}: with CONSOLE_OIDC_CLIENT_ID the console finds the identity provider at AUTH_ISSUER/.well-known/openid-configuration`,
          })
      }
    }
    need(c.AUTH_MODE === 'key-file', 'AUTH_PUBLIC_KEY_FILE')
    need(c.AUTH_MODE === 'hs256-development', 'AUTH_HS256_SECRET')
    if (c.AUTH_ISSUER === VERDICT_ISSUER) {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_ISSUER'],
        message: `must not be ${VERDICT_ISSUER}, the issuer of verdicts: a token must never pass for a verdict`,
      })
    }
    if (c.KAFKA_TOKEN_AUDIENCE === c.AUTH_AUDIENCE) {
      ctx.addIssue({
        code: 'custom',
        path: ['KAFKA_TOKEN_AUDIENCE'],
        message: 'must differ from AUTH_AUDIENCE: a token parked in a topic must not work on HTTP',
      })
    }
    if (c.AUTH_MODE !== 'embedded' && c.TOKEN_KEY_FILE !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['TOKEN_KEY_FILE'],
        message: `only with AUTH_MODE=embedded: with ${c.AUTH_MODE} the service signs no token`,
      })
    const files = (['VERDICT_KEY_FILE', 'TOKEN_KEY_FILE', 'CHECKPOINT_KEY_FILE'] as const).filter(
      (k) => c[k] !== undefined,
    )
    for (const [i, key] of files.entries()) {
      const same = files.slice(0, i).find((other) => c[other] === c[key])
      if (same)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `the same file as ${same}: each key signs one thing only`,
        })
    }
    if (c.CHECKPOINT_SIGN_COMMAND !== undefined && c.CHECKPOINT_KEY_FILE !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['CHECKPOINT_SIGN_COMMAND'],
        message: 'set CHECKPOINT_SIGN_COMMAND or CHECKPOINT_KEY_FILE, not both',
      })
    if ((c.CHECKPOINT_SIGN_COMMAND === undefined) !== (c.CHECKPOINT_VERIFIER_KEY === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [
          c.CHECKPOINT_SIGN_COMMAND === undefined ? 'CHECKPOINT_VERIFIER_KEY' : 'CHECKPOINT_SIGN_COMMAND',
        ],
        message:
          'CHECKPOINT_SIGN_COMMAND and CHECKPOINT_VERIFIER_KEY go together: the command signs, the key says with what',
      })
    const origin = checkpointOrigin(c)
    if (c.CHECKPOINT_ORIGIN === undefined && !isKeyName(origin))
      ctx.addIssue({
        code: 'custom',
        path: ['CHECKPOINT_ORIGIN'],
        message: `PUBLIC_URL gives no key name (${origin}): set CHECKPOINT_ORIGIN`,
      })
    const name = verifierKeyName(c.CHECKPOINT_VERIFIER_KEY)
    if (name !== null) {
      if (name !== origin)
        ctx.addIssue({
          code: 'custom',
          path: ['CHECKPOINT_VERIFIER_KEY'],
          message: `the key is named ${name}, but checkpoints are signed in the name of their origin, ${origin}`,
        })
    }
    if (c.LEDGER === 'postgres' && c.POSTGRES_URL === undefined) {
      ctx.addIssue({ code: 'custom', path: ['POSTGRES_URL'], message: 'required when LEDGER=postgres' })
    }
    if (c.LEDGER === 'kurrentdb' && c.KURRENTDB_URL === undefined) {
      ctx.addIssue({ code: 'custom', path: ['KURRENTDB_URL'], message: 'required when LEDGER=kurrentdb' })
    }
  })

export type Config = z.infer<typeof ConfigSchema>

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** Reads the configuration; a bad value throws a ConfigError that names each variable and what is wrong. */
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): Config => {
  const known = Object.fromEntries(
    Object.keys(ConfigSchema.shape ?? {}).flatMap((k) =>
      env[k] === undefined || env[k] === '' ? [] : [[k, env[k]]],
    ),
  )
  const parsed = ConfigSchema.safeParse(known)
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`)
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
}

export const publicUrl = (c: Config): string => c.PUBLIC_URL ?? `http://${c.HOST}:${c.PORT}`

/**
 * The origin of the service's checkpoints, and the name of the key that signs them: CHECKPOINT_ORIGIN, else
 * PUBLIC_URL's host followed by /governance-ledger, else governance-ledger.
 */
export const checkpointOrigin = (c: Pick<Config, 'CHECKPOINT_ORIGIN' | 'PUBLIC_URL'>): string =>
  c.CHECKPOINT_ORIGIN ??
  (c.PUBLIC_URL === undefined ? 'governance-ledger' : `${new URL(c.PUBLIC_URL).host}/governance-ledger`)
