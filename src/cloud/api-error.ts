import {ShienError} from '../errors.js'

/** Sakura Cloud's error body: `{"is_fatal":true,"serial":"...","status":"404 NotFound","error_code":"...","error_msg":"..."}`. */
export interface SakuraErrorBody {
  is_fatal?: boolean
  serial?: string
  status?: string
  error_code?: string
  error_msg?: string
}

/** Reads an error body, which may also be plain text (proxies, maintenance pages). */
export function parseErrorBody(body: string): {code?: string; message: string} {
  try {
    const parsed = JSON.parse(body) as SakuraErrorBody
    if (parsed && typeof parsed === 'object' && (parsed.error_code || parsed.error_msg)) {
      return {code: parsed.error_code ? String(parsed.error_code) : undefined, message: String(parsed.error_msg ?? parsed.status ?? '')}
    }
  } catch {
    // not JSON: plain text below
  }
  const text = body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()
  return {message: text.length > 200 ? `${text.slice(0, 200)}...` : text || 'no message'}
}

/** The error for an answer outside 200/201/202/204, with the API's own code and message. */
export function apiError(request: string, zone: string, status: number, body: string, tries: number): ShienError {
  const {code, message} = parseErrorBody(body)
  const what = `Sakura Cloud (${zone}) answered ${status}${code ? ` ${code}` : ''} to ${request}: ${message}`
  if (status === 401 || status === 403) {
    return new ShienError(`${what}.`, {
      code: 'CLOUD_AUTH',
      exit: 'refused',
      suggestions: [
        'Check the API key (SAKURACLOUD_ACCESS_TOKEN / _SECRET or your usacloud profile) and that it may use this zone.',
      ],
    })
  }
  if (status === 423 || status === 503) {
    return new ShienError(`${what} (still busy after ${tries} tries).`, {
      code: 'CLOUD_BUSY',
      exit: 'remote',
      suggestions: ['Sakura Cloud is busy or under maintenance: try again in a few minutes.'],
    })
  }
  return new ShienError(`${what}.`, {code: 'CLOUD_API', exit: 'remote'})
}
