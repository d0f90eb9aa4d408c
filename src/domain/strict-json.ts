// JSON as the edge accepts it (an HTTP body, a Kafka message): only text whose value canonical JSON can write
// back exactly, in the one meaning every reader gives it.
import { jsonPath } from './canonical.js'
import { EDGE_JSON_MAX_DEPTH } from './limits.js'

/** Why a text is refused. */
export type StrictJsonReason =
  | 'syntax'
  | 'too-deep'
  | 'duplicate-key'
  | 'forbidden-key'
  | 'lone-surrogate'
  | 'non-finite-number'
  | 'unsafe-integer'
  | 'inexact-number'

/** A text refused, with the reason, where in the value it stands (`$.plan.steps.0`) and the limit it passed. */
export class StrictJsonError extends SyntaxError {
  override readonly name = 'StrictJsonError'
  constructor(
    readonly reason: StrictJsonReason,
    message: string,
    readonly path: string | null = null,
    readonly limit: number | null = null,
  ) {
    super(path === null || path === '$' ? message : `${message} (at ${path})`)
  }
}

export interface StrictJsonLimits {
  /** levels of nesting, the value itself being the first */
  readonly maxDepth: number
}

/** An object or array the scan is inside. */
interface Frame {
  /** the keys met so far; null for an array */
  readonly keys: Set<string> | null
  /** the last key met, or the index of the current item */
  at: string | number
  /** for an object: the next string is a key */
  expectKey: boolean
  /** the key this container is the value of, in its parent object */
  readonly under: string | number | null
}

const pathOf = (stack: readonly Frame[]): string =>
  jsonPath(stack.filter((frame) => frame.keys === null || frame.at !== '').map((frame) => frame.at))

const HIGH = (u: number) => u >= 0xd800 && u <= 0xdbff
const LOW = (u: number) => u >= 0xdc00 && u <= 0xdfff

/** A run of code units with nothing to check: no quote, no backslash, no surrogate. */
const PLAIN_RUN = /[^"\\\ud800-\udfff]*/y

/** Checks a string token whose opening quote is at `start`; returns the index of its closing quote. */
const scanString = (
  text: string,
  start: number,
  stack: readonly Frame[],
): { end: number; escaped: boolean } => {
  let escaped = false
  let high = false
  for (let i = start + 1; ; i += 1) {
    if (!high) {
      PLAIN_RUN.lastIndex = i
      PLAIN_RUN.test(text)
      i = PLAIN_RUN.lastIndex
    }
    let unit = text.charCodeAt(i)
    if (unit === 0x22) {
      if (high) break
      return { end: i, escaped }
    }
    if (unit === 0x5c) {
      escaped = true
      i += 1
      if (text.charCodeAt(i) !== 0x75) {
        if (high) break
        continue
      }
      unit = Number.parseInt(text.slice(i + 1, i + 5), 16)
      i += 4
    }
    if (high) {
      if (!LOW(unit)) break
      high = false
    } else if (HIGH(unit)) high = true
    else if (LOW(unit)) break
  }
  throw new StrictJsonError(
    'lone-surrogate',
    'a string holds a lone surrogate, which is not Unicode text',
    pathOf(stack),
  )
}

/** Digits, signs, the point and the exponent: what a number token is made of. */
const isNumberChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45

/** Checks a number token at `start`; returns the index after it. */
const scanNumber = (text: string, start: number, stack: readonly Frame[]): number => {
  let end = start
  while (end < text.length && isNumberChar(text.charCodeAt(end))) end += 1
  const literal = text.slice(start, end)
  const value = Number(literal)
  if (!Number.isFinite(value)) {
    throw new StrictJsonError(
      'non-finite-number',
      `the number ${literal.slice(0, 40)} is beyond what a double holds`,
      pathOf(stack),
    )
  }
  if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
    throw new StrictJsonError(
      'unsafe-integer',
      `the number ${literal.slice(0, 40)} is beyond ±(2^53-1), where numbers stop being exact: send it as a string`,
      pathOf(stack),
    )
  }
  // canonical JSON writes the double's shortest form: a literal saying more (or less) than that would share a
  // hash with another, so it must be that form, up to its notation
  if (!sameDecimal(decimalOf(literal), decimalOf(String(value)))) {
    throw new StrictJsonError(
      'inexact-number',
      `the number ${literal.slice(0, 40)} has no exact double: it would be read as ${Object.is(value, -0) ? '-0, written 0' : String(value)}; send it as a string`,
      pathOf(stack),
    )
  }
  return end
}

/** A decimal number as sign, significant digits and exponent: 0.DIGITS × 10^exponent; zero has no digits. */
interface Decimal {
  readonly negative: boolean
  readonly digits: string
  readonly exponent: number
}

const NUMBER_LITERAL = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/

/** The value a number literal (JSON's, or JavaScript's shortest form, e.g. `1e+21`) writes, as a Decimal. */
const decimalOf = (literal: string): Decimal => {
  const match = NUMBER_LITERAL.exec(literal)
  if (!match) return { negative: false, digits: literal, exponent: Number.NaN }
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match
  const all = whole + fraction
  const leading = all.length - all.replace(/^0+/, '').length
  const digits = all.slice(leading).replace(/0+$/, '')
  return {
    negative: sign === '-',
    digits,
    exponent: digits === '' ? 0 : Number(exponent) + whole.length - leading,
  }
}

const sameDecimal = (a: Decimal, b: Decimal): boolean =>
  a.negative === b.negative && a.digits === b.digits && a.exponent === b.exponent

/**
 * Parses JSON text, refusing what has no single exact meaning: duplicate keys, lone surrogates (escaped or
 * raw), numbers beyond a double or beyond ±(2^53-1), `__proto__` and `constructor.prototype` keys, and nesting
 * deeper than `maxDepth`. The checks scan the text once without recursion; the value is JSON.parse's.
 * Throws a StrictJsonError with the reason and where.
 */
export const parseJsonStrictly = (
  text: string,
  limits: StrictJsonLimits = { maxDepth: EDGE_JSON_MAX_DEPTH },
): unknown => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    const message = text.trim() === '' ? 'the body is empty' : (error as Error).message
    throw new StrictJsonError('syntax', `not JSON: ${message}`)
  }
  // the text is valid JSON from here on: the scan only needs to tell its tokens apart
  const stack: Frame[] = []
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i)
    switch (c) {
      case 0x7b: // {
      case 0x5b: {
        // [
        const parent = stack.at(-1)
        if (stack.length >= limits.maxDepth) {
          throw new StrictJsonError(
            'too-deep',
            `deeper than ${limits.maxDepth} levels`,
            pathOf(stack),
            limits.maxDepth,
          )
        }
        stack.push({
          keys: c === 0x7b ? new Set() : null,
          at: c === 0x7b ? '' : 0,
          expectKey: c === 0x7b,
          under: parent === undefined ? null : parent.at,
        })
        break
      }
      case 0x7d: // }
      case 0x5d: // ]
        stack.pop()
        break
      case 0x2c: {
        // ,
        const top = stack.at(-1)
        if (top?.keys === null) top.at = (top.at as number) + 1
        else if (top) top.expectKey = true
        break
      }
      case 0x3a: {
        // :
        const top = stack.at(-1)
        if (top) top.expectKey = false
        break
      }
      case 0x22: {
        // "
        const top = stack.at(-1)
        const { end, escaped } = scanString(text, i, stack)
        if (top?.keys && top.expectKey) {
          const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end)
          top.at = key
          if (top.keys.has(key)) {
            throw new StrictJsonError(
              'duplicate-key',
              `the key ${JSON.stringify(key.slice(0, 100))} appears twice in one object`,
              pathOf(stack),
            )
          }
          top.keys.add(key)
          if (key === '__proto__' || (key === 'prototype' && top.under === 'constructor')) {
            throw new StrictJsonError('forbidden-key', `the key ${key} is not accepted`, pathOf(stack))
          }
        }
        i = end
        break
      }
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) i = scanNumber(text, i, stack) - 1
    }
  }
  return value
}
