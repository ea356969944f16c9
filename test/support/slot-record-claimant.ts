// Another blade claiming a slot, as its own process, for test/unit/privileged/slot-records.test.ts
// (which bundles this file): the same openSlotRecords and claim a blade's ie-virsh would run,
// over a storage root the test chooses. It says `ready` on stdout once loaded, waits for a line
// on stdin (so the test decides when it claims), then prints the claim's result or its error.
import {createInterface} from 'node:readline'

import {openSlotRecords} from '../../src/privileged/slot-records.js'

const [storageRoot, account, slot, blade] = process.argv.slice(2)
const records = await openSlotRecords(storageRoot)
process.stdout.write('ready\n')
const lines = createInterface({input: process.stdin})
for await (const _go of lines) break
lines.close()
try {
  const result = await records.claim(account, slot, blade, {signal: new AbortController().signal})
  process.stdout.write(JSON.stringify(result) + '\n')
} catch (error) {
  const e = error as {code?: string; message: string}
  process.stdout.write(JSON.stringify({error: {code: e.code, message: e.message}}) + '\n')
  process.exitCode = 6
}
