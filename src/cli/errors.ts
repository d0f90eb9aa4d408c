/** The command line is wrong: exit code 2, with a message that says what to type instead. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** A command failed for a reason the user can act on: exit code 1, the message on one line. */
export class CliError extends Error {
  override readonly name = 'CliError'
}
