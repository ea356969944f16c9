import {projectConfigSchema} from '../config/project-schema.js'
import {settingKeys} from '../config/schema-keys.js'
import type {ConfigListResult} from './user-config.js'
import {renderTable} from '../text-table.js'

/** The settings of .shien.json and the user config, for `shien config` help, from the schema. */
export function settingsHelp(): string {
  const keys = settingKeys(projectConfigSchema)
  return ['Settings (docs/config.md):', ...keys.map((k) => `  ${k.key}: ${k.description}`)].join('\n')
}

/** `shien config list` on a terminal: key, value, where from. */
export function formatConfigList(result: ConfigListResult): string {
  const rows = result.settings.map((s) => [s.key, s.value === undefined ? '-' : String(s.value), s.source ?? '(not set)'])
  const files = [`project file: ${result.projectFile ?? '(none found from here up)'}`, `user config:  ${result.userFile}`]
  return [renderTable(['KEY', 'VALUE', 'FROM'], rows), '', ...files].join('\n')
}
