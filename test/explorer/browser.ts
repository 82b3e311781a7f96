// Headless Chromium for the explorer tests: Debian's /usr/bin/chromium (installed by .ci/run) driven by
// playwright-core, with a fresh profile and nothing that reaches the network by itself.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.FEDTUNE_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENS = join(process.cwd(), 'out', 'explorer-screens');

/**
 * .ci/run installs chromium while the tests run, and names a file that it writes apt-get's exit status to once the
 * install ends (FEDTUNE_CHROMIUM_INSTALL); openBrowser waits for it, up to this long more than a hook's own timeout.
 */
export const INSTALL_WAIT_MS = process.env.FEDTUNE_CHROMIUM_INSTALL ? 10 * 60_000 : 0;

async function chromiumInstalled(ms = INSTALL_WAIT_MS): Promise<void> {
  const status = process.env.FEDTUNE_CHROMIUM_INSTALL;
  if (!status) return;
  const until = Date.now() + ms;
  while (!existsSync(status)) {
    if (Date.now() > until) throw new Error(`chromium was still being installed after ${ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const code = readFileSync(status, 'utf8').trim();
  if (code !== '0')
    throw new Error(`installing chromium failed (apt-get exit status ${code}); .ci/run prints its log`);
}

export interface Browser {
  page: Page;
  /** Every console error and uncaught exception the page had: a test fails on any. */
  errors: string[];
  screenshot(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<Browser> {
  await chromiumInstalled();
  const profile = mkdtempSync(join(tmpdir(), 'fedtune-chromium-'));
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('console', (m) => {
    // A source answering 502 is logged by Chromium as a failed resource: those are expected, and checked on the page.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  mkdirSync(SCREENS, { recursive: true });
  return {
    page,
    errors,
    screenshot: async (name) => {
      await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
