import { spawn } from 'node:child_process'
import { type KeyObject, sign } from 'node:crypto'
import { type Config, checkpointOrigin } from '../config.js'
import { dataPaths } from '../data-folder.js'
import { loadOrCreateSigningKey } from '../decision/signer.js'
import { ed25519PrivateKey, KeyError, readKeyFile } from '../keys/key-file.js'
import { type NoteSigner, parseSignerKey, parseVerifierKey, verifierKeyOf } from './note.js'

/** Signing failed: the signing command timed out, failed or answered no signature. No checkpoint is written. */
export class SigningError extends Error {
  override readonly name = 'SigningError'
}

/** A signer holding its key in this process. */
export const localNoteSigner = (name: string, privateKey: KeyObject): NoteSigner => ({
  name,
  verifierKey: verifierKeyOf(name, privateKey),
  sign: async (message) => new Uint8Array(sign(null, message, privateKey)),
})

/** The most a signing command may write on stdout: a signature is 88 characters of base64. */
const MAX_OUTPUT_BYTES = 4096
/** 64 bytes in standard base64, with its padding */
const SIGNATURE_BASE64 = /^[A-Za-z0-9+/]{85}[AQgw]==$/

/** The last line a failing command wrote on stderr, shortened: enough to tell why. */
const lastLine = (text: string): string => text.trim().split('\n').at(-1)?.slice(0, 300) ?? ''

/**
 * Runs the signing command without a shell: the message on its stdin, and on its stdout the Ed25519
 * signature in base64 (whitespace ignored); anything else, an exit code but 0 or no answer within the
 * timeout is a SigningError.
 */
const runSigningCommand = (
  [program = '', ...args]: readonly string[],
  message: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> =>
  new Promise((resolve, reject) => {
    const what = `CHECKPOINT_SIGN_COMMAND (${program})`
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let outBytes = 0
    let err = ''
    let settled = false
    const finish = (problem: string | null, signature?: Uint8Array) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (problem === null && signature) return resolve(signature)
      child.kill('SIGKILL')
      reject(new SigningError(`${what} ${problem}`))
    }
    const timer = setTimeout(
      () => finish(`did not answer within ${timeoutMs / 1000} s (CHECKPOINT_SIGN_TIMEOUT_SECONDS)`),
      timeoutMs,
    )
    child.on('error', (error: NodeJS.ErrnoException) =>
      finish(`could not be run: ${error.code ?? error.message}`),
    )
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length
      if (outBytes > MAX_OUTPUT_BYTES) finish(`wrote more than ${MAX_OUTPUT_BYTES} bytes on stdout`)
      else out.push(chunk)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err = (err + chunk).slice(-2000)
    })
    // a command that exits without reading its input: its exit status tells why
    child.stdin.on('error', () => {})
    child.stdin.end(message)
    child.on('close', (code, signal) => {
      if (code !== 0) {
        const why = lastLine(err)
        return finish(`failed (${signal ?? `exit code ${code}`})${why ? `: ${why}` : ''}`)
      }
      const text = Buffer.concat(out).toString('utf8').replace(/\s+/g, '')
      if (!SIGNATURE_BASE64.test(text))
        return finish('wrote no Ed25519 signature on stdout: 64 bytes in base64 are expected')
      finish(null, new Uint8Array(Buffer.from(text, 'base64')))
    })
  })

/** The checkpoint key from CHECKPOINT_KEY_FILE: PEM Ed25519, or a note private key named as the origin. */
const keyFromFile = (path: string, origin: string): KeyObject => {
  const text = readKeyFile(path, 'CHECKPOINT_KEY_FILE')
  if (!text.startsWith('PRIVATE+KEY+')) return ed25519PrivateKey(text, 'CHECKPOINT_KEY_FILE')
  let key: ReturnType<typeof parseSignerKey>
  try {
    key = parseSignerKey(text.trim())
  } catch (error) {
    throw new KeyError(`CHECKPOINT_KEY_FILE: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (key.name !== origin)
    throw new KeyError(
      `CHECKPOINT_KEY_FILE: the key is named ${key.name}, but checkpoints are signed in the name of their origin, ${origin} (CHECKPOINT_ORIGIN)`,
    )
  return key.privateKey
}

/**
 * The signer of the service's checkpoints, in the name of their origin: a signing command whose public key is
 * CHECKPOINT_VERIFIER_KEY (the service never sees the private key: a KMS or an HSM holds it), or the key in
 * CHECKPOINT_KEY_FILE, or else the key in DATA_DIR/keys, created on first start.
 */
export const checkpointSigner = (config: Config): NoteSigner => {
  const origin = checkpointOrigin(config)
  if (config.CHECKPOINT_SIGN_COMMAND !== undefined) {
    const verifierKey = String(config.CHECKPOINT_VERIFIER_KEY)
    const command = config.CHECKPOINT_SIGN_COMMAND
    const timeoutMs = config.CHECKPOINT_SIGN_TIMEOUT_SECONDS * 1000
    return {
      name: parseVerifierKey(verifierKey).name,
      verifierKey,
      sign: (message) => runSigningCommand(command, message, timeoutMs),
    }
  }
  const key =
    config.CHECKPOINT_KEY_FILE === undefined
      ? loadOrCreateSigningKey(dataPaths(config).checkpointKey).key
      : keyFromFile(config.CHECKPOINT_KEY_FILE, origin)
  return localNoteSigner(origin, key)
}
