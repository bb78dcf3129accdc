import {writer} from '../../src/cli/writer.js'

interface Item {
  name: string
  sizeBytes: number
  parent?: string
  tags: string[]
  settings: Record<string, string>
}

const items: Item[] = [
  {name: 'dev@one', sizeBytes: 1024, tags: [], settings: {}},
  {name: 'dev@two', sizeBytes: 3, parent: 'dev@one', tags: ['a', 'b'], settings: {work_mem: '8MB'}},
]

function capture(json = false) {
  const out: string[] = []
  const err: string[] = []
  return {out, err, writer: writer({json, out: (text) => out.push(String(text)), err: (text) => err.push(text)})}
}

describe('writer', () => {
  it('renders declared fields as a table, with labels, formats and "-" for nothing', () => {
    const {out, writer: w} = capture()
    const returned = w.table(items, {fields: [{key: 'name', label: 'ID'}, {key: 'sizeBytes', label: 'SIZE', format: (bytes) => `${bytes}B`}, 'parent', 'tags'], notes: () => ['* a note']})
    expect(returned).toBe(items)
    expect(out.join('')).toBe([
      'ID       SIZE   PARENT   TAGS',
      'dev@one  1024B  -        -',
      'dev@two  3B     dev@one  a, b',
      '* a note',
      '',
    ].join('\n'))
  })

  it('renders a key: value layout; a format that gives nothing leaves its line out, a list is a nested block', () => {
    const {out, writer: w} = capture()
    w.layout(items[1], {title: ({name}) => name, fields: [
      {key: 'sizeBytes', label: ({name}) => `size of ${name}`},
      {key: 'parent', format: () => undefined},
      'tags',
      {key: 'settings', format: (settings) => Object.entries(settings).map(([key, value]) => `${key} = ${value}`)},
    ]})
    expect(out.join('')).toBe(['dev@two:', '  size of dev@two: 3', '  tags: a, b', '  settings:', '    work_mem = 8MB', ''].join('\n'))
  })

  it('prints nothing under --json and gives the data back (oclif prints it as the one document)', () => {
    const {out, err, writer: w} = capture(true)
    expect(w.table(items, {fields: ['name']})).toBe(items)
    expect(w.layout(items[0], {title: ({name}) => name, fields: ['name']})).toBe(items[0])
    expect(w.message(items[0], ({name}) => name)).toBe(items[0])
    w.append('streamed')
    expect(out).toEqual([])
    // What the user needs while it waits goes to stderr then.
    w.announce('zenith://127.0.0.1:7000/TOKEN')
    expect(err).toEqual(['zenith://127.0.0.1:7000/TOKEN\n'])
  })

  it('accepts only keys of the data', () => {
    const {writer: w} = capture()
    // @ts-expect-error: not a key of Item
    w.table(items, {fields: ['nosuch']})
    // @ts-expect-error: the format gets the value of its own key (a number), not a string
    w.table(items, {fields: [{key: 'sizeBytes', format: (value: string) => value}]})
  })
})
