import {mkdirSync} from 'node:fs'
import {dirname} from 'node:path'

import {closest} from 'fastest-levenshtein'
import writeFileAtomic from 'write-file-atomic'
import {z} from 'zod'

import {ShienError} from '../errors.js'
import {checkConfig, readConfigJson} from './config-file.js'
import {findSettingKey, settingKeys, type SettingKey} from './schema-keys.js'

type Json = Record<string, unknown>

/** The schema's setting for a dotted key; an unknown key is a usage error naming the nearest. */
export function requireSettingKey(schema: z.ZodType, key: string): SettingKey {
  const keys = settingKeys(schema)
  const found = findSettingKey(keys, key)
  if (found) return found
  const names = keys.map((k) => k.key)
  throw new ShienError(`"${key}" is not a setting.`, {
    code: 'CONFIG_UNKNOWN_KEY',
    exit: 'usage',
    suggestions: [`Did you mean "${closest(key, names)}"?`, `The settings: ${names.join(', ')} (docs/config.md).`],
  })
}

/**
 * A value typed on the command line, read as the setting's type says: numbers and booleans
 * from their words, lists and objects as JSON; anything else stays a string, for the schema
 * to refuse with the field's name.
 */
export function parseSettingValue(setting: SettingKey, raw: string): unknown {
  if (setting.type === 'number') return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw
  if (setting.type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw
  if (setting.type.startsWith('list') || setting.type === 'object') {
    try {
      return JSON.parse(raw) as unknown
    } catch {
      return raw
    }
  }
  return raw
}

export function getPath(object: Json, key: string): unknown {
  let current: unknown = object
  for (const part of key.split('.')) {
    if (!current || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined
    current = (current as Json)[part]
  }
  return current
}

/** A copy of `object` with `key` set (objects on the way made as needed). */
export function setPath(object: Json, key: string, value: unknown): Json {
  const [head, ...rest] = key.split('.')
  if (rest.length === 0) return {...object, [head]: value}
  const inner = object[head] && typeof object[head] === 'object' && !Array.isArray(object[head]) ? (object[head] as Json) : {}
  return {...object, [head]: setPath(inner, rest.join('.'), value)}
}

/** A copy of `object` without `key`; objects left empty by it go too. */
export function unsetPath(object: Json, key: string): Json {
  const [head, ...rest] = key.split('.')
  if (!Object.hasOwn(object, head)) return object
  const {[head]: inner, ...others} = object
  if (rest.length === 0) return others
  if (!inner || typeof inner !== 'object' || Array.isArray(inner)) return object
  const pruned = unsetPath(inner as Json, rest.join('.'))
  return Object.keys(pruned).length === 0 ? others : {...others, [head]: pruned}
}

/**
 * Reads a config file (`{}` when it is not there), applies `edit`, checks the whole result
 * against the schema and only then replaces the file: a temporary file in the same folder,
 * renamed over it (write-file-atomic), keeping the old file's mode. A refused edit changes nothing.
 */
export async function editConfigFile(file: string, schema: z.ZodType, edit: (current: Json) => Json): Promise<Json> {
  const fix = [`Fix or remove ${file} (docs/config.md lists every key).`]
  const current = readConfigJson(file, fix) ?? {}
  // The current file is not checked first: unsetting a mistyped key is how it gets fixed.
  const next = edit(current as Json)
  if (next === current) return next
  checkConfig(schema, next, file, [`"shien config set --help" shows the settings and their types.`])
  mkdirSync(dirname(file), {recursive: true})
  await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n')
  return next
}
