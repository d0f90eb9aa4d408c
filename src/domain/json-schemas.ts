import { z } from 'zod'
import { DomainEvent, Envelope } from './events.js'

const BASE = 'urn:governance-ledger:schemas'

const document = (id: string, schema: z.ZodType, io: 'input' | 'output' = 'output'): string =>
  `${JSON.stringify({ $id: `${BASE}:${id}`, ...z.toJSONSchema(schema, { io, unrepresentable: 'any' }) }, null, 2)}\n`

/** Every JSON Schema the project publishes, by file name under schemas/: the envelope and one per event type. */
export const jsonSchemaFiles = (): Map<string, string> => {
  const files = new Map<string, string>()
  files.set('envelope.json', document('envelope.json', Envelope))
  for (const option of DomainEvent.options) {
    const type = option.shape.type.value
    files.set(`events/${type}.json`, document(`events/${type}.json`, option))
  }
  return files
}
