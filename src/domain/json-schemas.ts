import { z } from 'zod'
import { DomainEvent, Envelope } from './events.js'

const BASE = 'urn:governance-ledger:schemas'

/**
 * A field the model gives a default was added after events without it were written: the ledger may hold an
 * event without it, so it is not required, though the service reads it with its default.
 */
const defaultedNotRequired: NonNullable<Parameters<typeof z.toJSONSchema>[1]>['override'] = (ctx) => {
  const { zodSchema, jsonSchema } = ctx
  if (!(zodSchema instanceof z.ZodObject) || !Array.isArray(jsonSchema.required)) return
  const shape = zodSchema.shape as Record<string, z.ZodType>
  jsonSchema.required = jsonSchema.required.filter((key) => !(shape[key] instanceof z.ZodDefault))
}

const document = (id: string, schema: z.ZodType, io: 'input' | 'output' = 'output'): string => {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', override: defaultedNotRequired })
  return `${JSON.stringify({ $id: `${BASE}:${id}`, ...json }, null, 2)}\n`
}

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
