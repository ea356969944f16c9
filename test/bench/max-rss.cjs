// Preloaded (node -r) into a process the delta bench measures: at exit, its peak RSS in KiB is
// appended to the file named by SHIEN_BENCH_RSS_FILE.
const {appendFileSync} = require('node:fs')
const file = process.env.SHIEN_BENCH_RSS_FILE
if (file) process.on('exit', () => appendFileSync(file, `${process.resourceUsage().maxRSS}\n`))
