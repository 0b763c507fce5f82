// The quality ladder through hlsd's own page in Debian's chromium
// (headless), driven by playwright-core: play a transcode whose master
// playlist lists several rungs, then throttle the network through the
// Chrome DevTools Protocol (Network.emulateNetworkConditions) below the
// starting rung's BANDWIDTH; hls.js must switch down a rung
// (LEVEL_SWITCHED) and keep playing with no fatal error. Prints one
// `RESULT {json}` line. Exits non-zero on the first failure.
// Usage: node web/tests/ladder.mjs BASE_URL TOKEN ITEM_PATH THROTTLE_BPS
import { networkThrottle, openItem, playLadder, runScript } from "./page.mjs";

const [base, token, path, throttleBps] = process.argv.slice(2);
await runScript(async (browser) => {
  const page = await openItem(browser, base, token, path);
  await page.evaluate(() => {
    window.__fatal = null;
    window.__switches = [];
    const load = Hls.prototype.loadSource;
    Hls.prototype.loadSource = function (url) {
      this.on(Hls.Events.ERROR, (_e, d) => {
        console.log(`hls.js error: ${d.details} fatal=${d.fatal}`);
        if (d.fatal) window.__fatal = d.details;
      });
      this.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
        window.__switches.push({ level: d.level, height: this.levels[d.level].height, at: performance.now() });
      });
      return load.call(this, url);
    };
  });
  await playLadder(page);
  const start = await page.evaluate(() => ({
    heights: current.hls.levels.map((l) => l.height),
    bandwidths: current.hls.levels.map((l) => l.bitrate),
    height: current.hls.levels[current.hls.currentLevel].height,
  }));
  console.log(`playing at ${start.height}p of ${start.heights.join("/")}; throttling to ${throttleBps} b/s`);
  const throttle = await networkThrottle(page);
  await throttle(Number(throttleBps));
  const t0 = Date.now();
  await page.waitForFunction((h) => window.__switches.some((s) => s.height < h), start.height, { timeout: 120000 });
  const switchedMs = Date.now() - t0;
  const down = await page.evaluate((h) => window.__switches.find((s) => s.height < h).height, start.height);
  const at = await page.evaluate(() => document.getElementById("video").currentTime);
  console.log(`switched down to ${down}p after ${switchedMs} ms at ${at.toFixed(1)} s`);
  await page.waitForFunction((t) => {
    const v = document.getElementById("video");
    return (v.currentTime > t + 4 || v.ended) && !v.error && !window.__fatal;
  }, at, { timeout: 120000 });
  const end = await page.evaluate(() => ({
    time: document.getElementById("video").currentTime,
    height: current.hls.levels[current.hls.currentLevel].height,
    fatal: window.__fatal,
  }));
  if (end.fatal) throw new Error(`hls.js fatal error ${end.fatal}`);
  const shown = await page.textContent("#error");
  if (shown) throw new Error(`page error: ${shown}`);
  console.log(`RESULT ${JSON.stringify({ start, down, switchedMs, switchedAt: at, end })}`);
}, () => ({
  levels: current && current.hls ? current.hls.levels.map((l) => l.height) : null,
  level: current && current.hls ? current.hls.currentLevel : null,
  switches: window.__switches,
  time: document.getElementById("video").currentTime,
  error: document.getElementById("error").textContent,
}));
