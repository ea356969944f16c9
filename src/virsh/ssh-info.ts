/** How a student reaches a guest's sshd: the forwarded port, and the command to type. */
export interface SshFields {
  sshPort: number
  /** e.g. `ssh -p 22000 vagrant@blade1` */
  ssh: string
}

// Vagrant boxes log in as `vagrant`; shien push installs the student's key for that user.
export function sshFields(host: string, port: number | undefined): SshFields | Record<string, never> {
  return port === undefined ? {} : {sshPort: port, ssh: `ssh -p ${port} vagrant@${host}`}
}
