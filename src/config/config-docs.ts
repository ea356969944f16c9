import {bladeConfigSchema} from './blade-schema.js'
import {projectConfigSchema} from './project-schema.js'
import {settingKeys, type SettingKey} from './schema-keys.js'

/**
 * The tables of docs/config.md, made from the schemas: `npm run docs:config` writes them
 * between the markers, and a unit test fails while the file says anything else.
 */
export const CONFIG_DOC_SECTIONS = {
  project: projectConfigSchema,
  blade: bladeConfigSchema,
} as const

export type ConfigDocSection = keyof typeof CONFIG_DOC_SECTIONS

export function renderSettingsTable(keys: readonly SettingKey[]): string {
  const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ')
  const rows = keys.map((k) => `| \`${k.key}\` | ${cell(k.type)} | ${k.default === undefined ? '' : cell(k.default)} | ${cell(k.description)} |`)
  return ['| key | type | default | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

const begin = (section: string) => `<!-- generated from the schema (npm run docs:config): ${section} -->`
const END = '<!-- end of generated table -->'

/** `markdown` with each section's table replaced by the one the schema gives. */
export function updateConfigDocs(markdown: string): string {
  let out = markdown
  for (const [section, schema] of Object.entries(CONFIG_DOC_SECTIONS)) {
    const start = out.indexOf(begin(section))
    const end = out.indexOf(END, start)
    if (start < 0 || end < 0) throw new Error(`docs/config.md has no markers for the ${section} table.`)
    out = `${out.slice(0, start)}${begin(section)}\n${renderSettingsTable(settingKeys(schema))}\n${out.slice(end)}`
  }
  return out
}
