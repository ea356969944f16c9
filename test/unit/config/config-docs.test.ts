import {readFileSync} from 'node:fs'

import {describe, expect, it} from 'vitest'

import {bladeConfigSchema} from '../../../src/config/blade-schema.js'
import {updateConfigDocs} from '../../../src/config/config-docs.js'
import {projectConfigSchema} from '../../../src/config/project-schema.js'
import {settingKeys} from '../../../src/config/schema-keys.js'

const docs = readFileSync(new URL('../../../docs/config.md', import.meta.url), 'utf8')

describe('docs/config.md and the schemas', () => {
  it('has the tables the schemas make (npm run build && npm run docs:config rewrites them)', () => {
    expect(updateConfigDocs(docs)).toBe(docs)
  })

  it('documents every key of every schema, with a meaning', () => {
    for (const schema of [projectConfigSchema, bladeConfigSchema]) {
      for (const key of settingKeys(schema)) {
        expect(docs, key.key).toContain(`| \`${key.key}\` |`)
        expect(key.description, key.key).not.toBe('')
      }
    }
    expect(settingKeys(bladeConfigSchema).map((k) => k.key)).toEqual(expect.arrayContaining(['limits.groups.<name>.vms', 'push.concurrent', 'docker.proxy.domain', 'audit.live.ports', 'cluster.blades[].migrationUri', 'cluster.self']))
  })

  it('notices a table that drifted from the schema', () => {
    const drifted = docs.replace('| `host` | string |', '| `hostname` | string |')
    expect(drifted).not.toBe(docs)
    expect(updateConfigDocs(drifted)).toBe(docs)
  })
})
