import {execa} from 'execa'

/** Opens a URL in the user's browser (xdg-open on Linux, open on macOS); false when there is none. */
export async function openInBrowser(url: string): Promise<boolean> {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open'
  try {
    const child = execa(opener, [url], {detached: true, stdio: 'ignore', reject: false})
    child.unref()
    const result = await Promise.race([child, new Promise<undefined>((resolve) => {
      setTimeout(() => resolve(undefined), 1500)
    })])
    return result === undefined || (result.exitCode === 0 && !result.failed)
  } catch {
    return false
  }
}
