// Shared by the page scripts: a run in Debian's chromium (headless), as
// the tests need it, that reports the page's state when it fails, and a
// page logged in with an item's detail view open, its console, errors and
// failed requests printed (tokens masked).
import { chromium } from "playwright-core";

/** Launches chromium (`CHROMIUM`, else /usr/bin/chromium), muted, autoplay allowed. */
async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
  });
}

/** A new page of `browser` on hlsd's page at `base`, logged in with `token`, on item `path`'s detail view. */
export async function openItem(browser, base, token, path) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.on("console", (m) => console.log(`page ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  page.on("response", (r) => { if (r.status() >= 400) console.log(`HTTP ${r.status()} ${r.url().replace(/(api_key|token)=[^&]*/, "$1=…")}`); });
  await page.goto(`${base}/`);
  await page.fill("#token", token);
  await page.click("#login-form button");
  await page.click(`tr.item[data-path="${path}"]`);
  await page.waitForSelector("#detail:not(.hidden)");
  return page;
}

/** Clicks Play and waits (90 s at most) until hls.js plays a title of several variants past 1 s. */
export async function playLadder(page) {
  await page.click("#play");
  await page.waitForFunction(() => {
    const v = document.getElementById("video");
    return current && current.hls && current.hls.levels.length > 1 && v.currentTime > 1;
  }, null, { timeout: 90000 });
}

/**
 * The link of `page`'s browser, through the Chrome DevTools Protocol
 * (Network.emulateNetworkConditions): the function returned sets it to
 * `bps` bits per second each way with 20 ms of latency, or lifts the limit
 * with 0.
 */
export async function networkThrottle(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  return (bps) => cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: bps ? 20 : 0,
    downloadThroughput: bps ? bps / 8 : -1,
    uploadThroughput: bps ? bps / 8 : -1,
  });
}

/**
 * Runs `body(browser)` in a fresh chromium and exits: 0 when it returns;
 * 1 when it throws, after printing what `state` (run in the page) returns
 * and the error.
 */
export async function runScript(body, state) {
  const browser = await launch();
  let failed = false;
  try {
    await body(browser);
  } catch (e) {
    try {
      const page = browser.contexts()[0]?.pages()[0];
      if (page) console.error(`state: ${JSON.stringify(await page.evaluate(state))}`);
    } catch (_) { /* the page is gone */ }
    console.error(`FAILED: ${e.message}`);
    failed = true;
  } finally {
    await browser.close();
  }
  process.exit(failed ? 1 : 0);
}
