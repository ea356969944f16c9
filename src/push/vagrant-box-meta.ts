import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative, resolve} from 'node:path'

/**
 * What Vagrant records about the box a machine was made from: `vagrant up` writes
 * `<data dir>/box_meta` (plugins/commands/up/middleware/store_box_metadata.rb), one line of JSON
 * such as `{"name":"os101/debian12","version":"2026.1.0","provider":"virtualbox","directory":"boxes/..."}`.
 * The data dir is `.vagrant/machines/<machine>/<provider>/` under the project (or under
 * VAGRANT_DOTFILE_PATH when it is set).
 */
export interface VagrantBoxMeta {
  /** Where it was read, relative to the project, for messages. */
  file: string
  machine: string
  name: string
  version: string
  provider: string
}

/** The box_meta files of a project: each read, or why it could not be. */
export type BoxMetaReading = {ok: true; meta: VagrantBoxMeta} | {ok: false; file: string; problem: string}

/** Cap on what is read: Vagrant's file is about 150 bytes. */
const LIMIT = 64 * 1024

/** Vagrant's data folder for a project: `.vagrant`, or VAGRANT_DOTFILE_PATH (relative to the project). */
export function vagrantDotDir(projectDir: string, env: NodeJS.ProcessEnv): string {
  return resolve(projectDir, env.VAGRANT_DOTFILE_PATH || '.vagrant')
}

/** Reads every `machines/<machine>/<provider>/box_meta` of the project, in name order. */
export function readBoxMetas(projectDir: string, env: NodeJS.ProcessEnv): BoxMetaReading[] {
  const machines = join(vagrantDotDir(projectDir, env), 'machines')
  const readings: BoxMetaReading[] = []
  for (const machine of listDirs(machines)) {
    for (const provider of listDirs(join(machines, machine))) {
      const path = join(machines, machine, provider, 'box_meta')
      if (existsSync(path)) readings.push(readBoxMeta(path, machine, relative(projectDir, path)))
    }
  }
  return readings
}

/** Parses one box_meta strictly: a JSON object with string name, version and provider. */
export function readBoxMeta(path: string, machine: string, file = path): BoxMetaReading {
  let value: unknown
  try {
    if (statSync(path).size > LIMIT) return {ok: false, file, problem: `it is larger than ${LIMIT} bytes`}
    value = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    return {ok: false, file, problem: `it is not JSON (${(error as Error).message})`}
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {ok: false, file, problem: 'it is not a JSON object'}
  const {name, version, provider} = value as Record<string, unknown>
  for (const [field, v] of Object.entries({name, version, provider})) {
    if (typeof v !== 'string' || v === '') return {ok: false, file, problem: `its "${field}" is not a string`}
  }
  return {ok: true, meta: {file, machine, name: name as string, version: version as string, provider: provider as string}}
}

function listDirs(dir: string): string[] {
  try {
    return readdirSync(dir, {withFileTypes: true}).filter((e) => e.isDirectory()).map((e) => e.name).sort()
  } catch {
    return []
  }
}
