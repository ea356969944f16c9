import {inspect} from 'node:util'

const MASK = '[secret]'

/**
 * A password or API secret. It prints, logs and serialises as `[secret]`, so an error object,
 * a debug dump or a `--json` result that reaches it by accident cannot leak the value; only an
 * explicit `reveal()` at the point of use (an Authorization header, FTP login) gives it out.
 */
export class Secret {
  readonly #value: string

  constructor(value: string) {
    this.#value = value
  }

  reveal(): string {
    return this.#value
  }

  toString(): string {
    return MASK
  }

  toJSON(): string {
    return MASK
  }

  [inspect.custom](): string {
    return MASK
  }
}

/** The API key pair Sakura Cloud's control panel issues (token and its secret). */
export interface ApiCredentials {
  token: string
  secret: Secret
  /** Where they came from, for messages: an environment variable or a profile file. */
  origin: string
}
