/** Turns one callback-style SFTP call into a promise. */
export function sftpCall<T = void>(call: (cb: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    call((error, value) => (error ? reject(error) : resolve(value as T)))
  })
}
