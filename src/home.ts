import path from 'node:path'

import {type Zenith, createContext, resolveHome} from './context.js'
import {assertReachable, pgOsUser} from './pg/os-user.js'
import {DEFAULT_STORAGE, attachDefaultStorage} from './storage/registry.js'

/** Opens a ZENITH_HOME: its context, and the `local` storage that exists from the first run. */
export async function openZenith(home = resolveHome()): Promise<Zenith> {
  const zenith = await createContext(home)
  await ensureDefaultStorage(zenith)
  return zenith
}

/** A folder in the home: what its filesystem can do is detected once, here. */
async function ensureDefaultStorage(zenith: Zenith): Promise<void> {
  const data = await zenith.store.read()
  if (data.storages[DEFAULT_STORAGE]) return
  const user = await pgOsUser(zenith)
  const record = await attachDefaultStorage(path.join(zenith.home, 'storages', DEFAULT_STORAGE), {checkReachable: (folder) => assertReachable(user, folder)})
  await zenith.store.update((current) => {
    current.storages[DEFAULT_STORAGE] ??= record
  })
}
