// Loads one page in Debian's Chromium (headless, through playwright-core), waits until the network is idle,
// scrolls down once (Redoc renders the areas below the first screen as they come into view), and reports every URL
// the page asked for, its visible text and a screenshot: to show a page works offline.
//
//   node browser_page.mjs <page URL> <screenshot path>
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const requested = [];
  page.on("request", (request) => requested.push(request.url()));
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url, { waitUntil: "networkidle", timeout: 60_000 });
  await page.mouse.wheel(0, 4000);
  // Redoc lists an area's operations once it comes into view.
  await page.waitForFunction(() => document.body.innerText.includes("Operations"), null, { timeout: 15_000 });
  const text = await page.evaluate(() => document.body.innerText);
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ requested, text, errors }));
} finally {
  await browser.close();
}
