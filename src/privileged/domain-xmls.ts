import {unlink} from 'node:fs/promises'

import {ShienError} from '../errors.js'
import {clusterPaths} from '../config/storage-layout.js'
import {ensureRootDir, writeRootFile} from './root-dir.js'
import {openExact} from './safe-open.js'

/**
 * Each defined domain's XML, as ie-virsh defined it, kept on the shared storage beside the slot
 * records (`<root>/cluster/domains/<account>-<slot>.xml`): when a blade dies its libvirtd cannot
 * be asked, and an admin's `recover` defines its VMs elsewhere from these. The folder is root's
 * alone (0700, the XML names the owner's uid and files), checked like the records' (no symlink in
 * its path, no one else may write it); files are written whole (root-dir.ts) and read without
 * following links.
 */
export interface DomainXmls {
  /** Keeps `xml` as the slot's, replacing what was kept before. */
  keep(account: string, slot: string, xml: string): Promise<void>
  /** The kept XML, or undefined when there is none. */
  read(account: string, slot: string): Promise<string | undefined>
  /** Removes the kept XML (after an undefine); false when there was none. */
  remove(account: string, slot: string): Promise<boolean>
}

/** The domains' XML of a storage root (the resolved one), the folders made or checked first. */
export async function openDomainXmls(storageRoot: string): Promise<DomainXmls> {
  const paths = clusterPaths(storageRoot)
  await ensureRootDir(paths.dir, 0o755)
  await ensureRootDir(paths.domains, 0o700)
  return {
    keep: (account, slot, xml) => writeRootFile(paths.domainXml(account, slot), xml, 0o600),
    read: async (account, slot) => {
      const path = paths.domainXml(account, slot)
      const opened = await openExact(path, {code: 'DOMAIN_XML'}).catch((error: unknown) => {
        if (error instanceof ShienError && error.code === 'DOMAIN_XML_MISSING') return undefined
        throw new ShienError(`The kept domain XML ${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`, {
          code: 'DOMAIN_XML_INVALID',
          exit: 'remote',
          cause: error,
          suggestions: ['Ask an admin: only shien writes these files (docs/cluster.md); remove whatever is there in its place.'],
        })
      })
      if (opened === undefined) return undefined
      return opened.handle.readFile('utf8').finally(() => opened.handle.close())
    },
    remove: (account, slot) => unlink(paths.domainXml(account, slot)).then(() => true, (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false
      throw error
    }),
  }
}
