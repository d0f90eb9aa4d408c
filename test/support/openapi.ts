// The OpenAPI document the service publishes, read as tests walk it: every operation, and a value each schema accepts.

const ZERO_HASH = `sha256:${'0'.repeat(64)}`

export interface JsonSchema {
  type?: string
  enum?: unknown[]
  format?: string
  pattern?: string
  nullable?: boolean
  minimum?: number
  exclusiveMinimum?: boolean | number
  maximum?: number
  minLength?: number
  minItems?: number
  items?: JsonSchema
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: boolean | JsonSchema
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
}

export interface Parameter {
  in: 'path' | 'query' | 'header'
  name: string
  required?: boolean
  schema: JsonSchema
}

export interface Operation {
  method: string
  path: string
  parameters: Parameter[]
  body: JsonSchema | null
}

/** The smallest value the schema accepts (the patterns the API uses are known by name). */
export const example = (schema: JsonSchema): unknown => {
  const options = schema.anyOf ?? schema.oneOf
  if (options) return example(options.find((o) => o.type !== 'null') ?? {})
  if (schema.enum) return schema.enum[0]
  switch (schema.type) {
    case 'string':
      if (schema.format === 'date-time') return new Date().toISOString()
      if (schema.format === 'uuid') return '01890a5d-ac96-774b-bcce-b302099a8057'
      if (schema.pattern?.startsWith('^sha256:')) return ZERO_HASH
      if (schema.pattern === '^[a-z0-9][a-z0-9-]*$') return 'production'
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1))
    case 'integer':
    case 'number': {
      const min = (schema.minimum ?? 1) + (schema.exclusiveMinimum === true ? 1 : 0)
      return Math.min(Math.max(min, 1), schema.maximum ?? Number.MAX_SAFE_INTEGER)
    }
    case 'boolean':
      return true
    case 'array':
      return Array.from({ length: Math.max(1, schema.minItems ?? 1) }, () => example(schema.items ?? {}))
    case 'object':
      return Object.fromEntries(
        (schema.required ?? []).map((k) => [k, example(schema.properties?.[k] ?? { type: 'string' })]),
      )
    default:
      return 'x'
  }
}

/** Every operation of an OpenAPI document (GET /docs/json), with its parameters and JSON body schema. */
export const operationsOf = (doc: unknown): Operation[] => {
  const { paths } = doc as {
    paths: Record<
      string,
      Record<
        string,
        { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema: JsonSchema }> } }
      >
    >
  }
  return Object.entries(paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content['application/json']?.schema ?? null,
    })),
  )
}
