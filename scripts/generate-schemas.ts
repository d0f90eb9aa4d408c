// Writes schemas/ from the zod event model; `npm test` fails when the committed files drift from it.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { jsonSchemaFiles } from '../src/domain/json-schemas.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas')
rmSync(join(root, 'events'), { recursive: true, force: true })
for (const [name, text] of jsonSchemaFiles()) {
  mkdirSync(dirname(join(root, name)), { recursive: true })
  writeFileSync(join(root, name), text)
}
console.log(`wrote ${readdirSync(join(root, 'events')).length} event schemas and the envelope to schemas/`)
