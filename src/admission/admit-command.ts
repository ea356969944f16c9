/**
 * `ie-virsh admit --step STEP --slot NN` (dispatched by src/virsh/main.ts): the root helper that
 * holds a place in the blade's push queue for the caller while the caller's heavy step runs
 * (src/blade/admission.ts starts it). Output is JSON lines (AdmissionEvent), then the result or
 * the error object as every ie-virsh --json run.
 */
import type {Readable} from 'node:stream'

import {pushSettings} from '../config/blade-config.js'
import {ShienError} from '../errors.js'
import {parseSlot} from '../names.js'
import {resolveCaller, type AccountLookup} from '../privileged/caller.js'
import {runPrivilegedEntry, type EntryIO} from '../privileged/entry.js'
import {loadTrustedConfig} from '../privileged/trusted-config.js'
import {HEAVY_STEPS, type HeavyStep} from './queue-state.js'
import {holdPlace} from './admit.js'
import {openQueueStore} from './queue-store.js'

export interface AdmitDeps {
  /** /etc/shien/config.json; a parameter for tests only. */
  configPath: string
  env: Readonly<Record<string, string | undefined>>
  realUid: number
  lookupAccount: AccountLookup
  /** The student's end: closing it (EOF) gives the place up. Bytes on it are read and dropped. */
  stdin: Readable
  io?: Partial<EntryIO>
  pollMs?: number
}

/** Exactly `--step STEP --slot NN`, in either order; anything else is refused. */
export function parseAdmitArgs(argv: string[]): {step: HeavyStep; slot: string} {
  const usage = () => new ShienError(`Usage: ie-virsh admit --step ${HEAVY_STEPS.join('|')} --slot NN`, {code: 'USAGE', exit: 'usage'})
  if (argv.length !== 4) throw usage()
  const flags = new Map<string, string>()
  for (let i = 0; i < 4; i += 2) {
    if (!['--step', '--slot'].includes(argv[i]) || flags.has(argv[i])) throw usage()
    flags.set(argv[i], argv[i + 1])
  }
  const step = flags.get('--step') as HeavyStep
  if (!HEAVY_STEPS.includes(step)) throw usage()
  return {step, slot: parseSlot(flags.get('--slot')!)}
}

/** Settles when `stream` ends or fails; what it carries is dropped as it comes, never kept. */
function endOf(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    stream.on('data', () => undefined)
    stream.once('end', () => resolve())
    stream.once('close', () => resolve())
    stream.once('error', () => resolve())
  })
}

export function runAdmitCommand(argv: string[], deps: AdmitDeps): Promise<number> {
  return runPrivilegedEntry('ie-virsh', deps.io ?? {}, true, async (out, signal) => {
    const {step, slot} = parseAdmitArgs(argv)
    const caller = await resolveCaller(deps.env, deps.realUid, deps.lookupAccount, 'ie-virsh')
    const config = loadTrustedConfig(deps.configPath)
    const settings = pushSettings(config)
    const store = await openQueueStore(config.runDir)
    // A hang-up (the SSH session dropped) or a TERM ends the wait like Ctrl-C does.
    const abort = new AbortController()
    const stop = () => abort.abort(new Error('interrupted'))
    signal.addEventListener('abort', stop, {once: true})
    // `on`, not `once`: a second signal while the place is being given up must not end the helper first.
    for (const s of ['SIGHUP', 'SIGTERM'] as const) process.on(s, stop)
    try {
      const result = await holdPlace(
        {uid: caller.uid, step, slot, bound: settings.concurrent, maxHoldMs: settings.maxHoldMinutes * 60_000},
        {store, emit: (e) => out.stdout(JSON.stringify(e) + '\n'), released: endOf(deps.stdin), signal: abort.signal, pollMs: deps.pollMs},
      )
      return {result: {step, slot, ...result}, text: ''}
    } catch (error) {
      if (!abort.signal.aborted) throw error
      throw new ShienError('Stopped while waiting for the blade; the push left the queue.', {code: 'CANCELLED', exit: 'cancelled', cause: error})
    } finally {
      for (const s of ['SIGHUP', 'SIGTERM'] as const) process.off(s, stop)
      // Nothing more is read: an open stdin must not keep the helper running.
      deps.stdin.destroy()
    }
  })
}

