import {projectConfigSchema} from '../config/project-schema.js'
import {settingKeys} from '../config/schema-keys.js'
import type {ConfigListResult} from '../client/user-config.js'

/** The settings of .shien.json and the user config, for `shien config` help, from the schema. */
export function settingsHelp(): string {
  const keys = settingKeys(projectConfigSchema)
  return ['Settings (docs/config.md):', ...keys.map((k) => `  ${k.key}: ${k.description}`)].join('\n')
}

/** `shien config list` on a terminal: key, value, where from. */
export function formatConfigList(result: ConfigListResult): string {
  const rows = result.settings.map((s) => [s.key, s.value === undefined ? '-' : String(s.value), s.source ?? '(not set)'])
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length), i === 0 ? 3 : 5))
  const line = (r: string[]) => `${r[0].padEnd(widths[0])}  ${r[1].padEnd(widths[1])}  ${r[2]}`.trimEnd()
  const files = [`project file: ${result.projectFile ?? '(none found from here up)'}`, `user config:  ${result.userFile}`]
  return [line(['KEY', 'VALUE', 'FROM']), ...rows.map(line), '', ...files].join('\n')
}
