import {createHash} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {buildBox} from '../../../src/box/build/build.js'
import {requirementsError} from '../../../src/box/build/recipe.js'
import {parseRecipeLine, type BuildEvent} from '../../../src/box/build/run-recipe.js'
import {ShienError} from '../../../src/errors.js'
import {makeBox, tempDir} from '../../support/make-box.js'

let dir: string
let cleanup: () => Promise<void>
let sample: string
beforeAll(async () => {
  ;({dir, cleanup} = await tempDir())
  sample = await makeBox(dir, 'sample.box')
})
afterAll(() => cleanup())

let count = 0
/**
 * A recipe that follows the build.sh contract with a real process: `--check` prints `check`,
 * a build prints steps on stderr and runs `body` with the output path in $out.
 */
function recipe(body: string, check = ''): {dir: string; out: string} {
  const root = join(dir, `r${++count}`)
  mkdirSync(join(root, 'my-box'), {recursive: true})
  const script = join(root, 'my-box', 'build.sh')
  writeFileSync(script, `#!/usr/bin/env bash
set -euo pipefail
if [[ $1 == --check ]]; then
  printf '%s' "${check}"
  [[ -z "${check}" ]]
  exit
fi
out=$1
echo "args: $*" >&2
printf '[%4ds] %s\\n' 0 "first step" >&2
${body}
`)
  chmodSync(script, 0o755)
  return {dir: join(root, 'my-box'), out: join(root, 'out.box')}
}

async function refusal(promise: Promise<unknown>): Promise<ShienError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(ShienError)
  return error as ShienError
}

describe('recipe output', () => {
  it('tells step lines from other output', () => {
    expect(parseRecipeLine('[  12s] debootstrap --variant=minbase bookworm')).toEqual({type: 'step', seconds: 12, message: 'debootstrap --variant=minbase bookworm'})
    expect(parseRecipeLine('[1234s] done')).toEqual({type: 'step', seconds: 1234, message: 'done'})
    expect(parseRecipeLine('build.sh: debootstrap failed (exit 1)')).toEqual({type: 'output', line: 'build.sh: debootstrap failed (exit 1)'})
  })

  it('turns --check lines into one error naming everything missing', () => {
    const r = {dir: '/r/debian-12', name: 'debian-12', script: '/r/debian-12/build.sh'}
    expect(requirementsError(r, [])).toBeUndefined()
    const both = requirementsError(r, ['needs-root', 'missing-package debootstrap', 'missing-package libguestfs-tools'])
    expect(both?.code).toBe('BUILD_REQUIREMENTS')
    expect(both?.message).toBe('Cannot build debian-12 here: it needs root (debootstrap and chroot do); these Debian packages are missing: debootstrap libguestfs-tools.')
    expect(both?.suggestions[0]).toBe('sudo apt-get install debootstrap libguestfs-tools')
    expect(requirementsError(r, ['needs-root'])?.code).toBe('BUILD_NEEDS_ROOT')
  })
})

describe('buildBox', () => {
  it('runs the recipe, reports its steps, and puts the checked box at --output', async () => {
    const r = recipe(`printf '[%4ds] %s\\n' 3 "packing" >&2\ncp ${sample} "$out"`)
    const events: BuildEvent[] = []
    const result = await buildBox({recipe: r.dir, output: r.out, gzip: true, debCache: '/var/cache/debs', cwd: dir}, {onEvent: (e) => events.push(e)})
    expect(result.steps).toEqual([{seconds: 0, message: 'first step'}, {seconds: 3, message: 'packing'}])
    expect(events).toContainEqual({type: 'output', line: expect.stringMatching(/^args: .*\.out\.box\.building-\d+ --gzip --deb-cache \/var\/cache\/debs$/)})
    expect(result).toMatchObject({output: r.out, provider: 'virtualbox', firmware: 'bios', compression: 'none', disks: [{entry: 'box-disk001.vmdk', capacityBytes: 1048576}]})
    expect(result.sha256).toBe(createHash('sha256').update(readFileSync(sample)).digest('hex'))
    expect(readdirSync(join(r.out, '..'))).toEqual(['my-box', 'out.box'])
  })

  it('reports the architecture and firmware the box declares (an arm64 box for VirtualBox 7.1)', async () => {
    const ovf = readFileSync(join(import.meta.dirname, '../../fixtures/vbox71/box-arm64.ovf'), 'utf8')
    const arm64 = await makeBox(dir, 'arm64.box', {ovf, metadata: {provider: 'virtualbox', architecture: 'arm64'}})
    const r = recipe(`cp ${arm64} "$out"`)
    const result = await buildBox({recipe: r.dir, output: r.out, cwd: dir})
    expect(result).toMatchObject({provider: 'virtualbox', architecture: 'arm64', firmware: 'efi'})
  })

  it('refuses to replace an existing box unless --force', async () => {
    const r = recipe(`cp ${sample} "$out"`)
    writeFileSync(r.out, 'previous')
    expect((await refusal(buildBox({recipe: r.dir, output: r.out, cwd: dir}))).code).toBe('BUILD_OUTPUT_EXISTS')
    expect(readFileSync(r.out, 'utf8')).toBe('previous')
    await buildBox({recipe: r.dir, output: r.out, force: true, cwd: dir})
    expect(readFileSync(r.out)).toEqual(readFileSync(sample))
  })

  it('reports a failed step with the recipe\'s last lines and leaves nothing', async () => {
    const r = recipe(`echo "partial" > "$out"\necho "build.sh: debootstrap failed (exit 1); last lines of its output:" >&2\necho "E: Couldn't download packages" >&2\nexit 1`)
    const error = await refusal(buildBox({recipe: r.dir, output: r.out, cwd: dir}))
    expect(error.code).toBe('BUILD_FAILED')
    expect(error.message).toContain('after "first step"')
    expect(error.message).toContain("E: Couldn't download packages")
    expect(readdirSync(join(r.out, '..'))).toEqual(['my-box'])
  })

  it('refuses what is not a box and does not put it at --output', async () => {
    const r = recipe(`echo "not a tar" > "$out"`)
    const error = await refusal(buildBox({recipe: r.dir, output: r.out, cwd: dir}))
    expect(error.code).toBe('BUILD_BAD_BOX')
    expect(existsSync(r.out)).toBe(false)
    expect(readdirSync(join(r.out, '..'))).toEqual(['my-box'])
  })

  it('reports what the recipe says is missing, before building', async () => {
    const r = recipe(`touch "${dir}/ran-${count}"`, 'needs-root\nmissing-package debootstrap\n')
    const error = await refusal(buildBox({recipe: r.dir, output: r.out, cwd: dir}))
    expect(error.code).toBe('BUILD_REQUIREMENTS')
    expect(error.suggestions).toContain('sudo apt-get install debootstrap')
    expect(existsSync(join(dir, `ran-${count}`))).toBe(false)
  })

  it('says recipes need Linux elsewhere, without running anything', async () => {
    const r = recipe(`cp ${sample} "$out"`, 'missing-package never-asked\n')
    const error = await refusal(buildBox({recipe: r.dir, output: r.out, cwd: dir, platform: 'darwin'}))
    expect(error.code).toBe('BUILD_NEEDS_LINUX')
    expect(error.message).toContain('this is darwin')
    expect(error.suggestions.join('\n')).toContain('sudo apt-get install debootstrap libguestfs-tools')
  })

  it('stops the recipe when cancelled and lets it clean up', async () => {
    const marker = join(dir, 'cleaned')
    // As build.sh does: on TERM, stop the running step, clean up, exit 143.
    const r = recipe(`sleep 30 & step=$!\ntrap 'kill $step; echo cleaned > ${marker}; exit 143' TERM\nprintf '[%4ds] %s\\n' 1 "long step" >&2\nwait $step`)
    const abort = new AbortController()
    const started = Date.now()
    const error = await buildBox({recipe: r.dir, output: r.out, cwd: dir}, {
      signal: abort.signal,
      onEvent: (e) => e.type === 'step' && e.message === 'long step' && abort.abort(new Error('interrupted')),
    }).then(() => undefined, (e: unknown) => e)
    expect(String(error)).toContain('interrupted')
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(readFileSync(marker, 'utf8')).toBe('cleaned\n')
    expect(readdirSync(join(r.out, '..'))).toEqual(['my-box'])
  })

  it('names a folder that is not a recipe', async () => {
    expect((await refusal(buildBox({recipe: join(dir, 'nothing-here'), cwd: dir}))).code).toBe('RECIPE_NOT_FOUND')
  })
})
