// Debian's Chromium (package chromium), driven by playwright-core: no browser is downloaded. Where it is not
// installed the browser checks are skipped with one loud line, except where REQUIRE_SERVICES names chromium
// (CI): there they fail.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium } from 'playwright-core'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const required = (): boolean =>
  (process.env.REQUIRE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('chromium')

/** Whether Chromium is here; a loud line (or, where it is required, an error) when it is not. */
export const chromiumFound = (): boolean => {
  if (existsSync(CHROMIUM)) return true
  const reason = `Chromium is not installed at ${CHROMIUM} (Debian package chromium): the console was not checked in a browser`
  if (required()) throw new Error(`REQUIRE_SERVICES includes chromium, but ${reason}`)
  console.warn(`\n!!! SKIPPED: ${reason}\n`)
  return false
}

/** Headless Chromium; without its sandbox when running as root (a container, CI), which it refuses otherwise. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  })

/** Bundles the console into dist/console, as `npm run build` does, for a service started from source. */
export const buildConsole = (): void => {
  execFileSync(process.execPath, ['scripts/build-console.mjs'], { cwd: ROOT, stdio: 'inherit' })
}
