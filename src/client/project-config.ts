import {statSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join, resolve} from 'node:path'

import {checkConfig, readConfigJson} from '../config/config-file.js'
import {projectConfigSchema, type ProjectConfig} from '../config/project-schema.js'

export type {ProjectConfig} from '../config/project-schema.js'

export const PROJECT_FILE = '.shien.json'

/** `$XDG_CONFIG_HOME/shien/config.json`, defaults for every project (usually just `host`). */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(base, 'shien', 'config.json')
}

/**
 * The project's `.shien.json`, found as Vagrant finds its Vagrantfile: in `dir`, else in each
 * parent up to the filesystem root; the first one found is the project's. Undefined when none.
 */
export function findProjectFile(dir: string): string | undefined {
  let current = resolve(dir)
  for (;;) {
    const candidate = join(current, PROJECT_FILE)
    if (statSync(candidate, {throwIfNoEntry: false})?.isFile()) return candidate
    const parent = dirname(current)
    if (parent === current) return undefined
    current = parent
  }
}

/** One config file, checked against the schema; `{}` when it does not exist. */
export function readProjectConfigFile(path: string): ProjectConfig {
  const fix = [`Fix or remove ${path} (docs/config.md lists every key; shien init writes a fresh .shien.json, shien config set edits the user config).`]
  const value = readConfigJson(path, fix)
  return value === undefined ? {} : checkConfig(projectConfigSchema, value, path, fix)
}

/** Which file each effective setting came from. */
export type ConfigSources = Partial<Record<keyof ProjectConfig, string>>

export interface LoadedProjectConfig extends ProjectConfig {
  /** The `.shien.json` used (found in the folder or a parent), if any. */
  projectFile?: string
  /** The project's folder: where `.shien.json` is, else the folder the command ran in. */
  projectDir: string
  /** The user's config file (it may not exist). */
  userFile: string
  sources: ConfigSources
}

/** The project's settings over the user's: what flags do not say comes from here. */
export function loadProjectConfig(dir: string, env: NodeJS.ProcessEnv = process.env): LoadedProjectConfig {
  const userFile = userConfigPath(env)
  const projectFile = findProjectFile(dir)
  const user = readProjectConfigFile(userFile)
  const project = projectFile ? readProjectConfigFile(projectFile) : {}
  const sources: ConfigSources = {}
  for (const key of Object.keys(user) as (keyof ProjectConfig)[]) sources[key] = userFile
  for (const key of Object.keys(project) as (keyof ProjectConfig)[]) sources[key] = projectFile
  const projectDir = projectFile ? dirname(projectFile) : resolve(dir)
  // A box named in a file is relative to that file's folder (the project's, or the cwd for the user's).
  const box = project.box ? resolve(projectDir, project.box) : user.box ? resolve(dir, user.box) : undefined
  return {...user, ...project, ...(box ? {box} : {}), projectFile, projectDir, userFile, sources}
}
