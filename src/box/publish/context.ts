import type {Catalog} from '../catalog.js'
import type {BoxInfo} from '../inspect.js'
import type {Stage} from '../../pipeline/runner.js'
import type {NewHostKey} from '../../transport/connect.js'
import type {LibvirtMetadata} from './libvirt-box.js'
import type {ArchitectureFiles, PublishPlan} from './plan.js'
import type {PublishTarget} from './target.js'
import type {PairCheck} from './version-entry.js'
import type {AskPassphrase} from '../../transport/ssh-auth.js'

export type PublishStageId = 'inspect' | 'lock' | 'checksum' | 'convert' | 'copy' | 'catalog'

export type PublishStage = Stage<PublishContext, PublishStageId>

/** A file ready on this machine to go to the destination. */
export interface LocalFile {
  path: string
  bytes: number
  sha256: string
}

/** Everything a publish sends, made before the destination is written. */
export interface PreparedFiles {
  virtualbox: LocalFile
  libvirt?: LocalFile & {metadata: LibvirtMetadata}
  base?: LocalFile
  /** The block manifest of `base`'s virtual disk. */
  manifest?: LocalFile
  /** `base`'s architecture and firmware (BasePlatform, as JSON). */
  platform?: LocalFile
  warnings: string[]
}

/** One file on its way: copied as `tmp`, then renamed to `dest`. */
export interface Placement {
  file: LocalFile
  dest: string
  mode: number
  tmp: string
}

/** What each stage hands on, under its own id; later stages read it with `need`. */
export interface PublishOutputs {
  /** The box, the architecture the catalog lists it as, and where its files go. */
  inspect: {info: BoxInfo; architecture: string; files: ArchitectureFiles}
  /** The destination, locked, and the catalog found there (if any). */
  lock: {
    target: PublishTarget
    existing?: Catalog
    /** Which of this publish's (provider, architecture) pairs the version has (--force replaces them) and which it gets. */
    pairs: PairCheck
    replaced: boolean
    /** Accounts or images whose use of a replaced base could not be read. */
    uncheckedImages?: string[]
  }
  checksum: Pick<PreparedFiles, 'virtualbox' | 'warnings'>
  convert: Required<Pick<PreparedFiles, 'libvirt' | 'base' | 'manifest' | 'platform'>>
  copy: {placements: Placement[]}
  catalog: Catalog
}

/** The state a publish carries from stage to stage. */
export interface PublishContext {
  plan: PublishPlan
  /** Asked for an unknown host key of an sftp:// destination. */
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
  /** A destination already open, instead of the plan's. */
  target?: PublishTarget
  out: Partial<PublishOutputs>
  /** What cleanups undo, recorded as it is made. */
  made: {
    target?: PublishTarget
    locked?: boolean
    /** The local folder where the libvirt box is made. */
    workDir?: string
    /** Temporary files on the destination not renamed into place yet. */
    pending: Set<string>
    /** Files of this version renamed into place. */
    placed: string[]
    /** Why the lock could not be let go after a good publish: the publish then fails with it. */
    unlockError?: unknown
  }
}

/** The files made so far, as the catalog and the result list them. */
export function preparedFiles(out: Partial<PublishOutputs>): PreparedFiles {
  const checksum = out.checksum
  if (!checksum) throw new Error('Internal error: the publish lists its files before the checksum stage has run.')
  return {...checksum, ...out.convert}
}
