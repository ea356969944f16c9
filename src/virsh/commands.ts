import type {Invocation} from './cli.js'
import {COMMANDS, helpText} from './cli.js'
import {buildContext, type VirshDeps} from './context.js'
import {defineSlot, describeDefine} from './define.js'
import {describeDestroy, describeStart, describeUndefine, destroySlot, startSlot, undefineSlot} from './lifecycle.js'
import {describeList, listDomains} from './list.js'

/**
 * The protocol number `ie-virsh version` reports. shien push checks it before relying on the
 * blade's commands and their --json shapes; raise it when either changes incompatibly.
 */
export const VIRSH_PROTOCOL = 1

/** A command's outcome: the object for --json and the text for people. */
export interface Outcome {
  result: object
  text: string
}

export async function runInvocation(inv: Invocation, deps: VirshDeps, signal: AbortSignal): Promise<Outcome> {
  if (inv.command === 'help') return {result: {usage: 'ie-virsh <command> [SLOT] [--json]', commands: COMMANDS}, text: helpText()}
  if (inv.command === 'version') {
    const result = {version: deps.pkg.version, protocol: VIRSH_PROTOCOL}
    return {result, text: `ie-virsh ${result.version} (protocol ${result.protocol})`}
  }
  const ctx = await buildContext(deps, signal)
  switch (inv.command) {
    case 'list': {
      const r = await listDomains(ctx)
      return {result: r, text: describeList(r)}
    }
    case 'define': {
      const r = await defineSlot(ctx, inv.slot)
      return {result: r, text: describeDefine(r)}
    }
    case 'start': {
      const r = await startSlot(ctx, inv.slot)
      return {result: r, text: describeStart(r)}
    }
    case 'destroy': {
      const r = await destroySlot(ctx, inv.slot)
      return {result: r, text: describeDestroy(r)}
    }
    case 'undefine': {
      const r = await undefineSlot(ctx, inv.slot, {removeImage: inv.removeImage})
      return {result: r, text: describeUndefine(r)}
    }
  }
}
