// Drives Debian's Chromium (headless, through playwright-core) through the /_kit/ page: load it, press "Sign in and
// load the dashboard", wait until the page says it is done or failed, and report what it shows as one JSON line.
//
//   node browser_dashboard.mjs <page URL> <screenshot path>
//
// CHROMIUM overrides /usr/bin/chromium. Nothing but the URLs given is reached: the flags below keep Chromium's own
// background traffic (updates, sync, field trials) off.
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node browser_dashboard.mjs <page URL> <screenshot path>");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 900 } });
  const consoleLines = [];
  page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  const failedRequests = [];
  page.on("requestfailed", (request) => failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`));
  await page.goto(url, { waitUntil: "load" });
  await page.click("#sign-in");
  await page.waitForSelector('#status[data-state="done"], #status[data-state="failed"]', { timeout: 30_000 });
  const report = await page.evaluate(() => ({
    origin: location.origin,
    state: document.getElementById("status").dataset.state,
    message: document.getElementById("status").textContent,
    figures: Object.fromEntries(
      [...document.querySelectorAll("[data-figure]")].map((cell) => [
        cell.dataset.figure,
        { value: JSON.parse(cell.dataset.value), text: cell.textContent },
      ]),
    ),
  }));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ ...report, console: consoleLines, failedRequests }));
} finally {
  await browser.close();
}
