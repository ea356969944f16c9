import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {inspectBox} from '../box/inspect.js'
import {ShienError} from '../errors.js'
import {runTool} from '../process/run.js'
import type {PushStage} from './context.js'
import type {PushPlan} from './plan.js'

/** Runs `vagrant package` when no box was named, then checks the box before any byte leaves. */
export const packageStage: PushStage = {
  id: 'package',
  async run(ctx, io) {
    const {plan} = ctx
    let boxPath = plan.boxPath
    if (!boxPath) {
      const dir = (ctx.made.tempDir = await mkdtemp(join(tmpdir(), 'shien-package-')))
      boxPath = await vagrantPackage(plan, join(dir, `${plan.name}.box`), io.signal)
    }
    const box = await inspectBox(boxPath, {signal: io.signal})
    if (box.privateKeys.length > 0) {
      io.emit({type: 'note', stage: 'package', message: `leaving out ${box.privateKeys.join(', ')} (never sent)`})
    }
    const publicKey = plan.publicKeyFile ? (await readFile(plan.publicKeyFile, 'utf8')).trim().split('\n')[0] : undefined
    ctx.out.package = {boxPath, box, publicKey}
  },
  async cleanup(ctx) {
    if (ctx.made.tempDir) await rm(ctx.made.tempDir, {recursive: true, force: true})
  },
}

async function vagrantPackage(plan: PushPlan, output: string, signal: AbortSignal): Promise<string> {
  // The student's own environment: Vagrant finds its providers (VirtualBox, VMware) through PATH.
  const result = await runTool('vagrant', ['package', '--output', output], {env: 'user', cwd: plan.projectDir, signal, killAfterMs: 10_000})
  if (!result.started) {
    throw new ShienError('vagrant is not installed, so there is no VM to package here.', {
      code: 'NO_VAGRANT',
      exit: 'usage',
      suggestions: ['Install Vagrant, or name an existing box: shien push my.box'],
    })
  }
  if (result.exitCode !== 0) {
    throw new ShienError(`vagrant package failed: ${result.stderr.trim().split('\n').slice(-2).join(' ')}`, {
      code: 'VAGRANT_PACKAGE',
      exit: 'failure',
      suggestions: ['Check that the VM exists (vagrant status) and try vagrant package by hand.'],
    })
  }
  return output
}
