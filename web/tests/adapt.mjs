// The original beside the ladder, through hlsd's own page in Debian's
// chromium (headless), driven by playwright-core: play a copied title with
// the quality picker on Auto; hls.js must start on the original; throttle
// the network through the Chrome DevTools Protocol
// (Network.emulateNetworkConditions) below the original's BANDWIDTH: it
// must switch down to an encoded rung and keep playing with no fatal
// error; lift the throttle and pick the original: it must play on from
// the rung. Then pick a rung by hand, and open the title again: the choice
// is remembered. Prints
// one `RESULT {json}` line. Exits non-zero on the first failure.
// Usage: node web/tests/adapt.mjs BASE_URL TOKEN ITEM_PATH THROTTLE_BPS
import { networkThrottle, openItem, playLadder, runScript } from "./page.mjs";

const [base, token, path, throttleBps] = process.argv.slice(2);
await runScript(async (browser) => {
  const page = await openItem(browser, base, token, path);
  await page.evaluate(() => {
    // A 10 s buffer rather than 30 s: the 60 s film leaves room for a
    // switch down and one back up (the ABR rules are the same).
    Hls.DefaultConfig.maxBufferLength = 10;
    Hls.DefaultConfig.maxMaxBufferLength = 12;
    window.__fatal = null;
    window.__switches = [];
    window.__loaded = new Set();
    const load = Hls.prototype.loadSource;
    Hls.prototype.loadSource = function (url) {
      this.on(Hls.Events.ERROR, (_e, d) => {
        console.log(`hls.js error: ${d.details} fatal=${d.fatal}`);
        if (d.fatal) window.__fatal = d.details;
      });
      this.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
        window.__switches.push({ level: d.level, original: isOriginal(this.levels[d.level]), height: this.levels[d.level].height });
      });
      // Every variant a fragment was asked of: only these may have cost a producer.
      this.on(Hls.Events.FRAG_LOADING, (_e, d) => {
        if (d.frag.type === "main") {
          const url = this.levels[d.frag.level].url;
          window.__loaded.add(String(Array.isArray(url) ? url[0] : url).split("/").slice(-2)[0]);
        }
      });
      this.on(Hls.Events.FRAG_LOADED, (_e, d) => {
        if (d.frag.type !== "main") return;
        const st = d.frag.stats;
        console.log(`frag ${d.frag.sn} level ${d.frag.level} ${st.total} B ttfb ${(st.loading.first - st.loading.start).toFixed(0)} ms load ${(st.loading.end - st.loading.first).toFixed(0)} ms estimate ${(this.bandwidthEstimate / 1e6).toFixed(1)} Mb/s`);
      });
      return load.call(this, url);
    };
  });
  await playLadder(page);
  const start = await page.evaluate(() => ({
    labels: current.hls.levels.map(levelLabel),
    original: isOriginal(current.hls.levels[current.hls.currentLevel]),
    picker: Array.from(document.querySelectorAll("#quality option")).map((o) => o.textContent),
  }));
  console.log(`playing ${start.original ? "the original" : "a rung"} of ${start.labels.join(" / ")}; throttling to ${throttleBps} b/s`);
  if (!start.original) throw new Error("the player did not start on the original");
  const throttle = await networkThrottle(page);
  await throttle(Number(throttleBps));
  let t0 = Date.now();
  await page.waitForFunction(() => window.__switches.some((s) => !s.original), null, { timeout: 120000 });
  const downMs = Date.now() - t0;
  const down = await page.evaluate(() => window.__switches.find((s) => !s.original).height);
  const downAt = await page.evaluate(() => document.getElementById("video").currentTime);
  console.log(`switched down to ${down}p after ${downMs} ms at ${downAt.toFixed(1)} s`);
  await page.waitForFunction((t) => {
    const v = document.getElementById("video");
    return (v.currentTime > t + 4 || v.ended) && !v.error && !window.__fatal;
  }, downAt, { timeout: 120000 });
  // Unthrottled, hls.js's own estimate climbs back too slowly for a 60 s
  // film (its slow average has a 9 s half-life, weighted by load time, and
  // a segment of a rung that has just started waits for its encode): the
  // viewer picks the original, and it plays on from the rung.
  await throttle(0);
  const n = await page.evaluate(() => window.__switches.length);
  await page.waitForTimeout(2000);
  const estimate = await page.evaluate(() => current.hls.bandwidthEstimate);
  await page.selectOption("#quality", { label: "Original (1920×1080)" });
  t0 = Date.now();
  await page.waitForFunction((k) => window.__switches.slice(k).some((s) => s.original), n, { timeout: 60000 });
  const upMs = Date.now() - t0;
  const upAt = await page.evaluate(() => document.getElementById("video").currentTime);
  console.log(`back on the original ${upMs} ms after it was picked, at ${upAt.toFixed(1)} s (hls.js estimated ${(estimate / 1e6).toFixed(1)} Mb/s)`);
  await page.waitForFunction((t) => {
    const v = document.getElementById("video");
    return (v.currentTime > t + 4 || v.ended) && !v.error && !window.__fatal;
  }, upAt, { timeout: 60000 });
  const played = await page.evaluate(() => ({
    fatal: window.__fatal,
    error: document.getElementById("error").textContent,
    loaded: Array.from(window.__loaded),
    auto: document.querySelector("#quality option").textContent,
  }));
  if (played.fatal) throw new Error(`hls.js fatal error ${played.fatal}`);
  if (played.error) throw new Error(`page error: ${played.error}`);

  // A rung picked by hand is kept, and remembered for the next title.
  await page.selectOption("#quality", { label: "480p" });
  await page.waitForFunction(() => current.hls.levels[current.hls.currentLevel].height === 480 && !current.hls.autoLevelEnabled, null, { timeout: 30000 });
  const remembered = await page.evaluate(() => localStorage.getItem("hlsd-quality"));
  await page.click("#back");
  await page.click(`tr.item[data-path="${path}"]`);
  await page.waitForSelector("#detail:not(.hidden)");
  await page.click("#play");
  await page.waitForFunction(() => current && current.hls && current.hls.levels.length > 1 && current.hls.currentLevel >= 0, null, { timeout: 90000 });
  const again = await page.evaluate(() => ({
    height: current.hls.levels[current.hls.currentLevel].height,
    auto: current.hls.autoLevelEnabled,
    shown: document.querySelector("#quality").selectedOptions[0].textContent,
  }));
  console.log(`RESULT ${JSON.stringify({ start, down, downMs, downAt, estimate, upMs, upAt, played, remembered, again })}`);
}, () => ({
  levels: current && current.hls ? current.hls.levels.map((l) => l.height) : null,
  level: current && current.hls ? current.hls.currentLevel : null,
  switches: window.__switches,
  time: document.getElementById("video").currentTime,
  error: document.getElementById("error").textContent,
}));
