import {readFileSync} from 'node:fs'

import {ShienError} from '../errors.js'

/** Sakura Cloud's API root; a zone's IaaS API 1.1 lives under `<root>/<zone>/api/cloud/1.1`. */
export const DEFAULT_API_ROOT = 'https://secure.sakura.ad.jp/cloud/zone'

/** Zone names as Sakura Cloud spells them: is1a, is1b, tk1a, tk1b, tk1v. */
export const ZONE_PATTERN = /^[a-z]{2}[0-9][a-z]$/

/**
 * How shien talks to Sakura Cloud. The defaults are the real service's values; tests and
 * private mirrors change them through the environment (never the secrets, which are apart).
 */
export interface CloudSettings {
  apiRoot: string
  /** Extra CA certificates (PEM) trusted for the API and FTPS, on top of the system's. */
  caPem?: string
  /** FTPS control port of the archive's FTP server (Sakura Cloud: 21). */
  ftpPort: number
  /** Interval between availability checks after the upload (the real API wants 5 s). */
  pollMs: number
  /** First wait after a 423 or 503; it doubles up to 64 times this (1 s to 64 s). */
  backoffBaseMs: number
  /** Tries for a request answered 423 or 503, the first included. */
  maxTries: number
  /** How long to wait for the archive to become available once the upload is done. */
  timeoutMs: number
  /** FTPS sends of the whole image (each after the first gets a fresh FTP password). */
  uploadAttempts: number
}

export const DEFAULT_SETTINGS: CloudSettings = {
  apiRoot: DEFAULT_API_ROOT,
  ftpPort: 21,
  pollMs: 5000,
  backoffBaseMs: 1000,
  maxTries: 10,
  timeoutMs: 60 * 60_000,
  uploadAttempts: 3,
}

const positive = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined || value === '') return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) {
    throw new ShienError(`${name}="${value}" is not a positive whole number.`, {code: 'BAD_SETTING', exit: 'usage'})
  }
  return n
}

/**
 * Settings from the environment and flags over the defaults: `SAKURACLOUD_API_ROOT_URL` (as
 * usacloud reads it, or the profile's APIRootURL), `SHIEN_CLOUD_CA_FILE` or --ca-file,
 * `SHIEN_CLOUD_FTP_PORT`, `SHIEN_CLOUD_POLL_MS`, `SHIEN_CLOUD_BACKOFF_MS`.
 */
export function resolveSettings(
  env: NodeJS.ProcessEnv,
  opts: {profileApiRoot?: string; caFile?: string; timeoutSeconds?: number} = {},
): CloudSettings {
  const caFile = opts.caFile ?? env.SHIEN_CLOUD_CA_FILE
  const apiRoot = (env.SAKURACLOUD_API_ROOT_URL || opts.profileApiRoot || DEFAULT_API_ROOT).replace(/\/+$/, '')
  if (!/^https?:\/\/[^/]/.test(apiRoot)) {
    throw new ShienError(`The Sakura Cloud API root "${apiRoot}" is not an http(s) URL.`, {code: 'BAD_SETTING', exit: 'usage'})
  }
  return {
    ...DEFAULT_SETTINGS,
    apiRoot,
    caPem: caFile ? readCa(caFile) : undefined,
    ftpPort: positive('SHIEN_CLOUD_FTP_PORT', env.SHIEN_CLOUD_FTP_PORT) ?? DEFAULT_SETTINGS.ftpPort,
    pollMs: positive('SHIEN_CLOUD_POLL_MS', env.SHIEN_CLOUD_POLL_MS) ?? DEFAULT_SETTINGS.pollMs,
    backoffBaseMs: positive('SHIEN_CLOUD_BACKOFF_MS', env.SHIEN_CLOUD_BACKOFF_MS) ?? DEFAULT_SETTINGS.backoffBaseMs,
    timeoutMs: opts.timeoutSeconds ? opts.timeoutSeconds * 1000 : DEFAULT_SETTINGS.timeoutMs,
  }
}

function readCa(path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new ShienError(`Cannot read the CA file ${path}.`, {code: 'BAD_CA_FILE', exit: 'usage', cause: error})
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ShienError(`${path} holds no PEM certificate.`, {code: 'BAD_CA_FILE', exit: 'usage'})
  }
  return text
}

/** Settings that came over the wire (the blade side): only known fields, each checked. */
export function checkSettings(value: unknown): CloudSettings {
  const v = (value ?? {}) as Partial<CloudSettings>
  const num = (x: unknown, fallback: number) => (typeof x === 'number' && Number.isInteger(x) && x > 0 ? x : fallback)
  const d = DEFAULT_SETTINGS
  return {
    apiRoot: typeof v.apiRoot === 'string' && /^https?:\/\//.test(v.apiRoot) ? v.apiRoot : d.apiRoot,
    caPem: typeof v.caPem === 'string' ? v.caPem : undefined,
    ftpPort: num(v.ftpPort, d.ftpPort),
    pollMs: num(v.pollMs, d.pollMs),
    backoffBaseMs: num(v.backoffBaseMs, d.backoffBaseMs),
    maxTries: num(v.maxTries, d.maxTries),
    timeoutMs: num(v.timeoutMs, d.timeoutMs),
    uploadAttempts: num(v.uploadAttempts, d.uploadAttempts),
  }
}

/** The base URL of one zone's IaaS API 1.1. */
export function zoneApiBase(settings: CloudSettings, zone: string): string {
  return `${settings.apiRoot}/${zone}/api/cloud/1.1`
}
