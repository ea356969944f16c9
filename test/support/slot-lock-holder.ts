// `shien blade lock` as its own process, for test/unit/blade/slot-lock.test.ts (which bundles
// this file): the same hold, stdin watch and events as the command, over a storage root the
// test chooses (the command reads the blade's /etc/shien/config.json). Never installed.
import {abortWhenInputEnds} from '../../src/blade/laptop-gone.js'
import {holdSlotLock} from '../../src/blade/slot-lock.js'
import {DEFAULT_BLADE_CONFIG} from '../../src/config/blade-config.js'
import {userPaths} from '../../src/config/storage-layout.js'
import {emitBladeEvent} from '../../src/protocol/blade-events.js'

const [storageRoot, account, slot, host] = process.argv.slice(2)
const ctx = {account, config: {...DEFAULT_BLADE_CONFIG, storageRoot}, paths: userPaths(storageRoot, account)}
const abort = new AbortController()
abortWhenInputEnds(process.stdin, abort)
try {
  const result = await holdSlotLock(ctx, slot, {host, from: '192.0.2.7', signal: abort.signal, onHeld: (holder) => emitBladeEvent({type: 'locked', holder})})
  process.stdout.write(JSON.stringify(result) + '\n')
} catch (error) {
  const e = error as {toJSON?: () => unknown; exitCode?: number; message: string}
  process.stdout.write(JSON.stringify({error: e.toJSON?.() ?? {message: e.message}}) + '\n')
  process.exitCode = e.exitCode ?? 1
}
