import { readFileSync } from 'node:fs'
import { ConfigError } from '../config.js'
import { jsonText } from '../domain/canonical.js'
import { helpText, type Invocation, parseCommandLine } from './args.js'
import { auditAction, auditAgent } from './commands/audit.js'
import { gateCheckCommand } from './commands/gate.js'
import { rotateKeyCommand } from './commands/keys.js'
import { headCommand, verifyCheckpointCommand, verifyCommand } from './commands/ledger.js'
import { metricsCommand } from './commands/metrics.js'
import { openActionsCommand } from './commands/open-actions.js'
import { check, counterfactual, rebuild } from './commands/replay.js'
import { serveUntilStopped } from './commands/serve.js'
import { survivalCommand } from './commands/survival.js'
import { issueTokenCommand } from './commands/token.js'
import { witnessCommand } from './commands/witness.js'
import { configFor } from './data-folder.js'
import { CliError, UsageError } from './errors.js'
import type { Context, ErrorStream, Outcome } from './outcome.js'

/** What the CLI touches of its process; tests hand in their own. */
export interface Io {
  readonly stdout: { write(text: string): unknown }
  readonly stderr: ErrorStream
  readonly env: NodeJS.ProcessEnv
  readonly now?: () => Date
}

const processIo: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env }

/** The package's version, found from the sources or from a build under dist/. */
const version = (): string => {
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'governance-ledger' && pkg.version) return pkg.version
    } catch {
      // not at this level: try the next
    }
  }
  return 'unknown'
}

type Command = Exclude<Invocation, { command: 'help' | 'version' | 'serve' }>

const run = (invocation: Command, context: Context): Promise<Outcome> => {
  const config = configFor(context.env, invocation.dataDir)
  switch (invocation.command) {
    case 'token issue':
      return issueTokenCommand(config, invocation)
    case 'audit action':
      return auditAction(config, invocation.proposalId, invocation.asOf)
    case 'audit agent':
      return auditAgent(config, invocation.agentId, context, invocation.asOf)
    case 'metrics':
      return metricsCommand(config, invocation, context)
    case 'survival':
      return survivalCommand(config, invocation, context)
    case 'open-actions':
      return openActionsCommand(config, invocation, context)
    case 'replay':
      if (invocation.counterfactual !== null)
        return counterfactual(config, invocation.counterfactual, context)
      return invocation.check ? check(config, context) : rebuild(config, context)
    case 'verify':
      return invocation.checkpoint === undefined
        ? verifyCommand(config)
        : verifyCheckpointCommand(config, invocation.checkpoint, invocation.keys)
    case 'witness':
      return witnessCommand(invocation, context)
    case 'head':
      return headCommand(config)
    case 'keys rotate':
      return rotateKeyCommand(config, invocation)
    case 'gate check':
      return gateCheckCommand(invocation, context)
  }
}

/** One line, whatever the error: a configuration error lists its variables on one line too. */
const oneLine = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  return message.replace(/:?\s*\n\s*/g, (m) => (m.startsWith(':') ? ': ' : '; ')).trim()
}

/** Runs one command line; resolves the exit code: 0 done, 1 failed, 2 wrong command line or configuration. */
export const main = async (argv: readonly string[], io: Io = processIo): Promise<number> => {
  try {
    const invocation = parseCommandLine(argv)
    switch (invocation.command) {
      case 'help':
        io.stdout.write(helpText(invocation.topic))
        return 0
      case 'version':
        io.stdout.write(`${version()}\n`)
        return 0
      case 'serve': {
        const code = await serveUntilStopped(configFor(io.env, invocation.dataDir), io.stderr)
        // stopped and drained: exit even if a client library still holds a socket or a timer
        process.exit(code)
      }
    }
    const context: Context = { env: io.env, stderr: io.stderr, now: io.now ?? (() => new Date()) }
    const outcome = await run(invocation, context)
    io.stdout.write(invocation.json ? `${jsonText(outcome.data, 2)}\n` : `${outcome.text}\n`)
    return outcome.exitCode
  } catch (error) {
    io.stderr.write(`governance-ledger: ${oneLine(error)}\n`)
    if (error instanceof UsageError || error instanceof ConfigError) return 2
    if (!(error instanceof CliError) && io.env.LOG_LEVEL === 'debug' && error instanceof Error)
      io.stderr.write(`${error.stack ?? ''}\n`)
    return 1
  }
}
