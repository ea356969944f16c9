// ie-virsh as its own process for tests that bundle this file (test/integration/blade-admission
// .test.ts): bin/ie-virsh.js's main, with the configuration a test chooses instead of
// /etc/shien/config.json (required, so a test never touches the machine's own). Never installed.
import {main} from '../../src/virsh/main.js'

const configPath = process.env.SHIEN_TEST_CONFIG
if (!configPath) throw new Error('SHIEN_TEST_CONFIG must name the test\'s blade configuration.')
process.exitCode = await main(process.argv.slice(2), {configPath})
