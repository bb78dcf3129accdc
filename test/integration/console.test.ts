import {existsSync} from 'node:fs'
import path from 'node:path'

import {type ResultPromise, execa} from 'execa'
import pg from 'pg'
import type {Browser, Page} from 'playwright-core'

import {BIN, ROOT, TestHome} from '../helpers/zenith.js'

/**
 * Issue 15, the web console: `zenith console --no-open` starts the API server for the home and
 * prints the address with the token; Debian's chromium (headless, driven by playwright-core)
 * loads it, the token leaves the address bar, the overview lists a live pg and its snapshot, a
 * click makes a clone that a client can reach, and the monitoring graphs render. Screenshots go to
 * docs/ for the README. Ports 9770-9799.
 */
const CHROMIUM = '/usr/bin/chromium'
const describeBrowser = existsSync(CHROMIUM) ? describe : describe.skip
const PORT = 9799

describeBrowser('zenith console in chromium', () => {
  let home: TestHome
  let server: ResultPromise | undefined
  let browser: Browser | undefined
  let page: Page
  let address = ''
  let stopping = false

  beforeAll(async () => {
    home = await TestHome.create(9770)
    await home.ok(['pg', 'create', 'dev'])
    await home.query('dev', "create table items as select g as id, 'fixture' as note from generate_series(1, 42) g")
    await home.ok(['snapshot', 'create', 'dev@fixture'])
    server = execa('node', [BIN, 'console', '--no-open', '--port', String(PORT)], {env: home.env({ZENITH_METRICS_SECONDS: '1'}), reject: false})
    address = await new Promise<string>((resolve, reject) => {
      server!.stdout!.on('data', (chunk: Buffer) => {
        const match = /zenith console: (\S+)/.exec(chunk.toString())
        if (match) resolve(match[1])
      })
      void server!.then((result) => reject(new Error(`console exited: ${result.stderr}`)))
    })
    // A server that stops on its own (not by the SIGTERM of afterAll) says why in the test's log.
    void server.then((result) => {
      if (!stopping) console.error(`zenith console exited early (${result.exitCode ?? result.signal}):\n${result.stdout}\n${result.stderr}`)
    })
    const {chromium} = await import('playwright-core')
    // A fresh profile of its own each launch (playwright's), no network but loopback.
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    page = await browser.newPage({viewport: {width: 1280, height: 900}})
  }, 180_000)

  afterAll(async () => {
    await browser?.close()
    stopping = true
    server?.kill('SIGTERM')
    await server
    await home?.destroy()
  }, 120_000)

  test('a second `zenith console` reuses the running server', async () => {
    expect(address).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${PORT}/\\?token=.+`))
    const again = await home.ok(['console', '--no-open', '--json'])
    expect(again.json).toEqual({url: address, started: false})
  })

  test('the overview lists the live pg with a connection string, the disk and the snapshot; the token leaves the address bar', async () => {
    await page.goto(address)
    await page.waitForSelector('tr[data-pg="dev"] td.up')
    expect(page.url()).toBe(`http://127.0.0.1:${PORT}/`)
    const row = page.locator('tr[data-pg="dev"]')
    await expect(row.textContent()).resolves.toMatch(/primary.*up: running.*localhost:9770/)
    await expect(row.locator('code').textContent()).resolves.toMatch(/^postgresql:\/\/postgres:\*\*\*@localhost:9770\/postgres$/)
    await expect(page.locator('#disk li').first().textContent()).resolves.toMatch(/^local \(local\): \S+ free of \S+/)
    await expect(page.locator('#instance-status').textContent()).resolves.toMatch(/^OK: .*1\/1 pgs up, 0 clones/)
    await page.screenshot({path: path.join(ROOT, 'docs', 'console-overview.png'), fullPage: true})
    // A reload keeps working: the token stays in the tab's session.
    await page.reload()
    await page.waitForSelector('tr[data-pg="dev"] td.up')
  }, 60_000)

  test('a click on Clone makes a clone that a client reaches, with the snapshot\'s data', async () => {
    await page.click('nav a[data-page="snapshots"]')
    const snapshot = page.locator('tr[data-snapshot="dev@fixture"]')
    await snapshot.waitFor()
    await snapshot.getByRole('button', {name: 'Clone', exact: true}).click()
    await page.click('nav a[data-page="clones"]')
    const clone = page.locator('tr[data-clone]')
    await clone.locator('td.up').waitFor({timeout: 60_000})
    await expect(clone.locator('td.up').textContent()).resolves.toMatch(/^OK/)
    await page.screenshot({path: path.join(ROOT, 'docs', 'console-clones.png'), fullPage: true})
    const id = await clone.getAttribute('data-clone')
    const token = new URL(address).searchParams.get('token')!
    const view = await (await fetch(`http://127.0.0.1:${PORT}/clone/${id}`, {headers: {'Verification-Token': token}})).json() as {db: {connStr: string}}
    const client = new pg.Client({connectionString: view.db.connStr})
    await client.connect()
    try {
      expect((await client.query('select count(*)::int as n from items')).rows).toEqual([{n: 42}])
    } finally {
      await client.end()
    }

    // Protect, then destroy from the page: the protected clone stays until it is unprotected.
    await clone.getByRole('button', {name: 'Protect', exact: true}).click()
    await clone.getByRole('button', {name: 'Unprotect', exact: true}).waitFor()
    await clone.getByRole('button', {name: 'Destroy', exact: true}).click()
    await page.locator('#message').filter({hasText: /protected/i}).waitFor()
    await clone.getByRole('button', {name: 'Unprotect', exact: true}).click()
    await clone.getByRole('button', {name: 'Protect', exact: true}).waitFor()
    await clone.getByRole('button', {name: 'Destroy', exact: true}).click()
    await page.locator('#clone-list td.muted').waitFor({timeout: 60_000})
    expect((await home.ok(['pg', 'list', '--json'])).json.map((item: {name: string}) => item.name)).toEqual(['dev'])
  }, 120_000)

  test('the monitoring page draws the graphs of a pg from the server\'s samples', async () => {
    await home.query('dev', 'insert into items select g, \'load\' from generate_series(100, 2000) g')
    await page.click('nav a[data-page="monitoring"]')
    for (const metric of ['cpuPercent', 'rssBytes', 'connections', 'tps', 'cacheHitRatio', 'databaseBytes']) {
      // A flat line (no connections) has no height: attached, not visible, is what is asked.
      await page.locator(`figure[data-metric="${metric}"] polyline`).waitFor({state: 'attached', timeout: 30_000})
    }

    const points = await page.locator('figure[data-metric="databaseBytes"] polyline').getAttribute('points')
    expect(points!.split(' ').length).toBeGreaterThan(1)
    await expect(page.locator('figure[data-metric="rssBytes"] h3').textContent()).resolves.toMatch(/^Memory \(RSS\): \d+(\.\d)?[KMG]$/)
    await page.screenshot({path: path.join(ROOT, 'docs', 'console-monitoring.png'), fullPage: true})
  }, 60_000)

  test('the snapshots page compares a snapshot with the live pg, row by row', async () => {
    await page.click('nav a[data-page="snapshots"]')
    await page.selectOption('#diff-form select[name="from"]', 'dev@fixture')
    await page.selectOption('#diff-form select[name="to"]', 'dev@CURRENT')
    await page.selectOption('#diff-form select[name="mode"]', 'data')
    await page.getByRole('button', {name: 'Show differences', exact: true}).click()
    const row = page.locator('#diff-result table[data-mode="data"] tbody tr').filter({hasText: 'items'})
    await row.waitFor({timeout: 60_000})
    // The monitoring test inserted ids 100..2000 into dev after the fixture.
    await expect(row.locator('td').allTextContents()).resolves.toEqual(['1901', '0', '0'])
    await page.screenshot({path: path.join(ROOT, 'docs', 'console-diff.png'), fullPage: true})
  }, 90_000)

  test('keyboard: every page is reachable from the navigation with Tab and Enter', async () => {
    await page.goto(`http://127.0.0.1:${PORT}/?page=keyboard`)
    await page.waitForSelector('tr[data-pg="dev"]')
    await page.keyboard.press('Tab')
    await page.keyboard.press('Tab')
    await page.keyboard.press('Enter')
    await page.locator('#snapshots').waitFor({state: 'visible'})
    expect(await page.locator('#overview').isHidden()).toBe(true)
  }, 30_000)
})
