import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { ApiError, RETRY_AFTER_SECONDS } from './errors.js'
import { COMMAND_METHODS } from './rate-limits.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** a POST that appends nothing (a replay, a verification): the overload guard leaves it alone */
    appendsNothing?: boolean
    /**
     * a command that only narrows authority and is how operators stop harm (engaging a kill switch, revoking a
     * token): the overload guard never sheds it, so an overloaded service can still be stopped
     */
    emergencyBrake?: boolean
  }
}

/**
 * The commands being handled now, each with when its handling began (its body whole and valid), oldest first:
 * a Map keeps the order entries were made in, so the oldest is the first, and every operation is O(1).
 */
export class CommandsInProgress {
  private readonly began = new Map<object, number>()

  constructor(private readonly now: () => number = () => performance.now()) {}

  begin(command: object): void {
    if (!this.began.has(command)) this.began.set(command, this.now())
  }

  /** the command was answered; once is enough, more is harmless */
  end(command: object): void {
    this.began.delete(command)
  }

  /** How long the oldest command still in progress has been handled, in ms; 0 when none is. */
  oldestMs(): number {
    for (const began of this.began.values()) return this.now() - began
    return 0
  }
}

export interface OverloadOptions {
  /** a command in progress for longer than this means the ledger is backed up: new commands are refused */
  readonly maxCommandWaitMs: number
  /** called for each command refused, to count it */
  readonly shed: () => void
}

export const overloadOf = (config: Config): Pick<OverloadOptions, 'maxCommandWaitMs'> => ({
  maxCommandWaitMs: config.OVERLOAD_MAX_COMMAND_WAIT_MS,
})

/** The routes the guard watches: those that append (POST, PUT, PATCH, DELETE), reads by POST excepted. */
const appends = (request: FastifyRequest): boolean =>
  COMMAND_METHODS.has(request.method) && request.routeOptions.config?.appendsNothing !== true

/** A command the guard may refuse: one that appends and is not an emergency brake. */
const sheddable = (request: FastifyRequest): boolean =>
  appends(request) && request.routeOptions.config?.emergencyBrake !== true

/**
 * Sheds commands while the service is overloaded, so that a command waits a bounded time or is refused at
 * once, instead of queueing for seconds behind the ones already admitted.
 *
 * Overloaded means: a command still in progress began its handling more than `maxCommandWaitMs` ago. A
 * command's handling is reading its stream, deciding, and its append waiting for its group commit; it takes
 * milliseconds, so one that has taken longer than the limit says the ledger is backed up, and a new command
 * would wait behind it at least as long. It is measured where every ledger's delay shows, at the HTTP edge:
 * a slow PostgreSQL (round trips, locks) and a busy event loop (SQLite commits on it) both age the commands
 * in progress, where the event-loop delay misses the first, and a count of commands in flight says nothing
 * of how long they take (COMMANDS_IN_FLIGHT_TOTAL bounds the memory they hold, not the wait). The clock
 * starts once the body is whole and valid, so a client sending its body slowly ages nothing but its own
 * request; it stops when the answer is ready, whether the client is still there or not, as the work goes on.
 *
 * What happens before a request reaches the process (a connection waiting to be accepted) is not seen here:
 * that is for the proxy in front, which bounds connections.
 *
 * The check is one subtraction in an onRequest hook, once the token is verified and before the body is read:
 * a refused command costs no parsing, spends no budget and appends nothing, and is answered 503 `unavailable`
 * with Retry-After. Reads are never refused here (they hold no place in the ledger's queue, and the verdict
 * an executor waits for must stay readable), nor are the POST routes that append nothing (`appendsNothing`),
 * whose long replays would otherwise pass for a backed-up ledger. Nor are the emergency brakes (`emergencyBrake`:
 * engaging a kill switch, revoking a token), which narrow authority only: an overloaded service is the one an
 * operator may most need to stop. They still count as commands in progress. /health and /ready are outside /v1.
 */
export const overloadPlugin = fp(
  async (api: FastifyInstance, { maxCommandWaitMs, shed }: OverloadOptions) => {
    const inProgress = new CommandsInProgress()
    api.addHook('onRequest', async (request) => {
      if (!sheddable(request)) return
      const oldestMs = Math.round(inProgress.oldestMs())
      if (oldestMs <= maxCommandWaitMs) return
      shed()
      throw new ApiError(
        'unavailable',
        `the service is overloaded: a command has been in progress for ${oldestMs} ms, beyond the ${maxCommandWaitMs} ms a command may wait; nothing was done: try again in ${RETRY_AFTER_SECONDS} s`,
        { overloaded: true, oldestCommandMs: oldestMs, maxCommandWaitMs },
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      )
    })
    api.addHook('preHandler', async (request) => {
      if (appends(request)) inProgress.begin(request)
    })
    api.addHook('onSend', async (request) => {
      inProgress.end(request)
    })
    // a response written without onSend (none of the routes does) still ends the command
    api.addHook('onResponse', async (request) => {
      inProgress.end(request)
    })
  },
  { name: 'governance-overload' },
)
