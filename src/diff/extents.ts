import {run} from '../process.js'

/**
 * Where a file's bytes lie on disk, from FIEMAP: on a copy-on-write filesystem (btrfs, XFS with
 * reflink) two snapshots of one file share the extents of every page neither changed, so a diff
 * knows those pages are equal without reading them. Node has no ioctl, and a native addon would
 * need a compiler at install time, so this asks e2fsprogs' `filefrag` (one process for many
 * files), which issues FIEMAP and prints each extent.
 */
export interface Extent {
  /** Byte offset in the file. */
  logical: number
  /** Byte address on the device. */
  physical: number
  length: number
  /** btrfs compressed extents: their physical address names the whole compressed extent. */
  encoded: boolean
}

/** filefrag's unit with `-b512`: exact for every filesystem's block size. */
const UNIT = 512
/** Files per filefrag process: far below the argument-length limit for data directory paths. */
const BATCH = 400

/** Flags under which an extent has no stable address yet (or none at all): never shared. */
const UNPLACED = ['unknown_loc', 'delalloc', 'inline', 'data_inline', 'not_aligned', 'unwritten']

/**
 * The extents of each file, or undefined for a file whose mapping could not be read (FIEMAP not
 * supported there: ZFS, FUSE, tmpfs); the caller then compares that file's bytes.
 */
export async function readExtents(files: string[]): Promise<Map<string, Extent[] | undefined>> {
  const found = new Map<string, Extent[] | undefined>()
  for (let i = 0; i < files.length; i += BATCH) {
    const batch = files.slice(i, i + BATCH)
    const result = await run('filefrag', ['-v', '-e', `-b${UNIT}`, ...batch], {cwd: '/'})
    const parsed = parseFilefrag(result.stdout)
    for (const file of batch) found.set(file, parsed.get(file))
  }

  return found
}

/** Parses `filefrag -v -e -b512` output of one or more files (exported for unit tests). */
export function parseFilefrag(output: string): Map<string, Extent[] | undefined> {
  const found = new Map<string, Extent[] | undefined>()
  let file: string | undefined
  let size = 0
  let extents: Extent[] = []
  let broken = false
  const finish = () => {
    if (file === undefined) return
    // A non-empty file without one placed extent could not be mapped (or is all delalloc).
    found.set(file, broken || (size > 0 && extents.length === 0) ? undefined : extents)
    file = undefined
  }

  for (const line of output.split('\n')) {
    const header = /^File size of (.+) is (\d+) \(/.exec(line)
    if (header) {
      finish()
      file = header[1]
      size = Number(header[2])
      extents = []
      broken = false
      continue
    }

    if (file === undefined) continue
    const extent = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):\s+(\d+)\.\.\s*(\d+):\s+(\d+):\s*(?:\d+:)?\s*(.*)$/.exec(line)
    if (extent) {
      const flags = extent[6].split(',').map((flag) => flag.trim()).filter(Boolean)
      if (flags.some((flag) => UNPLACED.includes(flag))) continue
      extents.push({logical: Number(extent[1]) * UNIT, physical: Number(extent[3]) * UNIT, length: Number(extent[5]) * UNIT, encoded: flags.includes('encoded')})
      continue
    }

    if (line.startsWith(`${file}: `) && /extents? found$/.test(line)) finish()
    else if (/FIEMAP|FIBMAP|not supported|Operation not/i.test(line)) broken = true
  }

  finish()
  return found
}

/**
 * The byte ranges (page-aligned, `[start, end)`) at which two files certainly hold the same
 * bytes because both map them to the same place on disk. A plain extent maps linearly, so the
 * overlap of two extents with equal `physical - logical` is shared; a compressed extent only
 * when both files reference it whole at the same offset.
 */
export function sharedRanges(a: Extent[], b: Extent[], pageSize: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = []
  let j = 0
  for (const left of a) {
    while (j < b.length && b[j].logical + b[j].length <= left.logical) j++
    for (let k = j; k < b.length && b[k].logical < left.logical + left.length; k++) {
      const right = b[k]
      if (left.encoded || right.encoded) {
        if (left.encoded && right.encoded && left.logical === right.logical && left.physical === right.physical && left.length === right.length) {
          push(ranges, left.logical, left.logical + left.length, pageSize)
        }

        continue
      }

      if (left.physical - left.logical !== right.physical - right.logical) continue
      push(ranges, Math.max(left.logical, right.logical), Math.min(left.logical + left.length, right.logical + right.length), pageSize)
    }
  }

  return ranges
}

/** Adds the whole pages inside `[start, end)`, merging with the previous range when they touch. */
function push(ranges: Array<[number, number]>, start: number, end: number, pageSize: number): void {
  const first = Math.ceil(start / pageSize) * pageSize
  const last = Math.floor(end / pageSize) * pageSize
  if (last <= first) return
  const previous = ranges.at(-1)
  if (previous && previous[1] >= first) previous[1] = Math.max(previous[1], last)
  else ranges.push([first, last])
}
