import type {BladeConfig} from '../config/blade-config.js'
import type {Directory} from './directory.js'
import {LdapDirectory} from './ldap-directory.js'
import {UnixDirectory} from './unix-directory.js'

/** The blade's directory: LDAP when the configuration has an `ldap` section, else Unix accounts. */
export function openDirectory(config: BladeConfig): Directory {
  return config.ldap ? new LdapDirectory(config.ldap, config.adminGroup) : new UnixDirectory(config.adminGroup)
}
