/** Human sizes as in the proposal's tables: 0G, 5.1G, 812M. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }

  const digits = value >= 10 || unit === 0 ? 0 : 1
  return `${value.toFixed(digits)}${units[unit]}`
}

export function formatRate(bytes: number, seconds: number): string {
  return `${formatBytes(seconds > 0 ? bytes / seconds : 0)}/s`
}

/** A snapshot's parent as list and show print it: a destroyed one keeps its name, marked (like git's `[origin/x: gone]`). */
export function formatParent(snapshot: {parent?: string; parentExists?: boolean}): string {
  if (!snapshot.parent) return '-'
  return snapshot.parentExists === false ? `${snapshot.parent} (destroyed)` : snapshot.parent
}
