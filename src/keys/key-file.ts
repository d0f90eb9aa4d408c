import { createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'

/** A key the service cannot use as it is given: it says which setting or file, and why. */
export class KeyError extends Error {
  override readonly name = 'KeyError'
}

const codeOf = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? String(error)

/** Who besides the service's user may read or replace a file of this mode, or null when nobody may. */
const exposure = (mode: number): string | null => {
  if (mode & 0o004) return 'readable by others'
  if (mode & 0o002) return 'writable by others'
  if (mode & 0o020) return 'writable by its group'
  return null
}

/**
 * Reads a private key file a setting names: it may live outside DATA_DIR, where its owner keeps it, so its
 * mode is checked, never changed. Refused when other users may read it or replace it (group read is allowed,
 * for a secret mounted for a group the service belongs to).
 */
export const readKeyFile = (path: string, setting: string): string => {
  let mode: number
  try {
    const stat = statSync(path)
    if (!stat.isFile()) throw new KeyError(`${setting}: ${path} is not a file`)
    mode = stat.mode & 0o777
  } catch (error) {
    if (error instanceof KeyError) throw error
    throw new KeyError(`${setting}: ${path} cannot be read (${codeOf(error)})`)
  }
  const exposed = exposure(mode)
  if (exposed)
    throw new KeyError(
      `${setting}: ${path} is ${exposed} (mode ${mode.toString(8).padStart(3, '0')}); a private key is for the service's user alone: chmod 600 it (640 to share it with a group)`,
    )
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new KeyError(`${setting}: ${path} cannot be read (${codeOf(error)})`)
  }
}

/** An Ed25519 private key from PEM text (PKCS #8, as `openssl genpkey -algorithm ed25519` writes it). */
export const ed25519PrivateKey = (pem: string, what: string): KeyObject => {
  let key: KeyObject
  try {
    key = createPrivateKey(pem)
  } catch {
    throw new KeyError(`${what}: not a PEM private key`)
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new KeyError(
      `${what}: an ${key.asymmetricKeyType} key; the service signs with Ed25519 (openssl genpkey -algorithm ed25519)`,
    )
  return key
}
