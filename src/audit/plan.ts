/**
 * Everything an audit needs, resolved before the first appliance starts: the blade and audit
 * configuration, the password lists, and which images to read.
 */
import {realpath} from 'node:fs/promises'
import {join} from 'node:path'

import {badInput, ShienError} from '../errors.js'
import {loadBladeConfig, type BladeConfig} from '../config/blade-config.js'
import type {ImagesPlan} from './audit-images.js'
import {loadAuditConfig, weakPasswordList, type AuditConfig} from './config.js'
import {namedImages, storageImages} from './targets.js'

export interface AuditRequest {
  /** Images or folders named on the command line; none means the whole storage root. */
  paths: string[]
  configPath: string
  /** Overrides audit.concurrency. */
  concurrency?: number
}

export interface LoadedConfig {
  blade: BladeConfig
  audit: AuditConfig
  /** The storage root, resolved. */
  root: string
}

export async function loadConfigs(configPath: string, concurrency?: number): Promise<LoadedConfig> {
  const blade = loadBladeConfig(configPath)
  const audit = await loadAuditConfig(configPath)
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw badInput('AUDIT_BAD_CONCURRENCY', '--concurrency must be a whole number of at least 1.')
  }
  const root = await realpath(blade.storageRoot).catch(() => blade.storageRoot)
  return {blade, audit: concurrency ? {...audit, concurrency} : audit, root}
}

export async function planImagesAudit(req: AuditRequest): Promise<ImagesPlan & {root: string}> {
  const {audit, root, blade} = await loadConfigs(req.configPath, req.concurrency)
  let images: string[]
  if (req.paths.length > 0) {
    images = await namedImages(req.paths)
  } else {
    await realpath(join(blade.storageRoot, 'users')).catch(() => {
      throw new ShienError(`The storage root ${blade.storageRoot} has no users/ folder.`, {
        code: 'STORAGE_MISSING', exit: 'remote', suggestions: ['Check that the shared storage is mounted on this blade, or name images to audit.'],
      })
    })
    images = await storageImages(root)
  }
  return {images, boxesDir: join(root, 'boxes'), config: audit, lists: await weakPasswordList(audit), root}
}
