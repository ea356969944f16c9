import {z} from 'zod'

/** One setting a config schema allows, as `shien config` and docs/config.md show it. */
export interface SettingKey {
  /**
   * Dotted path; `<name>` stands for a key of the admin's choosing (e.g. `limits.groups.<name>.vms`),
   * `[]` for any entry of a list (`cluster.blades[].name`).
   */
  key: string
  /** `string`, `number`, `boolean`, `list of string`, `object`, or the allowed values (`"kvm" | "qemu"`). */
  type: string
  /** The default as JSON, or in words where it depends on the machine; undefined when there is none. */
  default?: string
  description: string
}

interface JsonSchema {
  type?: string | string[]
  enum?: unknown[]
  items?: JsonSchema
  properties?: Record<string, JsonSchema>
  additionalProperties?: JsonSchema | boolean
  anyOf?: JsonSchema[]
  default?: unknown
  computedDefault?: unknown
  description?: string
}

/**
 * Every setting of a schema, leaves first-to-last as the schema lists them; an object with
 * named keys is walked into, a record of free names becomes `<name>`. Read from zod's JSON
 * Schema, so what the checks accept and what the docs say come from the same place.
 */
export function settingKeys(schema: z.ZodType): SettingKey[] {
  const root = z.toJSONSchema(schema, {io: 'input', unrepresentable: 'any'}) as JsonSchema
  const keys: SettingKey[] = []
  walk(root, [], keys, {})
  return keys
}

/** What a leaf takes from the object around it when it says nothing itself (a port pool's `from` and `to`). */
interface Inherited {
  description?: string
  default?: unknown
}

function walk(node: JsonSchema, path: string[], out: SettingKey[], inherited: Inherited): void {
  const target = node.anyOf?.find((n) => n.type !== 'null') ?? node
  const here: Inherited = {description: node.description ?? target.description ?? inherited.description, default: node.default ?? inherited.default}
  if (target.properties && Object.keys(target.properties).length > 0) {
    const defaults = here.default && typeof here.default === 'object' ? (here.default as Record<string, unknown>) : {}
    for (const [name, child] of Object.entries(target.properties)) {
      walk(child, [...path, name], out, {description: here.description, default: defaults[name]})
    }
    return
  }
  if (target.type === 'array' && target.items?.properties) {
    // A list of objects (cluster.blades): each field of an entry is a setting, `[]` standing for any entry.
    walk(target.items, [...path.slice(0, -1), `${path.at(-1)}[]`], out, {description: here.description})
    return
  }
  if (target.type === 'object' && typeof target.additionalProperties === 'object' && target.additionalProperties.properties) {
    walk(target.additionalProperties, [...path, '<name>'], out, {description: here.description})
    return
  }
  const withDefault = node.computedDefault === undefined && node.default === undefined && here.default !== undefined ? {...node, default: here.default} : node
  out.push({key: path.join('.'), type: typeName(target), default: defaultOf(withDefault), description: here.description ?? ''})
}

function typeName(node: JsonSchema): string {
  if (node.enum) return node.enum.map((v) => JSON.stringify(v)).join(' | ')
  if (node.type === 'array') return `list of ${node.items ? typeName(node.items) : 'any'}`
  if (node.type === 'integer') return 'number'
  return Array.isArray(node.type) ? node.type.join(' | ') : node.type ?? 'any'
}

function defaultOf(node: JsonSchema): string | undefined {
  const value = node.computedDefault ?? node.default
  if (value === undefined) return undefined
  return typeof value === 'string' && node.computedDefault !== undefined && node.type !== 'string' ? value : JSON.stringify(value)
}

/**
 * The schema's key matching a dotted path (`<name>` matches any one segment), or undefined. A
 * path to an object of settings (`sshPortPool`) is a setting too, of type `object`, given as JSON.
 */
export function findSettingKey(keys: readonly SettingKey[], dotted: string): SettingKey | undefined {
  const parts = dotted.split('.')
  const matches = (k: SettingKey, exact: boolean) => {
    const want = k.key.split('.')
    if (exact ? want.length !== parts.length : want.length <= parts.length) return false
    return parts.every((p, i) => (want[i] === '<name>' ? p !== '' : want[i] === p))
  }
  const leaf = keys.find((k) => matches(k, true))
  if (leaf) return leaf
  const inside = keys.find((k) => matches(k, false))
  return inside ? {key: dotted, type: 'object', description: inside.description} : undefined
}
