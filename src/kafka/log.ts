import { type LogEntry, type logCreator, logLevel } from 'kafkajs'
import type { Level, Logger } from 'pino'

const PINO_LEVELS: Partial<Record<logLevel, Level>> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
}

/** Fields that could hold a secret (SASL and TLS settings, tokens): kafkajs logs none, and none ever gets out. */
const SECRET_FIELD = /pass|secret|token|sasl|credential|authori[sz]ation|private|cert|^ssl$/i

const scrub = (value: unknown, depth = 0): unknown => {
  if (value === null || typeof value !== 'object' || value instanceof Error) return value
  if (depth >= 4) return '[nested]'
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1))
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) ? '[redacted]' : scrub(v, depth + 1)]),
  )
}

/**
 * kafkajs's log lines as the service's own: JSON through the bridge's pino logger (component=kafka), at the
 * matching level, with the kafkajs namespace (Consumer, Connection, ...) in `kafkajs`; its own timestamp and
 * logger name give way to pino's, and a field that could hold a secret is redacted.
 */
export const kafkaLogCreator =
  (log: Logger): logCreator =>
  () =>
  ({ namespace, level, log: entry }: LogEntry) => {
    const pinoLevel = PINO_LEVELS[level]
    if (!pinoLevel) return
    const { message, timestamp: _timestamp, logger: _logger, ...extra } = entry
    log[pinoLevel]({ kafkajs: namespace || 'client', ...(scrub(extra) as object) }, message)
  }
