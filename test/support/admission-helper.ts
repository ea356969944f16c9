// The push queue helper as its own process, for test/integration/push-queue.test.ts (which
// bundles this file): what `sudo ie-virsh admit` runs (without ie-virsh's dispatch, which
// test/support/ie-virsh-entry.ts keeps), with the config path and poll interval a test chooses.
// Never installed.
import {runAdmitCommand} from '../../src/admission/admit-command.js'
import {getentLookup} from '../../src/privileged/caller.js'

const code = await runAdmitCommand(process.argv.slice(2), {
  configPath: process.env.SHIEN_TEST_CONFIG ?? '/nonexistent',
  env: process.env,
  realUid: process.getuid?.() ?? -1,
  lookupAccount: getentLookup,
  stdin: process.stdin,
  pollMs: 100,
})
process.exitCode = code
