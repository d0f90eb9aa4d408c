import type { ErrorStream } from './outcome.js'

const REDRAW_MS = 100

/**
 * Progress on stderr: on a terminal one line that updates in place, elsewhere (a log, a pipe) one line
 * per finished step, so that logs stay readable.
 */
export class ProgressLine {
  private lastDraw = 0

  constructor(
    private readonly stream: ErrorStream,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Shows work in progress; only a terminal sees it, at most every 100 ms. */
  update(text: string): void {
    if (!this.stream.isTTY) return
    const now = this.clock()
    if (now - this.lastDraw < REDRAW_MS) return
    this.lastDraw = now
    this.stream.write(`\r\x1b[2K${text}`)
  }

  /** A finished step: replaces the updating line on a terminal, a new line elsewhere. */
  finish(text: string): void {
    this.stream.write(this.stream.isTTY ? `\r\x1b[2K${text}\n` : `${text}\n`)
    this.lastDraw = 0
  }
}

/** Events per second, rounded for people. */
export const rate = (events: number, seconds: number): number =>
  seconds <= 0 ? events : Math.round(events / seconds)
