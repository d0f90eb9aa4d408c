import type { Config } from '../../config.js'
import { serve } from '../../server.js'
import type { ErrorStream } from '../outcome.js'

/** `serve`: runs until SIGTERM or SIGINT, then drains requests and saves checkpoints; resolves the exit code. */
export const serveUntilStopped = async (config: Config, stderr: ErrorStream): Promise<0 | 1> => {
  const server = await serve(config)
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      stderr.write(`${signal}: draining requests and saving checkpoints\n`)
      server.close().then(
        () => resolve(0),
        (error: unknown) => {
          stderr.write(`shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`)
          resolve(1)
        },
      )
    }
    const onTerm = () => stop('SIGTERM')
    const onInt = () => stop('SIGINT')
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
  })
}
