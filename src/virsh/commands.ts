import type {Invocation} from './cli.js'
import {COMMANDS, helpText} from './cli.js'
import {buildContext, type VirshContext, type VirshDeps} from './context.js'
import {debugSlot, describeDebug} from './debug.js'
import {defineSlot, describeDefine} from './define.js'
import {consoleSlot, describeTemplates, dumpXmlSlot, listTemplates} from './inspect.js'
import {describeDestroy, describeShutdown, describeStart, describeUndefine, destroySlot, shutdownSlot, startSlot, undefineSlot} from './lifecycle.js'
import {describeList, listDomains} from './list.js'
import {bladeFacts, describeFacts} from './facts.js'

/**
 * The protocol number `ie-virsh version` reports, for admins and scripts that check which
 * commands and --json shapes a blade has; raise it when either changes incompatibly.
 */
export const VIRSH_PROTOCOL = 2

/** A command's outcome: the object for --json and the text for people ('' prints nothing). */
export interface Outcome {
  result: object
  text: string
  /** The exit code when it is not 0 (console passes virsh's on). */
  exitCode?: number
}

type ContextInvocation = Exclude<Invocation, {command: 'version' | 'help' | 'facts'}>

export async function runInvocation(inv: Invocation, deps: VirshDeps, signal: AbortSignal): Promise<Outcome> {
  if (inv.command === 'help' || inv.command === 'version') return aboutSelf(inv.command, deps)
  // About the blade, not an account: no standing in the directory is needed.
  if (inv.command === 'facts') {
    const result = await bladeFacts(deps, signal)
    return {result, text: describeFacts(result)}
  }
  const ctx = await buildContext(deps, signal, inv.account)
  return dispatch(inv, ctx)
}

/** help and version need neither a caller nor libvirt. */
function aboutSelf(command: 'help' | 'version', deps: VirshDeps): Outcome {
  if (command === 'help') return {result: {usage: 'ie-virsh <command> [SLOT] [--json]', commands: COMMANDS}, text: helpText()}
  const result = {version: deps.pkg.version, protocol: VIRSH_PROTOCOL}
  return {result, text: `ie-virsh ${result.version} (protocol ${result.protocol})`}
}

async function dispatch(inv: ContextInvocation, ctx: VirshContext): Promise<Outcome> {
  const out = <T extends object>(result: T, describe: (r: T) => string): Outcome => ({result, text: describe(result)})
  switch (inv.command) {
    case 'list':
      return out(await listDomains(ctx), describeList)
    case 'templates':
      return out(await listTemplates(ctx), describeTemplates)
    case 'define':
      return out(await defineSlot(ctx, inv.slot, {template: inv.template}), describeDefine)
    case 'start':
      return out(await startSlot(ctx, inv.slot), describeStart)
    case 'shutdown':
      return out(await shutdownSlot(ctx, inv.slot, {timeoutSeconds: inv.timeoutSeconds}), describeShutdown)
    case 'destroy':
      return out(await destroySlot(ctx, inv.slot), describeDestroy)
    case 'undefine':
      return out(await undefineSlot(ctx, inv.slot, {removeImage: inv.removeImage}), describeUndefine)
    case 'dumpxml':
      return out(await dumpXmlSlot(ctx, inv.slot), (r) => r.xml.trimEnd())
    case 'debug':
      return out(await debugSlot(ctx, inv.slot, {stop: inv.stop}), describeDebug)
    case 'console': {
      const r = await consoleSlot(ctx, inv.slot)
      return {result: r, text: '', exitCode: r.exitCode === 0 ? undefined : r.exitCode}
    }
  }
}
