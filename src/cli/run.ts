import { main } from './main.js'

/** The command line, compiled: `node dist/src/cli/run.js <command>` (bin/governance-ledger.mjs runs the sources). */
process.exitCode = await main(process.argv.slice(2))
