import type {BoxInfo} from '../box/inspect.js'
import type {BladeClient, SlotLock} from '../client/blade-client.js'
import type {Stage} from '../pipeline/runner.js'
import type {Connection, NewHostKey} from '../transport/connect.js'
import type {UploadResult} from '../transport/sftp-upload.js'
import type {PushPlan} from './plan.js'
import type {AskPassphrase} from '../transport/ssh-auth.js'
import type {ArchVerdict} from './arch-check.js'
import type {ArchSettings} from '../config/blade-arch.js'
import type {PushPlacement} from './push-placement.js'

export type StageId = 'package' | 'connect' | 'upload' | 'convert' | 'harden' | 'define' | 'start'

export type PushStage = Stage<PushContext, StageId>

export type {VirshList} from './push-placement.js'

/** A delta sent instead of the whole box: against which base, and how much of the disk. */
export interface DeltaSent {
  box: string
  version: string
  /** Bytes of the delta file; `virtualSize` is the disk's. */
  bytes: number
  changedBlocks: number
  zeroedBlocks: number
  virtualSize: number
  /** The delta was kept from an earlier push of the same box that did not finish. */
  reused: boolean
  /** What apply-delta is told about the box; only for a blade that names its base's architecture. */
  platform?: DeltaPlatform
}

/** The box's platform as apply-delta takes it (flags `architecture`, `architecture-source`, `firmware`). */
export interface DeltaPlatform {
  /** Vagrant's name, as the box declares it; apply-delta takes amd64's base without it. */
  architecture?: string
  /** Where the box declares it: harden checks the disk against it, as after a convert. */
  architectureSource?: string
  firmware?: 'bios' | 'efi'
}

/** What the laptop learns about a slot before it touches anything. */
export interface SlotState {
  limit: number
  defined: boolean
  running: boolean
}

/** What each stage hands on, under its own id; later stages read it with `need`. */
export interface PushOutputs {
  /** `reused`: the box was kept from an earlier push that did not finish. */
  package: {boxPath: string; box: BoxInfo; reused: boolean}
  /**
   * Set as soon as the connection is open, so the stage's cleanup closes it whatever comes next.
   * `publicKey`: the key harden puts in (--public-key's, or the one that logged in). `bladeArch`:
   * what the blade runs, for the upload's check of the box; `arch`: that check's verdict.
   * `placement`: which blade of the cluster the push went to and why (absent without a cluster).
   */
  connect: {connection: Connection; blade: BladeClient; publicKey: string; bladeArch?: ArchSettings; arch?: ArchVerdict; slotLock?: SlotLock; slotState?: SlotState; placement?: PushPlacement}
  /** `delta` when a delta went instead of the whole box; else `wholeBox` says why, when a base was looked for. */
  upload: {slotState: SlotState; sent: UploadResult; delta?: DeltaSent; wholeBox?: string}
  /** `hardened`: the blade gave back a harden it finished for this upload and key on the last try. */
  convert: {image: string; disk: string; virtualSize: number; hardened?: PushOutputs['harden']}
  harden: {record: string; report: unknown; hostKeys: string[]}
  /** `ssh`: the login as the blade prints it (`ssh -p PORT vagrant@HOST`). */
  start: {domain: string; account: string; sshPort?: number; ssh?: string; state?: string}
}

/** The state a push carries from stage to stage. */
export interface PushContext {
  plan: PushPlan
  /** Asked for an unknown host key (a prompt on a TTY, the flag otherwise). */
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** Asks a key file's passphrase on a terminal. */
  askPassphrase?: AskPassphrase
  /** SFTP channels used in parallel for the upload. */
  channels: number
  /** The box read by the connect stage for placement, which the package stage takes instead of reading it again. */
  inspected?: {path: string; box: BoxInfo}
  out: Partial<PushOutputs>
  /** How long each heavy step waited for its turn in the blade's push queue. */
  waitedMs: Partial<Record<'convert' | 'harden', number>>
  /** What cleanups undo, recorded as it is made. */
  made: {
    /** A folder for the delta of a named box file, removed when the push ends. */
    tempDir?: string
    /** The new image is in the slot (the define stage), so a convert rollback has nothing left to do. */
    installed?: boolean
    defined?: boolean
  }
}
