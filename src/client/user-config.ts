import {editConfigFile, getPath, parseSettingValue, requireSettingKey, setPath, unsetPath} from '../config/config-edit.js'
import {projectConfigSchema, type ProjectConfig} from '../config/project-schema.js'
import {settingKeys} from '../config/schema-keys.js'
import {loadProjectConfig, userConfigPath} from './project-config.js'

/**
 * `shien config`: the user's config file (`$XDG_CONFIG_HOME/shien/config.json`) read and
 * edited through the schema of config/project-schema.ts, and the settings in effect here.
 */

/** One setting in effect: its value and where it came from. */
export interface EffectiveSetting {
  key: string
  value?: unknown
  /** The file that set it, `env SHIEN_HOST`, or undefined when nothing sets it. */
  source?: string
  description: string
}

export interface ConfigListResult {
  /** The user's config file (it may not exist). */
  userFile: string
  /** The `.shien.json` found from the folder up, if any: its settings win over the user's. */
  projectFile?: string
  settings: EffectiveSetting[]
}

export interface ConfigContext {
  cwd: string
  env: NodeJS.ProcessEnv
}

export function configPath(context: ConfigContext): {path: string} {
  return {path: userConfigPath(context.env)}
}

/** Every setting in effect in `cwd`, with the file each came from (SHIEN_HOST wins for host, as for every command). */
export function configList(context: ConfigContext): ConfigListResult {
  const loaded = loadProjectConfig(context.cwd, context.env)
  const settings = settingKeys(projectConfigSchema).map(({key, description}): EffectiveSetting => {
    const name = key as keyof ProjectConfig
    if (name === 'host' && context.env.SHIEN_HOST) return {key, value: context.env.SHIEN_HOST, source: 'env SHIEN_HOST', description}
    return {key, value: loaded[name], source: loaded.sources[name], description}
  })
  return {userFile: loaded.userFile, projectFile: loaded.projectFile, settings}
}

/** One setting in effect here (unset: no value, no source). */
export function configGet(context: ConfigContext, key: string): EffectiveSetting & {userFile: string; projectFile?: string} {
  requireSettingKey(projectConfigSchema, key)
  const list = configList(context)
  const found = list.settings.find((s) => s.key === key)!
  return {...found, userFile: list.userFile, projectFile: list.projectFile}
}

export interface ConfigEditResult {
  key: string
  value?: unknown
  file: string
  /** A file or variable that overrides the user's config for this key here, if any. */
  overriddenBy?: string
}

/** Sets a key in the user's config, checked against the schema before the file is replaced. */
export async function configSet(context: ConfigContext, key: string, raw: string): Promise<ConfigEditResult> {
  const setting = requireSettingKey(projectConfigSchema, key)
  const file = userConfigPath(context.env)
  const value = parseSettingValue(setting, raw)
  await editConfigFile(file, projectConfigSchema, (current) => setPath(current, key, value))
  return {key, value, file, overriddenBy: overriddenBy(context, key, file)}
}

/** Removes a key from the user's config; a key the schema does not know may be removed too (that is how a typo is fixed). */
export async function configUnset(context: ConfigContext, key: string): Promise<ConfigEditResult & {removed: boolean}> {
  const file = userConfigPath(context.env)
  let removed = false
  await editConfigFile(file, projectConfigSchema, (current) => {
    removed = getPath(current, key) !== undefined
    if (!removed) requireSettingKey(projectConfigSchema, key)
    return unsetPath(current, key)
  })
  return {key, file, removed, overriddenBy: overriddenBy(context, key, file)}
}

function overriddenBy(context: ConfigContext, key: string, userFile: string): string | undefined {
  const source = configList(context).settings.find((s) => s.key === key)?.source
  return source && source !== userFile ? source : undefined
}
