import { ConfigError, loadConfig } from './config.js'
import { serve } from './server.js'

/** `npm start`: serve on the embedded ledger, stop cleanly on SIGTERM or SIGINT. */
const main = async (): Promise<void> => {
  const server = await serve(loadConfig())
  const stop = (signal: string) => {
    process.stderr.write(`${signal}: draining requests and saving checkpoints\n`)
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${String(error)}\n`)
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

main().catch((error: unknown) => {
  process.stderr.write(
    `${error instanceof ConfigError ? error.message : `failed to start: ${String(error)}`}\n`,
  )
  process.exit(1)
})
