// Rewrites the settings tables of docs/config.md from the config schemas (after npm run build).
import {readFileSync, writeFileSync} from 'node:fs'

import {updateConfigDocs} from '../dist/src/config/config-docs.js'

const file = new URL('../docs/config.md', import.meta.url)
writeFileSync(file, updateConfigDocs(readFileSync(file, 'utf8')))
