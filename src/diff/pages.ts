import {open, type FileHandle} from 'node:fs/promises'

/** Postgres' page: the unit in which a diff counts changed bytes. */
export const PAGE_SIZE = 8192
/** Bytes read per call from each side: large reads run at disk speed, and memory stays 2 x this. */
const READ_SIZE = 1024 * 1024

/**
 * Bytes in the pages at which two files differ: a page is changed when its bytes differ or it
 * exists on one side only, and counts with its length (a shorter last page counts what it
 * holds). `shared` are ranges known equal without reading (the same extents on disk); a missing
 * file counts as empty.
 */
export async function changedBytes(before: string | undefined, after: string | undefined, shared: Array<[number, number]> = []): Promise<number> {
  const [left, right] = await Promise.all([openIfGiven(before), openIfGiven(after)])
  try {
    const [leftSize, rightSize] = await Promise.all([sizeOf(left), sizeOf(right)])
    const total = Math.max(leftSize, rightSize)
    let changed = 0
    for (const [start, end] of unsharedRanges(total, shared)) {
      for (let offset = start; offset < end; offset += READ_SIZE) {
        const length = Math.min(READ_SIZE, end - offset)
        const [a, b] = await Promise.all([readAt(left, leftSize, offset, length), readAt(right, rightSize, offset, length)])
        changed += countChanged(a, b, length)
      }
    }

    return changed
  } finally {
    await Promise.all([left?.close(), right?.close()])
  }
}

/** The complement of `shared` within `[0, total)`, page-aligned where `shared` is. */
export function unsharedRanges(total: number, shared: Array<[number, number]>): Array<[number, number]> {
  const ranges: Array<[number, number]> = []
  let position = 0
  for (const [start, end] of [...shared].sort((x, y) => x[0] - y[0])) {
    if (start > position) ranges.push([position, Math.min(start, total)])
    position = Math.max(position, end)
    if (position >= total) break
  }

  if (position < total) ranges.push([position, total])
  return ranges.filter(([start, end]) => end > start)
}

/**
 * Changed bytes between two buffers read at the same page-aligned offset, page by page; `length`
 * is the span compared (a side may be shorter: the rest of it is missing there).
 */
export function countChanged(a: Buffer, b: Buffer, length: number): number {
  let changed = 0
  for (let page = 0; page < length; page += PAGE_SIZE) {
    const end = Math.min(page + PAGE_SIZE, length)
    const left = a.subarray(Math.min(page, a.length), Math.min(end, a.length))
    const right = b.subarray(Math.min(page, b.length), Math.min(end, b.length))
    if (left.length !== right.length || !left.equals(right)) changed += Math.max(left.length, right.length)
  }

  return changed
}

async function openIfGiven(file: string | undefined): Promise<FileHandle | undefined> {
  return file === undefined ? undefined : open(file, 'r')
}

async function sizeOf(handle: FileHandle | undefined): Promise<number> {
  return handle ? (await handle.stat()).size : 0
}

async function readAt(handle: FileHandle | undefined, size: number, offset: number, length: number): Promise<Buffer> {
  if (!handle || offset >= size) return Buffer.alloc(0)
  const buffer = Buffer.allocUnsafe(Math.min(length, size - offset))
  let done = 0
  while (done < buffer.length) {
    const {bytesRead} = await handle.read(buffer, done, buffer.length - done, offset + done)
    if (bytesRead === 0) break
    done += bytesRead
  }

  return buffer.subarray(0, done)
}
