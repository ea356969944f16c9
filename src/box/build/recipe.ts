import {constants} from 'node:fs'
import {access, stat} from 'node:fs/promises'
import {basename, join, resolve} from 'node:path'

import {badInput, ShienError} from '../../errors.js'
import {runTool} from '../../process/run.js'

/** A recipe folder: `build.sh` plus what it puts into the box (see boxes/README.md). */
export interface Recipe {
  dir: string
  name: string
  script: string
}

/** Finds the recipe's build.sh, or says what is wrong with the folder. */
export async function resolveRecipe(spec: string, cwd: string): Promise<Recipe> {
  const dir = resolve(cwd, spec)
  const script = join(dir, 'build.sh')
  const info = await stat(dir).catch(() => undefined)
  if (!info?.isDirectory()) {
    throw badInput('RECIPE_NOT_FOUND', `${dir} is not a recipe folder.`, ['Name a folder under boxes/, e.g. shien box build boxes/debian-12.'])
  }
  try {
    await access(script, constants.X_OK)
  } catch {
    throw badInput('RECIPE_NOT_FOUND', `${dir} has no executable build.sh, so it is not a recipe.`, ['A recipe is a folder with build.sh OUTPUT.box [--gzip] [--deb-cache DIR] --check (see boxes/README.md).'])
  }
  return {dir, name: basename(dir), script}
}

/**
 * Asks the recipe whether this machine can build it (`build.sh --check`) and turns the
 * answer into one error that lists everything missing. Recipes need Linux: elsewhere this
 * says so without running anything.
 */
export async function checkBuildHost(recipe: Recipe, opts: {platform?: NodeJS.Platform; signal?: AbortSignal} = {}): Promise<void> {
  const platform = opts.platform ?? process.platform
  if (platform !== 'linux') {
    throw new ShienError(`Box recipes build on Linux (with debootstrap and libguestfs); this is ${platform}.`, {
      code: 'BUILD_NEEDS_LINUX', exit: 'refused',
      suggestions: [
        'Build on a Debian machine or VM: sudo apt-get install debootstrap libguestfs-tools linux-image-amd64 qemu-utils extlinux,',
        `then run there: sudo shien box build ${recipe.dir} --output ${recipe.name}.box`,
      ],
    })
  }
  const result = await runTool(recipe.script, ['--check'], {env: 'user', cwd: process.cwd(), signal: opts.signal})
  const lines = result.stdout.split('\n').map((line) => line.trim()).filter(Boolean)
  const error = requirementsError(recipe, lines)
  if (error) throw error
  if (result.exitCode !== 0) {
    throw new ShienError(`${recipe.script} --check failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n').at(-1) ?? ''}`, {code: 'BUILD_CHECK_FAILED', exit: 'failure'})
  }
}

/** The error for what `build.sh --check` printed, or undefined when nothing is missing. */
export function requirementsError(recipe: Recipe, lines: string[]): ShienError | undefined {
  const packages = lines.filter((l) => l.startsWith('missing-package ')).map((l) => l.slice('missing-package '.length))
  const root = lines.includes('needs-root')
  if (lines.includes('needs-linux')) return new ShienError(`${recipe.name} builds on Linux only.`, {code: 'BUILD_NEEDS_LINUX', exit: 'refused'})
  if (!root && packages.length === 0) return undefined
  const problems = [
    ...(root ? ['it needs root (debootstrap and chroot do)'] : []),
    ...(packages.length > 0 ? [`these Debian packages are missing: ${packages.join(' ')}`] : []),
  ]
  const suggestions = [
    ...(packages.length > 0 ? [`sudo apt-get install ${packages.join(' ')}`] : []),
    ...(root ? [`sudo shien box build ${recipe.dir} ...`] : []),
  ]
  const code = root && packages.length > 0 ? 'BUILD_REQUIREMENTS' : root ? 'BUILD_NEEDS_ROOT' : 'BUILD_MISSING_PACKAGES'
  return new ShienError(`Cannot build ${recipe.name} here: ${problems.join('; ')}.`, {code, exit: 'refused', suggestions})
}
