import type { Config } from '../../config.js'
import { serve } from '../../server.js'
import type { ErrorStream } from '../outcome.js'

/**
 * `serve`: runs until SIGTERM or SIGINT, then drains requests and saves checkpoints, and resolves 0; or until
 * the service cannot go on (a ledger consumer keeps failing, derived.db is gone), then stops and resolves 1,
 * for its supervisor to restart it.
 */
export const serveUntilStopped = async (config: Config, stderr: ErrorStream): Promise<0 | 1> => {
  const server = await serve(config)
  return new Promise((resolve) => {
    const stop = (why: string, code: 0 | 1) => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      stderr.write(`${why}: draining requests and saving checkpoints\n`)
      server.close().then(
        () => resolve(code),
        (error: unknown) => {
          stderr.write(`shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`)
          resolve(1)
        },
      )
    }
    const onTerm = () => stop('SIGTERM', 0)
    const onInt = () => stop('SIGINT', 0)
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
    void server.failed.then((reason) => stop(`the service cannot go on (${reason})`, 1))
  })
}
