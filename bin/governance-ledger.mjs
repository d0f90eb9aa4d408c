#!/usr/bin/env node
// The command line from a checkout: the TypeScript sources run through tsx (a runtime dependency), no build
// needed. `npm start` and the image run the compiled service (npm run build) instead.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
