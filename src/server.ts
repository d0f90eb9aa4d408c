import { writeFileSync } from 'node:fs'
import pino from 'pino'
import { formatLifetime } from './auth/lifetime.js'
import { issueToken } from './auth/tokens.js'
import { type Config, publicUrl } from './config.js'
import { buildApp, REDACTED_PATHS } from './http/app.js'
import { dataPaths, type Runtime, startRuntime } from './runtime.js'

export interface RunningServer {
  readonly url: string
  /** resolves, with the reason, once the service cannot go on: the caller stops the process non-zero */
  readonly failed: Promise<string>
  close(): Promise<void>
}

/**
 * The one way into a new embedded installation: an admin token, written once to a file only the service's
 * user reads (never to stdout, which ends up in log streams). Resolves what to tell the operator.
 */
const writeBootstrapToken = async (runtime: Runtime): Promise<string> => {
  const { config } = runtime
  const path = dataPaths(config).bootstrapToken
  if (!runtime.tokenKey) return ''
  const token = await issueToken(runtime.tokenKey, config, {
    sub: 'bootstrap-admin',
    roles: ['policy-admin', 'auditor'],
  })
  try {
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    // something was there before the keys: left alone, and this start grants nothing
    return `  No bootstrap admin token: ${path} already exists and was left as it is; issue one with\n  governance-ledger token issue --sub ID --role policy-admin.\n`
  }
  const valid = formatLifetime(config.AUTH_MAX_TOKEN_LIFETIME)
  return `  Bootstrap admin token (policy-admin, auditor; valid ${valid}), readable by this user only:\n  ${path}\n`
}

/**
 * Starts the service: ledger, decision service, projections, scheduler and HTTP API. On the first start
 * of an embedded data folder it writes a bootstrap admin token to the data folder, then prints the URL and
 * where the token is, once.
 */
export const serve = async (config: Config): Promise<RunningServer> => {
  const log = pino({ level: config.LOG_LEVEL, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } })
  let fail: (reason: string) => void = () => {}
  const failed = new Promise<string>((resolve) => {
    fail = resolve
  })
  const runtime = await startRuntime(config, log, { onFatal: (reason) => fail(reason) })
  const app = await buildApp(runtime)
  const bootstrap = runtime.firstStart ? await writeBootstrapToken(runtime) : ''
  const address = await app.listen({ host: config.HOST, port: config.PORT })
  const url = config.PUBLIC_URL ?? address
  log.info({ url, dataDir: config.DATA_DIR, authMode: config.AUTH_MODE }, 'governance-ledger is serving')
  if (runtime.firstStart)
    process.stdout.write(
      `\nFirst start: a new ledger in ${config.DATA_DIR}.\n  URL:  ${publicUrl({ ...config, PUBLIC_URL: url })}\n${bootstrap}\n`,
    )
  let closing: Promise<void> | null = null
  return {
    url,
    failed,
    close: () => {
      closing ??= (async () => {
        await app.close()
        await runtime.close()
      })()
      return closing
    },
  }
}
