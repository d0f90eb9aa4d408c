// The console's bundle: console/main.ts and every module and stylesheet it imports (uPlot's included) in one
// app.js and one app.css, beside console/index.html. Nothing is fetched at run time: it works offline.
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Writes index.html, app.js and app.css into `outdir` (dist/console by default). */
export const buildConsole = async (outdir = join(root, 'dist', 'console')) => {
  mkdirSync(outdir, { recursive: true })
  await build({
    entryPoints: { app: join(root, 'console', 'main.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: false,
    legalComments: 'eof',
    logLevel: 'warning',
  })
  copyFileSync(join(root, 'console', 'index.html'), join(outdir, 'index.html'))
  return outdir
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildConsole(process.argv[2])
