// `shien blade harden` as its own process, for test/unit/blade/laptop-gone.test.ts (which
// bundles this file): the same stdin watch, staged-file cleanup and harden as the command, over
// a storage root the test chooses, without the push queue (its helper runs through sudo).
// Never installed.
import {abortWhenInputEnds} from '../../src/blade/laptop-gone.js'
import {hardenStaged} from '../../src/blade/harden-staged.js'
import {removingStagedOnFailure} from '../../src/blade/slot-files.js'
import {DEFAULT_BLADE_CONFIG} from '../../src/config/blade-config.js'
import {userPaths} from '../../src/config/storage-layout.js'
import {emitBladeEvent} from '../../src/protocol/blade-events.js'

const [storageRoot, account, slot, publicKey, appliance] = process.argv.slice(2)
const push = {applianceMemMiB: 256, ...(appliance ? {appliance} : {})}
const ctx = {account, config: {...DEFAULT_BLADE_CONFIG, storageRoot, domainType: 'qemu' as const, push}, paths: userPaths(storageRoot, account)}
const abort = new AbortController()
abortWhenInputEnds(process.stdin, abort)
emitBladeEvent({type: 'note', message: `pid ${process.pid}`})
try {
  const result = await removingStagedOnFailure(ctx, slot, () => hardenStaged(ctx, slot, publicKey, {}, abort.signal))
  process.stdout.write(JSON.stringify(result) + '\n')
} catch (error) {
  const e = error as {toJSON?: () => unknown; exitCode?: number; message: string}
  process.stdout.write(JSON.stringify({error: e.toJSON?.() ?? {message: e.message}}) + '\n')
  process.exitCode = e.exitCode ?? 1
}
