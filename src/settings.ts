import {existsSync} from 'node:fs'
import {mkdir} from 'node:fs/promises'
import path from 'node:path'

import {ZenithError} from './errors.js'
import {validateName} from './state/names.js'

/**
 * User settings (`zenith config get|set|unset|list`), kept in ZENITH_HOME/settings.json by conf:
 * a JSON schema for the keys and conf's migrations for their format. They are preferences, read
 * by a few commands; the metadata store (state.json) is not kept here, because it needs the
 * cross-process lock conf does not have (see src/state/store.ts).
 */
export const SETTINGS = {
  'default-storage': {
    description: 'storage `pg create` uses when neither -s nor a snapshot decides',
    default: 'local',
    schema: {type: 'string', minLength: 1, maxLength: 63},
    validate: (value: string) => validateName('storage', value),
  },
  'pg-user': {
    description: 'OS user postgres runs as when zenith runs as root (the environment variable ZENITH_PG_USER wins)',
    default: 'postgres',
    env: 'ZENITH_PG_USER',
    schema: {type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,31}$'},
    validate(value: string) {
      if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(value)) {
        throw new ZenithError('INVALID_ARGUMENT', `"${value}" is not an OS user name.`, 'Give an existing unprivileged user, e.g. postgres.')
      }

      return value
    },
  },
} as const satisfies Record<string, {description: string; default: string; env?: string; schema: object; validate(value: string): string}>

export type SettingKey = keyof typeof SETTINGS

/** Where a setting's value comes from: the environment, settings.json, or zenith's default. */
export type SettingSource = 'env' | 'set' | 'default'

export interface SettingInfo {
  key: SettingKey
  value: string
  source: SettingSource
  description: string
}

/**
 * The version of the settings format, recorded by conf in the file. When a key is renamed or its
 * value changes form, raise it and add a migration under the new version in MIGRATIONS.
 */
const SETTINGS_VERSION = '1.0.0'
const MIGRATIONS: Record<string, (store: {get(key: string): unknown; set(key: string, value: unknown): void; delete(key: string): void}) => void> = {}

const FILE_NAME = 'settings'

export function settingsFile(home: string): string {
  return path.join(home, `${FILE_NAME}.json`)
}

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTINGS, key)
}

function assertKey(key: string): SettingKey {
  if (isSettingKey(key)) return key
  throw new ZenithError('INVALID_ARGUMENT', `There is no setting "${key}".`, `Settings: ${Object.keys(SETTINGS).join(', ')} (see \`zenith config list\`).`)
}

type Store = {get(key: string): unknown; set(key: string, value: unknown): void; delete(key: string): void; has(key: string): boolean}

/** conf is loaded only here, by the commands that read or write a setting: start-up time matters. */
async function openSettings(home: string): Promise<Store> {
  const {default: Conf} = await import('conf')
  try {
    return new Conf<Record<string, unknown>>({
      cwd: home,
      configName: FILE_NAME,
      projectVersion: SETTINGS_VERSION,
      migrations: MIGRATIONS,
      accessPropertiesByDotNotation: false,
      schema: Object.fromEntries(Object.entries(SETTINGS).map(([key, setting]) => [key, setting.schema])),
    })
  } catch (error) {
    // A file edited by hand into invalid JSON or out of the schema: say which file, change nothing.
    throw new ZenithError('INVALID_ARGUMENT', `The settings file ${settingsFile(home)} cannot be read: ${error instanceof Error ? error.message : String(error)}`,
      'Fix or delete the file; `zenith config set` writes it again.')
  }
}

function describe(key: SettingKey, stored: unknown): SettingInfo {
  const setting: {description: string; default: string; env?: string} = SETTINGS[key]
  const fromEnv = setting.env ? process.env[setting.env] : undefined
  if (fromEnv) return {key, value: fromEnv, source: 'env', description: setting.description}
  if (typeof stored === 'string') return {key, value: stored, source: 'set', description: setting.description}
  return {key, value: setting.default, source: 'default', description: setting.description}
}

/** Every setting with its value now and where that comes from. */
export async function listSettings(home: string): Promise<SettingInfo[]> {
  // Without a file there is nothing to read: conf (and its schema compiler) stays unloaded.
  const store = existsSync(settingsFile(home)) ? await openSettings(home) : undefined
  return (Object.keys(SETTINGS) as SettingKey[]).map((key) => describe(key, store?.get(key)))
}

export async function getSetting(home: string, key: string): Promise<SettingInfo> {
  const known = assertKey(key)
  const store = existsSync(settingsFile(home)) ? await openSettings(home) : undefined
  return describe(known, store?.get(known))
}

/** The value a command uses: the environment, else settings.json, else zenith's default. */
export async function settingValue(home: string, key: SettingKey): Promise<string> {
  return (await getSetting(home, key)).value
}

export async function setSetting(home: string, key: string, value: string): Promise<SettingInfo> {
  const known = assertKey(key)
  const valid = SETTINGS[known].validate(value)
  // The home may not exist yet; it is private like everything in it.
  await mkdir(home, {recursive: true, mode: 0o700})
  const store = await openSettings(home)
  store.set(known, valid)
  return describe(known, valid)
}

/** Back to the default; unsetting a key that was not set is not an error. */
export async function unsetSetting(home: string, key: string): Promise<SettingInfo> {
  const known = assertKey(key)
  if (!existsSync(settingsFile(home))) return describe(known, undefined)
  const store = await openSettings(home)
  store.delete(known)
  return describe(known, undefined)
}
