// promtool, Prometheus's own checker (Debian's `prometheus` package). Where it is not installed the check is
// skipped with one loud line, except where REQUIRE_SERVICES names promtool (CI): there it fails.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'

const required = (): boolean =>
  (process.env.REQUIRE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('promtool')

/** Whether promtool runs here; a loud line (or, where it is required, an error) when it does not. */
export const promtoolFound = (): boolean => {
  if (!spawnSync('promtool', ['--version']).error) return true
  const reason = 'promtool is not installed (Debian package prometheus): the exposition was not checked by it'
  if (required()) throw new Error(`REQUIRE_SERVICES includes promtool, but ${reason}`)
  console.warn(`\n!!! SKIPPED: ${reason}\n`)
  return false
}

/** `promtool check metrics` on an exposition: no error and no lint problem. */
export const promtoolAccepts = (exposition: string): void => {
  if (!promtoolFound()) return
  const checked = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' })
  assert.equal(checked.status, 0, `promtool check metrics: ${checked.stdout}${checked.stderr}`)
  assert.equal(`${checked.stdout}${checked.stderr}`.trim(), '', 'promtool printed no problem')
}
