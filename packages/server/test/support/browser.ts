/**
 * Headless Chromium for the inspector's tests and bench: Debian's `chromium` (installed by
 * `make chromium`) driven by playwright-core, which downloads no browser of its own.
 */
import { mkdirSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { REPO_ROOT } from "./host-process.js";

export const CHROMIUM = process.env.TOOLBRIDGE_CHROMIUM ?? "/usr/bin/chromium";
/** Screenshots the tests keep (gitignored); `make inspector-images` copies those of docs/images from here. */
export const ARTIFACTS = `${REPO_ROOT}test-artifacts/inspector`;

/** Chromium as root on a machine with no network beyond loopback: no sandbox, no background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

export interface InspectorPage {
  readonly page: Page;
  /** Errors the page threw (uncaught), which a test must not leave behind. */
  readonly errors: string[];
  close(): Promise<void>;
}

/**
 * A page of its own (own context, so own sessionStorage) on the inspector at `url`, at
 * `route` (e.g. "tools/scale"), with `token` already given to it when there is one.
 */
export async function openInspector(
  browser: Browser,
  url: string,
  route: string,
  token?: string,
): Promise<InspectorPage> {
  const context: BrowserContext = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  if (token !== undefined) {
    // Runs in the page, before its own scripts: the token the page's calls carry.
    await page.addInitScript(
      ({ key, value }) =>
        (
          globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }
        ).sessionStorage.setItem(key, value),
      { key: "toolbridge.inspector.token", value: token },
    );
  }
  await page.goto(`${url.replace(/#.*$/, "")}#/${route}`);
  return { page, errors, close: () => context.close() };
}

/** Saves a screenshot of the page, scrolled to its top, as test-artifacts/inspector/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.evaluate("window.scrollTo(0, 0)");
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png` });
}
