import { main } from './cli/main.js'

/** `npm start`: the CLI's serve command, so both start the service the same way. */
process.exitCode = await main(['serve', ...process.argv.slice(2)])
