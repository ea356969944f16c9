import {existsSync, statSync} from 'node:fs'
import {mkdir, rename, rm} from 'node:fs/promises'
import {relative} from 'node:path'

import {inspectBox} from '../box/inspect.js'
import {ShienError} from '../errors.js'
import type {StageIO} from '../pipeline/runner.js'
import {runStreaming} from '../process/run.js'
import type {PushStage} from './context.js'
import {keptPaths, removeKept, removeKeptDelta} from './kept-box.js'
import type {PushPlan} from './plan.js'

/**
 * Runs `vagrant package` when no box was named (into `.vagrant/shien/`, where the box stays
 * until the push succeeds, so a re-run after a failure takes it again), then checks the box
 * before any byte leaves.
 */
export const packageStage: PushStage = {
  id: 'package',
  async run(ctx, io) {
    const {plan} = ctx
    const kept = !plan.boxPath && plan.keepDir ? await keptOrPackaged(plan, plan.keepDir, io) : undefined
    const boxPath = kept?.path ?? plan.boxPath
    if (!boxPath) throw new Error('Internal error: a push plan without a box or a folder to package into.')
    let box
    try {
      // The connect stage read it already when it placed the VM on a blade of the cluster.
      box = ctx.inspected?.path === boxPath ? ctx.inspected.box : await inspectBox(boxPath, {signal: io.signal})
    } catch (error) {
      // A kept box that does not read is of no use to the next run either.
      if (kept?.reused && !io.signal.aborted) await removeKept(keptPaths(plan.keepDir!, plan.name))
      throw error
    }
    if (box.privateKeys.length > 0) {
      io.emit({type: 'note', stage: 'package', message: `leaving out ${box.privateKeys.join(', ')} (never sent)`})
    }
    ctx.out.package = {boxPath, box, reused: kept?.reused ?? false}
  },
  async cleanup(ctx, outcome) {
    if (ctx.made.tempDir) await rm(ctx.made.tempDir, {recursive: true, force: true})
    if (outcome === 'ok' && ctx.plan.keepDir && ctx.out.package) await removeKept(keptPaths(ctx.plan.keepDir, ctx.plan.name))
  },
}

/** The box kept from an earlier push that did not finish, or a fresh `vagrant package`. */
async function keptOrPackaged(plan: PushPlan, keepDir: string, io: StageIO): Promise<{path: string; reused: boolean}> {
  const paths = keptPaths(keepDir, plan.name)
  const shown = relative(plan.projectDir, paths.box) || paths.box
  if (existsSync(paths.box) && !plan.repackage) {
    const when = statSync(paths.box).mtime.toLocaleString()
    io.emit({type: 'note', stage: 'package', message: `reusing ${shown}, packaged ${when} for a push that did not finish (--repackage packages the VM again)`})
    return {path: paths.box, reused: true}
  }
  await removeKept(paths)
  await mkdir(keepDir, {recursive: true})
  await vagrantPackage(plan, paths.packaging, io)
  await rename(paths.packaging, paths.box)
  await removeKeptDelta(paths)
  return {path: paths.box, reused: false}
}

/**
 * `vagrant package`, said first: it shuts the VM down (Vagrant halts it to export its disk) and
 * leaves it off. What Vagrant prints is shown as it comes, indented under the stage.
 */
async function vagrantPackage(plan: PushPlan, output: string, io: StageIO): Promise<string> {
  io.emit({type: 'note', stage: 'package', message: 'vagrant package shuts the VM down to export its disk; start it again afterwards with vagrant up'})
  const lines = lineSplitter((line) => io.emit({type: 'note', stage: 'package', message: `  ${line}`}))
  // The student's own environment: Vagrant finds its providers (VirtualBox, VMware) through PATH.
  const result = await runStreaming('vagrant', ['package', '--output', output], {env: 'user', cwd: plan.projectDir, signal: io.signal, killAfterMs: 10_000, output: lines.push})
  lines.flush()
  if (result.exitCode === -1 && /ENOENT/.test(result.tail)) {
    throw new ShienError('vagrant is not installed, so there is no VM to package here.', {
      code: 'NO_VAGRANT',
      exit: 'usage',
      suggestions: ['Install Vagrant, or name an existing box: shien push my.box'],
    })
  }
  // Vagrant can also end well having written nothing ("Domain is not created. Please run `vagrant up` first.").
  if (result.exitCode !== 0 || !existsSync(output)) {
    // Vagrant leaves a part-written box behind when it fails; the next run must not take it.
    await rm(output, {force: true})
    const said = result.tail.trim().split('\n').slice(-2).join(' ')
    throw new ShienError(result.exitCode === 0 ? `vagrant package wrote no box: ${said || 'it said nothing'}` : `vagrant package failed: ${said}`, {
      code: 'VAGRANT_PACKAGE',
      exit: 'failure',
      suggestions: ['Check that the VM exists (vagrant status) and try vagrant package by hand.'],
    })
  }
  return output
}

/** Hands on whole lines of a child's output, without the blank ones and terminal colours. */
function lineSplitter(each: (line: string) => void) {
  let rest = ''
  const emit = (line: string) => {
    // eslint-disable-next-line no-control-regex
    const clean = line.replace(/\x1b\[[0-9;]*m/g, '').trimEnd()
    if (clean.trim() !== '') each(clean)
  }
  return {
    push(text: string) {
      const parts = (rest + text).split(/\r?\n/)
      rest = parts.pop() ?? ''
      for (const part of parts) emit(part)
    },
    flush() {
      if (rest !== '') emit(rest)
      rest = ''
    },
  }
}
