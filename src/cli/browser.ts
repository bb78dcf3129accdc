import {spawn} from 'node:child_process'

/**
 * Opens a URL in the user's browser (xdg-open on Linux, open on macOS); false when there is none.
 * node's spawn, not execa: the single executable evaluates every command's imports at start-up,
 * and execa's alone cost each command ~12 ms there.
 */
export async function openInBrowser(url: string): Promise<boolean> {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open'
  return new Promise<boolean>((resolve) => {
    const child = spawn(opener, [url], {detached: true, stdio: 'ignore'})
    child.unref()
    // An opener that is still running after 1.5 s has found a browser (some stay until it closes).
    const timer = setTimeout(() => resolve(true), 1500)
    child.once('error', () => {
      clearTimeout(timer)
      resolve(false)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve(code === 0)
    })
  })
}
