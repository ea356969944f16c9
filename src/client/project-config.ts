import {existsSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {badInput} from '../errors.js'

/** `.shien.json` in a Vagrant project (written by `shien init`), or the user's config file. */
export interface ProjectConfig {
  host?: string
  slot?: string
  /** The box's name in incoming/ on the blade. */
  name?: string
  /** A .box to push instead of running `vagrant package` (relative to the project). */
  box?: string
  /** The course base box a push is a delta against, `ORG/NAME@VERSION` (else Vagrant's record). */
  base?: string
  bladeCommand?: string
}

export const PROJECT_FILE = '.shien.json'

/** `$XDG_CONFIG_HOME/shien/config.json`, defaults for every project (usually just `host`). */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(base, 'shien', 'config.json')
}

function readJson(path: string): ProjectConfig {
  if (!existsSync(path)) return {}
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as unknown
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as ProjectConfig
  } catch {
    // fall through to the error below
  }
  throw badInput('CONFIG_INVALID', `${path} is not a JSON object.`, [`Fix or remove ${path} (shien init writes a fresh one).`])
}

/** The project's settings over the user's: what flags do not say comes from here. */
export function loadProjectConfig(dir: string, env: NodeJS.ProcessEnv = process.env): ProjectConfig & {projectFile?: string} {
  const projectFile = join(dir, PROJECT_FILE)
  return {...readJson(userConfigPath(env)), ...readJson(projectFile), projectFile: existsSync(projectFile) ? projectFile : undefined}
}
