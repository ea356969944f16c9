import type {BoxInfo} from '../box/inspect.js'
import type {Connection, NewHostKey} from '../transport/connect.js'
import type {UploadResult} from '../transport/sftp-upload.js'
import type {BladeClient} from '../client/blade-client.js'
import type {PushPlan} from './plan.js'

/** What `ie-virsh list --json` returns (the fields the laptop reads). */
export interface VirshList {
  limits?: {vms?: number}
  domains?: Array<{slot: string; name: string; state: string; sshPort?: number}>
}

/** What the laptop learns about a slot before it touches anything. */
export interface SlotState {
  limit: number
  defined: boolean
  running: boolean
}

/** The state a push carries from stage to stage. */
export interface PushContext {
  plan: PushPlan
  /** Asked for an unknown host key (a prompt on a TTY, the flag otherwise). */
  confirmHostKey: (key: NewHostKey) => Promise<boolean>
  agentSocket?: string
  /** SFTP channels used in parallel for the upload. */
  channels: number
  boxPath?: string
  /** A folder the package stage made (vagrant package), removed when the push ends. */
  tempDir?: string
  box?: BoxInfo
  payloadKind?: 'file' | 'repacked'
  connection?: Connection
  blade?: BladeClient
  publicKey?: string
  slotState?: SlotState
  upload?: UploadResult
  converted?: {image: string; disk: string; virtualSize: number}
  hardened?: {record: string; report: unknown}
  installed?: boolean
  defined?: boolean
  vm?: {domain: string; sshPort?: number; state?: string}
}
