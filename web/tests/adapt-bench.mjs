// The page driver of bench/adapt.py: plays one title through hls.js in
// Debian's chromium (headless), driven by playwright-core, throttles the
// network to 6 Mb/s (Chrome DevTools Protocol,
// Network.emulateNetworkConditions) 10 s of wall clock after playback
// starts, and counts the stalls the viewer sees. Modes:
//   hlsd-remux-only  hlsd's own page, with every variant but the original
//                    removed from hls.js right after MANIFEST_PARSED
//                    (hls.removeLevel, highest index first): what the
//                    player had before the ladder, the copy alone;
//   hlsd-auto        hlsd's own page, quality on Auto (the original beside
//                    the ladder);
//   peer             a plain page (URL) with hls.js on one transcoded
//                    rendition; it defines `current.hls`, #play, #video
//                    and isOriginal() (always false) as hlsd's page does.
// A stall starts on a `waiting` event once playback has started
// (currentTime > 0.5) and ends on `playing`. Plays 60 s of media, until
// the video ends, or for LIMIT_S of wall clock from the click on play,
// whichever comes first. Prints one `RESULT {json}` line; asserts nothing
// of speed (exits non-zero only when the page cannot play at all).
// Usage: node web/tests/adapt-bench.mjs URL MODE TOKEN ITEM_PATH [LIMIT_S]
import { networkThrottle, openItem, runScript } from "./page.mjs";

const [url, mode, token, path, limitArg] = process.argv.slice(2);
const LIMIT_S = Number(limitArg || 240);
const THROTTLE_BPS = 6000000;
const THROTTLE_AFTER_MS = 10000;
const PLAY_S = 60;
if (!["hlsd-remux-only", "hlsd-auto", "peer"].includes(mode)) {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

await runScript(async (browser) => {
  let page;
  if (mode === "peer") {
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.on("console", (m) => console.log(`page ${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console.log(`page error: ${e}`));
    page.on("response", (r) => { if (r.status() >= 400) console.log(`HTTP ${r.status()} ${r.url()}`); });
    await page.goto(url);
  } else {
    page = await openItem(browser, url, token, path);
  }
  await page.evaluate((remuxOnly) => {
    const v = document.getElementById("video");
    const t0 = performance.now();
    const wall = () => (performance.now() - t0) / 1000;
    window.__fatal = null;
    window.__switches = [];
    window.__awayAt = null; // wall s of the first switch away from the original
    window.__throttledAt = null; // wall s of the throttle
    window.__stalls = [];
    window.__wall = wall;
    let open = null;
    v.addEventListener("waiting", () => {
      if (open || !(v.currentTime > 0.5)) return;
      open = { at: v.currentTime, start: wall(), s: null,
        after_switch: window.__awayAt !== null, after_throttle: window.__throttledAt !== null };
      window.__stalls.push(open);
      console.log(`stall at ${v.currentTime.toFixed(1)} s`);
    });
    v.addEventListener("playing", () => {
      if (!open) return;
      open.s = wall() - open.start;
      console.log(`stall at ${open.at.toFixed(1)} s lasted ${open.s.toFixed(2)} s`);
      open = null;
    });
    window.__closeStall = () => { if (open) { open.s = wall() - open.start; open = null; } };
    const load = Hls.prototype.loadSource;
    Hls.prototype.loadSource = function (src) {
      this.on(Hls.Events.ERROR, (_e, d) => {
        console.log(`hls.js error: ${d.details} fatal=${d.fatal}`);
        if (d.fatal) window.__fatal = d.details;
      });
      if (remuxOnly) {
        // Before hls.js starts loading (it does once every MANIFEST_PARSED
        // handler has run): keep the original alone, as a master playlist
        // without the ladder would have it.
        this.on(Hls.Events.MANIFEST_PARSED, () => {
          for (let i = this.levels.length - 1; i >= 0; i--) {
            if (!isOriginal(this.levels[i]) && this.levels.length > 1) this.removeLevel(i);
          }
          this.startLevel = Math.max(0, this.levels.findIndex(isOriginal));
          console.log(`remux only: ${this.levels.length} level(s) left`);
        });
      }
      this.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
        const l = this.levels[d.level];
        const s = { level: d.level, height: l.height, bitrate: l.bitrate, original: isOriginal(l), at: v.currentTime, wall: wall() };
        if (!s.original && window.__awayAt === null && window.__switches.some((x) => x.original)) window.__awayAt = s.wall;
        window.__switches.push(s);
        console.log(`switched to ${s.original ? "the original" : `${s.height}p`} at ${s.at.toFixed(1)} s`);
      });
      return load.call(this, src);
    };
  }, mode === "hlsd-remux-only");
  const t0 = Date.now();
  await page.click("#play");
  await page.waitForFunction(() => document.getElementById("video").currentTime > 0 || window.__fatal,
    null, { timeout: 90000 });
  const startMs = Date.now() - t0;
  console.log(`playing after ${startMs} ms; throttling to ${THROTTLE_BPS} b/s in ${THROTTLE_AFTER_MS} ms`);
  await page.waitForTimeout(THROTTLE_AFTER_MS);
  await (await networkThrottle(page))(THROTTLE_BPS);
  const throttledAt = await page.evaluate(() => {
    window.__throttledAt = window.__wall();
    return document.getElementById("video").currentTime;
  });
  let ended = false;
  while (Date.now() - t0 < LIMIT_S * 1000) {
    const st = await page.evaluate((playS) => {
      const v = document.getElementById("video");
      return { done: v.ended || v.currentTime >= playS - 0.25, failed: !!(window.__fatal || v.error) };
    }, PLAY_S);
    if (st.done) { ended = true; break; }
    if (st.failed) break;
    await page.waitForTimeout(500);
  }
  const r = await page.evaluate(() => {
    window.__closeStall();
    const v = document.getElementById("video");
    const hls = current && current.hls;
    const level = hls ? hls.levels[hls.currentLevel] : null;
    const sum = (xs) => xs.reduce((a, s) => a + s.s, 0);
    const away = window.__stalls.filter((s) => s.after_switch);
    const throttled = window.__stalls.filter((s) => s.after_throttle);
    const switched = window.__awayAt !== null;
    return {
      stalls: window.__stalls.length,
      stalled_s: sum(window.__stalls),
      stalls_after_switch: switched ? away.length : null,
      stalled_after_switch_s: switched ? sum(away) : null,
      stalls_after_throttle: throttled.length,
      stalled_after_throttle_s: sum(throttled),
      final_height: level ? level.height : null,
      final_original: level ? isOriginal(level) : null,
      levels: hls ? hls.levels.map((l) => ({ height: l.height, bitrate: l.bitrate, original: isOriginal(l) })) : [],
      switches: window.__switches,
      stall_list: window.__stalls,
      played_s: v.currentTime,
      estimate_bps: hls ? hls.bandwidthEstimate : null,
      fatal: window.__fatal,
      error: v.error ? v.error.code : null,
    };
  });
  const wallS = (Date.now() - t0) / 1000;
  console.log(`RESULT ${JSON.stringify({ mode, ...r, ended, wall_s: wallS, start_ms: startMs, throttled_at_s: throttledAt })}`);
}, () => ({
  levels: typeof current !== "undefined" && current && current.hls ? current.hls.levels.map((l) => l.height) : null,
  switches: window.__switches,
  stalls: window.__stalls,
  time: document.getElementById("video").currentTime,
  fatal: window.__fatal,
}));
