import { formatLifetime } from '../../auth/lifetime.js'
import type { Config } from '../../config.js'
import { KeyError } from '../../keys/key-file.js'
import type { KeyUse } from '../../keys/key-list.js'
import { rotateKey } from '../../keys/rotation.js'
import { CliError } from '../errors.js'
import { done, type Outcome } from '../outcome.js'

/** What stays verifiable with the old key kept, and where it is published. */
const keptFor = (config: Config, use: KeyUse, tokensRevoked: boolean): string => {
  switch (use) {
    case 'verdict':
      return 'The old public key stays in /.well-known/jwks.json: the verdicts it signed stay verifiable.'
    case 'checkpoint':
      return 'The old verifier key stays in the checkpoint key list (GET /v1/checkpoints/keys): the checkpoints it signed stay verifiable.'
    case 'token':
      return tokensRevoked
        ? 'The tokens the old key signed are refused from the restart on: issue new ones once the service has restarted.'
        : `The tokens the old key signed stay valid until they expire (at most ${formatLifetime(config.AUTH_MAX_TOKEN_LIFETIME)}, AUTH_MAX_TOKEN_LIFETIME); tokens issued now are signed with the new key, which the service takes once restarted.`
  }
}

/** `keys rotate`: a new key for one use; the old public key stays in the key list, retired. */
export const rotateKeyCommand = async (
  config: Config,
  request: { readonly key: KeyUse; readonly revokeTokens: boolean },
): Promise<Outcome> => {
  let rotation: ReturnType<typeof rotateKey>
  try {
    rotation = rotateKey(config, request.key, { tokensRevoked: request.revokeTokens })
  } catch (error) {
    if (error instanceof KeyError) throw new CliError(error.message)
    throw error
  }
  const text = [
    `The ${rotation.key} key is now ${rotation.current} (it was ${rotation.retired}), in ${rotation.path}.`,
    'The running service signs with the old key until it restarts: restart it.',
    keptFor(config, rotation.key, rotation.tokensRevoked),
  ].join('\n')
  return done({ ...rotation, restartNeeded: true }, text)
}
