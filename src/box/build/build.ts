import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {access, rename, rm, stat} from 'node:fs/promises'
import {basename, dirname, join, resolve} from 'node:path'

import {badInput, isShienError, ShienError} from '../../errors.js'
import type {Compression} from '../box-tar.js'
import {inspectBox} from '../inspect.js'
import {checkBuildHost, resolveRecipe} from './recipe.js'
import {runRecipe, type BuildEvent} from './run-recipe.js'

export interface BuildInput {
  recipe: string
  output?: string
  gzip?: boolean
  debCache?: string
  /** Replace an existing output file. */
  force?: boolean
  /** Only check that this machine can build the recipe. */
  checkOnly?: boolean
  cwd: string
  platform?: NodeJS.Platform
}

export interface BuildResult {
  recipe: string
  /** Absolute path of the box; undefined for a check only. */
  output?: string
  bytes?: number
  sha256?: string
  compression?: Compression
  provider?: string
  /** The architecture the box declares (metadata.json, OVF), when it declares one. */
  architecture?: string
  firmware?: 'bios' | 'efi'
  disks?: Array<{entry: string; capacityBytes: number}>
  seconds: number
  steps: Array<{seconds: number; message: string}>
}

/**
 * Builds a box from a recipe: checks this machine first (everything missing at once), runs
 * the recipe into a hidden name beside the output, checks the box as `shien box inspect`
 * does, and only then renames it to the output.
 */
export async function buildBox(input: BuildInput, opts: {signal?: AbortSignal; onEvent?: (event: BuildEvent) => void} = {}): Promise<BuildResult> {
  const started = performance.now()
  const recipe = await resolveRecipe(input.recipe, input.cwd)
  const output = resolve(input.cwd, input.output ?? `${recipe.name}.box`)
  if (!input.checkOnly) await checkOutput(output, input.force ?? false)
  await checkBuildHost(recipe, {platform: input.platform, signal: opts.signal})
  if (input.checkOnly) return {recipe: recipe.dir, seconds: 0, steps: []}
  const partial = join(dirname(output), `.${basename(output)}.building-${process.pid}`)
  try {
    const steps = await runRecipe(recipe, partial, {gzip: input.gzip, debCache: input.debCache, signal: opts.signal, onEvent: opts.onEvent})
    const info = await inspectBox(partial, {signal: opts.signal}).catch((error: unknown) => {
      throw notABox(recipe.name, error)
    })
    const sha256 = await sha256Of(partial, opts.signal)
    await rename(partial, output)
    return {
      recipe: recipe.dir, output, bytes: info.bytes, sha256, compression: info.compression, provider: info.provider,
      architecture: info.architecture, firmware: info.firmware,
      disks: info.disks.map((d) => ({entry: d.entry, capacityBytes: d.capacityBytes})),
      seconds: Math.round((performance.now() - started) / 1000), steps,
    }
  } finally {
    await rm(partial, {force: true})
  }
}

async function checkOutput(output: string, force: boolean): Promise<void> {
  const dir = dirname(output)
  try {
    await access(dir)
  } catch {
    throw badInput('BUILD_BAD_OUTPUT', `The folder of ${output} does not exist.`)
  }
  if (!force && (await stat(output).catch(() => undefined))) {
    throw new ShienError(`${output} exists already.`, {code: 'BUILD_OUTPUT_EXISTS', exit: 'refused', suggestions: ['Choose another --output, or add --force to replace it.']})
  }
}

function notABox(name: string, error: unknown): ShienError {
  const why = isShienError(error) ? `${error.code}: ${error.message}` : (error as Error).message
  return new ShienError(`The recipe ${name} finished, but what it wrote is not a box shien accepts (${why}).`, {
    code: 'BUILD_BAD_BOX', exit: 'failure', cause: error, suggestions: ['Fix the recipe: it must write box.ovf, a sparse VMDK, metadata.json and Vagrantfile (boxes/README.md).'],
  })
}

async function sha256Of(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, {signal, highWaterMark: 1024 * 1024})) hash.update(chunk as Buffer)
  return hash.digest('hex')
}
