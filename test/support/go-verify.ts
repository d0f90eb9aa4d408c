// The Go verifier (go-verify/main.go): the service's Merkle proofs and signed notes checked by Go's
// golang.org/x/mod/sumdb (Debian's golang-go and golang-golang-x-mod-dev), an implementation independent of the
// service's. Built once per test file into a temporary folder, offline. Where Go is not installed the check is
// skipped with one loud line, except where REQUIRE_SERVICES names go (CI): there it fails.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const SOURCE = fileURLToPath(new URL('go-verify', import.meta.url))
/** where Debian's golang-golang-x-mod-dev puts golang.org/x/mod */
const GOPATH = '/usr/share/gocode'

const required = (): boolean =>
  (process.env.REQUIRE_SERVICES ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes('go')

/** What go-verify printed: ok, and what the subcommand adds (the note's text and signers), or why not. */
export interface GoVerdict {
  readonly ok: boolean
  readonly error?: string
  readonly text?: string
  readonly signers?: string[]
  readonly leafHash?: string
}

export interface GoVerifier {
  /** one subcommand with its request as JSON on stdin; throws when go-verify cannot read the request */
  run(subcommand: 'inclusion' | 'consistency' | 'note', request: unknown): GoVerdict
  /** removes the build */
  remove(): void
}

const skip = (reason: string): null => {
  if (required()) throw new Error(`REQUIRE_SERVICES includes go, but ${reason}`)
  console.warn(`\n!!! SKIPPED: ${reason}: the proofs were not checked by an independent implementation\n`)
  return null
}

/** Builds go-verify; null (after a loud line) where Go or golang.org/x/mod is not installed. */
export const buildGoVerifier = (): GoVerifier | null => {
  if (spawnSync('go', ['version']).error) return skip('Go is not installed (Debian package golang-go)')
  if (!existsSync(join(GOPATH, 'src', 'golang.org', 'x', 'mod', 'sumdb')))
    return skip('golang.org/x/mod is not installed (Debian package golang-golang-x-mod-dev)')
  const folder = mkdtempSync(join(tmpdir(), 'go-verify-'))
  const binary = join(folder, 'go-verify')
  const built = spawnSync('go', ['build', '-o', binary, '.'], {
    cwd: SOURCE,
    encoding: 'utf8',
    // GOPATH mode, offline: the module proxy is never asked
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(folder, 'cache'), GOFLAGS: '' },
  })
  if (built.status !== 0) {
    rmSync(folder, { recursive: true, force: true })
    throw new Error(`go build of go-verify failed:\n${built.stdout}${built.stderr}`)
  }
  return {
    run: (subcommand, request) => {
      const ran = spawnSync(binary, [subcommand], { input: JSON.stringify(request), encoding: 'utf8' })
      if (ran.status !== 0 && ran.status !== 1)
        throw new Error(`go-verify ${subcommand} exited ${ran.status}: ${ran.stderr}`)
      const verdict = JSON.parse(ran.stdout) as GoVerdict
      if (verdict.ok !== (ran.status === 0)) throw new Error(`go-verify ${subcommand}: ${ran.stdout}`)
      return verdict
    },
    remove: () => rmSync(folder, { recursive: true, force: true }),
  }
}
