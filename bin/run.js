#!/usr/bin/env node
import {execute} from '@oclif/core'

import {quietUpdateNotice} from '../dist/src/ui/update-notice.js'

quietUpdateNotice(process.argv.slice(2))
await execute({dir: import.meta.url})
