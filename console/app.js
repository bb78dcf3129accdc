// zenith console: one page over the REST API of `zenith serve` (no framework, no build step: it
// ships as these three files and works offline). The token comes once in the address
// (?token=...), is kept in sessionStorage and dropped from the address bar.

const params = new URLSearchParams(location.search)
if (params.has('token')) {
  sessionStorage.setItem('zenith-token', params.get('token'))
  params.delete('token')
  history.replaceState(null, '', `${location.pathname}${params.size > 0 ? `?${params}` : ''}${location.hash}`)
}

const token = sessionStorage.getItem('zenith-token') ?? ''
const $ = (selector, root = document) => root.querySelector(selector)

/** A request to the API; an error answer is thrown with its message and hint. */
async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: {'Verification-Token': token, ...(body === undefined ? {} : {'Content-Type': 'application/json'})},
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  const json = text ? JSON.parse(text) : undefined
  if (!response.ok) throw new Error(json ? `${json.message}${json.hint ? ` ${json.hint}` : ''}` : `${response.status} ${response.statusText}`)
  return json
}

function say(text) {
  $('#message').textContent = text
}

async function act(work) {
  say('')
  try {
    await work()
  } catch (error) {
    say(error.message)
  }

  await refresh()
}

/** A DOM element: el('td', {class: 'up'}, 'running'). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (key === 'style') node.style.cssText = value
    else if (value !== undefined && value !== false) node.setAttribute(key, value === true ? '' : value)
  }

  for (const child of children.flat()) if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child))
  return node
}

function bytes(value) {
  if (value === undefined || value === null) return '-'
  const units = ['B', 'K', 'M', 'G', 'T']
  let n = value
  let unit = 0
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024
    unit++
  }

  return `${n.toFixed(n >= 10 || unit === 0 ? 0 : 1)}${units[unit]}`
}

function copyButton(text, label) {
  return el('button', {type: 'button', 'aria-label': label, onclick: async () => {
    await navigator.clipboard?.writeText(text).catch(() => undefined)
    say(`Copied: ${text.replace(/:[^:@/]*@/, ':***@')}`)
  }}, 'Copy')
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...(rows.length > 0 ? rows : [el('tr', {}, el('td', {colspan: tbody.parentElement.tHead.rows[0].cells.length, class: 'muted'}, empty))]))
}

// --- pages -------------------------------------------------------------------------------------

async function renderOverview(state) {
  const rows = []
  for (const pg of state.pgs) {
    const up = pg.status === 'running'
    const lag = pg.replication ? ` (${pg.replication.state}${pg.replication.lagBytes !== undefined ? `, lag ${bytes(pg.replication.lagBytes)}` : ''})` : ''
    const url = up ? state.urls[pg.name] : undefined
    rows.push(el('tr', {'data-pg': pg.name},
      el('th', {scope: 'row'}, pg.name),
      el('td', {}, pg.role),
      el('td', {class: up ? 'up' : 'down'}, `${up ? 'up' : 'down'}: ${pg.status}${lag}`),
      el('td', {}, up ? pg.endpoint : '-'),
      el('td', {}, pg.primary ? '-' : bytes(pg.usedBytes)),
      el('td', {}, pg.storage),
      el('td', {}, url ? [el('code', {}, url.replace(/:[^:@/]*@/, ':***@')), ' ', copyButton(url, `Copy the connection string of ${pg.name}`)] : '-')))
  }

  fill($('#pgs tbody'), rows, 'No pgs yet: zenith pg create NAME')
  $('#disk').replaceChildren(...state.status.disk.map((disk) => {
    const used = disk.size > 0 ? (disk.size - disk.free) / disk.size : 0
    return el('li', {}, el('span', {class: 'bar', role: 'img', 'aria-label': `${Math.round(used * 100)}% used`}, el('span', {style: `width: ${(used * 100).toFixed(1)}%`})),
      `${disk.name} (${disk.type}): ${bytes(disk.free)} free of ${bytes(disk.size)}`)
  }))
  const now = Date.now()
  $('#pitr').replaceChildren(...(state.pitr.length === 0 ? [el('p', {class: 'muted'}, 'No PITR areas: zenith pitr create NAME --pg PG')] : state.pitr.map((area) => {
    const span = (area.ttlSeconds ?? 7 * 86_400) * 1000
    const start = now - span
    const from = area.from ? Date.parse(area.from.time) : undefined
    const to = area.to ? Date.parse(area.to.time) : undefined
    const left = from === undefined ? 0 : Math.max(0, (from - start) / span)
    const right = to === undefined ? left : Math.min(1, (to - start) / span)
    return el('div', {class: 'timeline'},
      el('div', {}, `${area.name} (pg ${area.pg}, on ${area.storage}, ${area.status}): ${area.from ? `${area.from.time} .. ${area.to?.time ?? 'now'}` : 'no window yet'}`),
      el('div', {class: 'track', role: 'img', 'aria-label': `window of ${area.name}`}, el('span', {class: 'window', style: `left: ${(left * 100).toFixed(1)}%; width: ${Math.max(0.5, (right - left) * 100).toFixed(1)}%`})))
  })))
}

function renderSnapshots(state) {
  const select = $('#snapshot-form select[name=pg]')
  const chosen = select.value
  select.replaceChildren(...state.pgs.filter((pg) => !pg.primary && pg.role !== 'read-only').map((pg) => el('option', {value: pg.name, selected: pg.name === chosen}, pg.name)))
  fill($('#snapshot-list tbody'), state.status.snapshots.map((snapshot) => el('tr', {'data-snapshot': snapshot.id},
    el('th', {scope: 'row'}, snapshot.id),
    el('td', {}, snapshot.storage),
    el('td', {}, bytes(snapshot.sizeBytes)),
    el('td', {}, snapshot.createdAt ? new Date(snapshot.createdAt).toLocaleString() : '-'),
    el('td', {},
      el('button', {type: 'button', onclick: () => act(() => api('POST', '/clone', {snapshot: {id: snapshot.id}}))}, 'Clone'),
      el('button', {type: 'button', class: 'danger', onclick: () => confirm(`Destroy snapshot ${snapshot.id}?`) && act(() => api('DELETE', `/snapshot/${encodeURIComponent(snapshot.id)}`))}, 'Destroy')))),
  'No snapshots yet')
  // A diff compares stored snapshots and live pgs (PG@CURRENT).
  const refs = [...state.status.snapshots.map((snapshot) => snapshot.id), ...state.pgs.filter((pg) => !pg.primary).map((pg) => `${pg.name}@CURRENT`)]
  for (const name of ['from', 'to']) {
    const select = $(`#diff-form select[name=${name}]`)
    const chosenRef = select.value || (name === 'to' ? refs.find((ref) => ref.endsWith('@CURRENT')) : refs[0])
    select.replaceChildren(...refs.map((ref) => el('option', {value: ref, selected: ref === chosenRef}, ref)))
  }

  const cloneSelect = $('#clone-form select[name=snapshot]')
  const chosenSnapshot = cloneSelect.value
  cloneSelect.replaceChildren(...state.status.snapshots.map((snapshot) => el('option', {value: snapshot.id, selected: snapshot.id === chosenSnapshot}, snapshot.id)))
}

function renderClones(state) {
  const now = Date.now()
  fill($('#clone-list tbody'), state.status.clones.map((clone) => {
    const left = clone.deleteAt ? Math.max(0, Date.parse(clone.deleteAt) - now) : undefined
    return el('tr', {'data-clone': clone.id},
      el('th', {scope: 'row'}, clone.id),
      el('td', {class: clone.status.code === 'OK' ? 'up' : clone.status.code === 'FATAL' ? 'down' : ''}, clone.status.code, clone.status.message ? el('div', {class: 'muted'}, clone.status.message) : undefined),
      el('td', {}, clone.snapshot.id),
      el('td', {}, clone.db ? [el('code', {}, clone.db.connStr.replace(/password=\S+/, 'password=***').replace(/:[^:@/]*@/, ':***@')), ' ', copyButton(clone.db.connStr, `Copy the connection string of ${clone.id}`)] : '-'),
      el('td', {}, left === undefined ? (clone.protected ? 'protected' : 'no limit') : `${Math.ceil(left / 60_000)} min`),
      el('td', {},
        el('button', {type: 'button', onclick: () => act(() => api('POST', `/clone/${encodeURIComponent(clone.id)}/reset`))}, 'Reset'),
        el('button', {type: 'button', 'aria-pressed': String(clone.protected), onclick: () => act(() => api('PATCH', `/clone/${encodeURIComponent(clone.id)}`, {protected: !clone.protected}))}, clone.protected ? 'Unprotect' : 'Protect'),
        el('button', {type: 'button', class: 'danger', onclick: () => act(() => api('DELETE', `/clone/${encodeURIComponent(clone.id)}`))}, 'Destroy')))
  }), 'No clones yet: pick a snapshot above')
}

const GRAPHS = [
  ['cpuPercent', 'CPU (%)', (v) => v.toFixed(1)],
  ['rssBytes', 'Memory (RSS)', bytes],
  ['diskBytes', 'Disk used', bytes],
  ['connections', 'Connections', String],
  ['tps', 'Transactions / s', (v) => v.toFixed(1)],
  ['cacheHitRatio', 'Cache hit ratio', (v) => `${(v * 100).toFixed(1)}%`],
  ['databaseBytes', 'Database sizes', bytes],
  ['lagBytes', 'Replication lag', bytes],
  ['archiveFailed', 'WAL archive failures', String],
]

async function renderMonitoring(state) {
  const select = $('#monitor-pg')
  const chosen = select.value || state.pgs.find((pg) => pg.status === 'running')?.name
  select.replaceChildren(...state.pgs.map((pg) => el('option', {value: pg.name, selected: pg.name === chosen}, pg.name)))
  if (!chosen) {
    $('#graphs').replaceChildren(el('p', {class: 'muted'}, 'No pgs to monitor'))
    return
  }

  const {samples} = await api('GET', `/pg/${encodeURIComponent(chosen)}/metrics`)
  $('#graphs').replaceChildren(...GRAPHS.filter(([key]) => samples.some((sample) => typeof sample[key] === 'number')).map(([key, title, format]) => {
    const points = samples.filter((sample) => typeof sample[key] === 'number')
    const last = points.at(-1)
    return el('figure', {class: 'graph', 'data-metric': key},
      el('h3', {}, `${title}: ${format(last[key])}`),
      sparkline(points.map((sample) => [sample.t, sample[key]]), title))
  }))
}

/** An SVG line of [time, value] points over the last hour. */
function sparkline(points, title) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('viewBox', '0 0 300 80')
  svg.setAttribute('preserveAspectRatio', 'none')
  svg.setAttribute('role', 'img')
  svg.setAttribute('aria-label', `${title} over the last hour`)
  // From the first sample (at most an hour ago, at least a minute before now) to now.
  const end = Date.now()
  const start = Math.min(end - 60_000, Math.max(end - 3_600_000, points[0]?.[0] ?? end))
  const max = Math.max(...points.map(([, value]) => value), 1e-9)
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline')
  line.setAttribute('points', points.map(([t, value]) => `${(((t - start) / (end - start)) * 300).toFixed(1)},${(78 - (value / max) * 74).toFixed(1)}`).join(' '))
  svg.append(line)
  return svg
}

// --- refresh loop ------------------------------------------------------------------------------

function currentPage() {
  const page = location.hash.slice(1)
  return ['overview', 'snapshots', 'clones', 'monitoring'].includes(page) ? page : 'overview'
}

function showPage() {
  const page = currentPage()
  for (const section of document.querySelectorAll('[data-page-section]')) section.hidden = section.id !== page
  for (const link of document.querySelectorAll('nav a')) {
    if (link.dataset.page === page) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
}

let refreshing = false
async function refresh() {
  if (refreshing) return
  refreshing = true
  try {
    const [status, pgs, pitr] = await Promise.all([api('GET', '/status'), api('GET', '/pgs'), api('GET', '/pitr')])
    const urls = Object.fromEntries(await Promise.all(pgs.filter((pg) => pg.status === 'running').map(async (pg) => [pg.name, (await api('GET', `/pg/${encodeURIComponent(pg.name)}/url`)).url])))
    const state = {status, pgs, pitr, urls}
    $('#instance-status').textContent = `${status.status.code}: ${status.status.message} ${pgs.filter((pg) => pg.status === 'running').length}/${pgs.length} pgs up, ${status.numClones} clones`
    await renderOverview(state)
    renderSnapshots(state)
    renderClones(state)
    if (currentPage() === 'monitoring') await renderMonitoring(state)
  } catch (error) {
    $('#instance-status').textContent = `Cannot reach the zenith server: ${error.message}`
  } finally {
    refreshing = false
  }
}

$('#snapshot-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  void act(() => api('POST', '/snapshot', {pg: form.get('pg'), tag: form.get('tag')}))
})
$('#clone-form').addEventListener('submit', (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  const minutes = Number(form.get('minutes'))
  void act(() => api('POST', '/clone', {
    snapshot: {id: form.get('snapshot')}, protected: form.get('protected') === 'on',
    ...(minutes > 0 ? {deleteAt: new Date(Date.now() + minutes * 60_000).toISOString()} : {}),
  }))
})
$('#diff-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  const out = $('#diff-result')
  out.replaceChildren(el('p', {class: 'muted'}, `Comparing ${form.get('from')} with ${form.get('to')}...`))
  try {
    const diff = await api('GET', `/diff?${new URLSearchParams({from: form.get('from'), to: form.get('to'), mode: form.get('mode')})}`)
    out.replaceChildren(renderDiff(diff))
  } catch (error) {
    out.replaceChildren(el('p', {class: 'down'}, error.message))
  }
})

/** A diff as the CLI prints it, as tables: bytes per relation, changed objects, or rows per table. */
function renderDiff(diff) {
  const table = (headers, rows, empty) => el('table', {class: 'diff', 'data-mode': diff.mode},
    el('thead', {}, el('tr', {}, headers.map((header) => el('th', {scope: 'col'}, header)))),
    el('tbody', {}, rows.length > 0 ? rows : [el('tr', {}, el('td', {colspan: headers.length, class: 'muted'}, empty))]))
  const title = el('p', {}, `${diff.before} → ${diff.after} (${diff.seconds.toFixed(1)} s)`)
  if (diff.mode === 'size') {
    return el('div', {}, title, el('p', {}, `${bytes(diff.bytesChanged)} changed of ${bytes(diff.size2)}; ${bytes(diff.bytesShared)} known shared`),
      table(['Relation', 'Kind', 'Before', 'After', 'Changed'], diff.relations.map((item) => el('tr', {}, el('th', {scope: 'row'}, item.name), el('td', {}, item.kind), el('td', {}, bytes(item.size1)), el('td', {}, bytes(item.size2)), el('td', {}, bytes(item.bytesChanged)))), 'Nothing changed'))
  }

  if (diff.mode === 'schema') {
    return el('div', {}, title, table(['Object', 'Type', 'Change', 'Definition'], diff.objects.map((item) => el('tr', {},
      el('th', {scope: 'row'}, item.object), el('td', {}, item.type), el('td', {}, item.change), el('td', {}, el('pre', {}, item.diff)))), 'The schemas are the same'))
  }

  return el('div', {}, title, table(['Table', 'Added', 'Removed', 'Changed'], diff.tables.map((item) => el('tr', {},
    el('th', {scope: 'row'}, item.name), el('td', {}, item.added), el('td', {}, item.removed), el('td', {}, item.changed))), 'No rows differ'))
}

$('#monitor-pg').addEventListener('change', () => void refresh())
addEventListener('hashchange', () => {
  showPage()
  void refresh()
})
showPage()
void refresh()
setInterval(() => void refresh(), 3000)
