import {mkdtemp, readFile, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {inspectBox} from '../box/inspect.js'
import {ShienError} from '../errors.js'
import {runTool} from '../process/run.js'
import type {PushContext} from './context.js'
import type {Stage} from './runner.js'

/** Runs `vagrant package` when no box was named, then checks the box before any byte leaves. */
export const packageStage: Stage<PushContext> = {
  id: 'package',
  async run(ctx, io) {
    ctx.boxPath = ctx.plan.boxPath ?? (await vagrantPackage(ctx, io.signal))
    ctx.box = await inspectBox(ctx.boxPath, {signal: io.signal})
    if (ctx.box.privateKeys.length > 0) {
      io.emit({type: 'note', stage: 'package', message: `leaving out ${ctx.box.privateKeys.join(', ')} (never sent)`})
    }
    if (ctx.plan.publicKeyFile) ctx.publicKey = (await readFile(ctx.plan.publicKeyFile, 'utf8')).trim().split('\n')[0]
  },
  async cleanup(ctx) {
    if (ctx.tempDir) await rm(ctx.tempDir, {recursive: true, force: true})
  },
}

async function vagrantPackage(ctx: PushContext, signal: AbortSignal): Promise<string> {
  ctx.tempDir = await mkdtemp(join(tmpdir(), 'shien-package-'))
  const output = join(ctx.tempDir, `${ctx.plan.name}.box`)
  // The student's own environment: Vagrant finds its providers (VirtualBox, VMware) through PATH.
  const result = await runTool('vagrant', ['package', '--output', output], {env: 'user', cwd: ctx.plan.projectDir, signal, killAfterMs: 10_000})
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
