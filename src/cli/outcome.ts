/** Where a command writes what is not its result: progress, warnings. */
export interface ErrorStream {
  write(text: string): unknown
  readonly isTTY?: boolean
}

/** What a command gets from the process: its environment, stderr and the wall clock (for ages). */
export interface Context {
  readonly env: NodeJS.ProcessEnv
  readonly stderr: ErrorStream
  readonly now: () => Date
}

/** A command's result: the document --json prints, the text people read, and the exit code. */
export interface Outcome {
  readonly data: unknown
  readonly text: string
  readonly exitCode: 0 | 1
}

export const done = (data: unknown, text: string): Outcome => ({ data, text, exitCode: 0 })
