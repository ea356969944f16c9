import {Flags} from '@oclif/core'

import type {NewHostKey} from '../transport/connect.js'
import type {AskPassphrase} from '../transport/ssh-auth.js'
import {askOnTerminal} from './terminal-owner.js'

/** `-J/--jump`, where a command takes `--host`: ProxyJump hops as `ssh -J` takes them. */
export const jumpFlag = Flags.string({
  char: 'J',
  description: 'Reach the blade through these jump hosts, like ssh -J: [USER@]HOST[:PORT][,...], or none (overrides ProxyJump).',
})

/**
 * How an unknown host key gets accepted: by the flag, or by the user on a terminal after
 * seeing its fingerprint. Without either it is refused (never accepted silently).
 */
export function hostKeyConfirmer(opts: {acceptNew: boolean; interactive: boolean}) {
  return async (key: NewHostKey): Promise<boolean> => {
    if (opts.acceptNew) return true
    if (!opts.interactive) return false
    return askOnTerminal(async () => {
      const certificate = key.certificate === undefined ? '' : `A @cert-authority line names it, but ${key.certificate}.\n`
      process.stderr.write(`The authenticity of host ${key.host} can't be established.\n${certificate}${key.type} key fingerprint is ${key.fingerprint}.\n`)
      // Loaded only when a prompt is due: most runs never ask, and the library is slow to load.
      const {confirm} = await import('@inquirer/prompts')
      return confirm({message: 'Trust this host key and add it to known_hosts?', default: false}, {output: process.stderr})
    })
  }
}

/**
 * How a laptop command reaches the blade, the same way everywhere: an unknown host key is
 * accepted by the flag or confirmed on a terminal (stdin and stderr both terminals), keys
 * come from ssh-agent when SSH_AUTH_SOCK is set, and a key file's passphrase is asked on a terminal.
 */
export function bladeAccess(acceptNewHostKey: boolean): {confirmHostKey: (key: NewHostKey) => Promise<boolean>; agentSocket?: string; askPassphrase?: AskPassphrase} {
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY)
  return {
    confirmHostKey: hostKeyConfirmer({acceptNew: acceptNewHostKey, interactive}),
    agentSocket: process.env.SSH_AUTH_SOCK,
    askPassphrase: interactive ? askPassphrase : undefined,
  }
}

/** Asks a key file's passphrase on the terminal, echoing nothing (not even a mask). */
async function askPassphrase(file: string, attempt: number): Promise<string> {
  return askOnTerminal(async () => {
    const {password} = await import('@inquirer/prompts')
    const again = attempt > 1 ? 'Wrong passphrase. ' : ''
    return password({message: `${again}Enter passphrase for key '${file}':`}, {output: process.stderr})
  })
}
