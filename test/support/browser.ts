// Debian's Chromium (package chromium), driven by playwright-core: no browser is downloaded. Where it is not
// installed the browser checks are skipped with one loud line, except where REQUIRE_SERVICES names chromium
// (CI): there they fail.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium } from 'playwright-core'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..')
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const required = (): boolean =>
  (process.env.REQUIRE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('chromium')

const missingReason = (): string | null =>
  existsSync(CHROMIUM)
    ? null
    : `Chromium is not installed at ${CHROMIUM} (Debian package chromium): the console was not checked in a browser`

/** Whether Chromium is here; one loud line when it is not and not required (then chromiumFor skips). */
export const chromiumFound = (): boolean => {
  const reason = missingReason()
  if (reason === null) return true
  if (!required()) console.warn(`\n!!! SKIPPED: ${reason}\n`)
  return false
}

/**
 * For a test that needs Chromium: true when it is here; where it is not, the test fails if REQUIRE_SERVICES
 * names chromium (CI), and is skipped otherwise (false).
 */
export const chromiumFor = (t: TestContext): boolean => {
  const reason = missingReason()
  if (reason === null) return true
  if (required()) throw new Error(`REQUIRE_SERVICES includes chromium, but ${reason}`)
  t.skip(`!!! SKIPPED: ${reason}`)
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
