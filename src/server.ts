import pino from 'pino'
import { issueToken } from './auth/tokens.js'
import { type Config, publicUrl } from './config.js'
import { buildApp, REDACTED_PATHS } from './http/app.js'
import { startRuntime } from './runtime.js'

export interface RunningServer {
  readonly url: string
  /** resolves, with the reason, once the service cannot go on: the caller stops the process non-zero */
  readonly failed: Promise<string>
  close(): Promise<void>
}

/**
 * Starts the service: ledger, decision service, projections, scheduler and HTTP API. On the first start
 * of an embedded data folder it prints, once, a bootstrap admin token and the URL.
 */
export const serve = async (config: Config): Promise<RunningServer> => {
  const log = pino({ level: config.LOG_LEVEL, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } })
  let fail: (reason: string) => void = () => {}
  const failed = new Promise<string>((resolve) => {
    fail = resolve
  })
  const runtime = await startRuntime(config, log, { onFatal: (reason) => fail(reason) })
  const app = await buildApp(runtime)
  const address = await app.listen({ host: config.HOST, port: config.PORT })
  const url = config.PUBLIC_URL ?? address
  log.info({ url, dataDir: config.DATA_DIR, authMode: config.AUTH_MODE }, 'governance-ledger is serving')
  if (runtime.firstStart && runtime.tokenKey) {
    const token = await issueToken(runtime.tokenKey, config, {
      sub: 'bootstrap-admin',
      roles: ['policy-admin', 'auditor'],
      expiresIn: '7d',
    })
    // printed to stdout once, never logged: the one way into a new embedded installation
    process.stdout.write(
      `\nFirst start: a new ledger in ${config.DATA_DIR}.\n  URL:  ${publicUrl({ ...config, PUBLIC_URL: url })}\n  Bootstrap admin token (policy-admin, auditor; valid 7 days):\n  ${token}\n\n`,
    )
  }
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
