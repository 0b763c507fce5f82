// A node dies while hls.js plays (README, "Scaling out"): hlsd's own page
// in Debian's chromium (headless), driven by playwright-core, through
// nginx in front of several hlsd nodes; the test kills the item's node
// after a few segments and starts it again. Plays to the end and prints
// one `RESULT {json}` line: every hls.js error (fatal or not, with the
// fragment it concerned), where playback ended, what the video element
// buffered (one range: no hole), and each stall (ms).
// Usage: node web/tests/failover.mjs BASE_URL TOKEN ITEM_PATH
import { openItem, runScript } from "./page.mjs";

const [base, token, path] = process.argv.slice(2);
await runScript(async (browser) => {
  const page = await openItem(browser, base, token, path);
  await page.evaluate(() => {
    window.__errors = [];
    window.__stalls = [];
    const load = Hls.prototype.loadSource;
    Hls.prototype.loadSource = function (url) {
      this.on(Hls.Events.ERROR, (_e, d) => {
        const frag = d.frag ? `${d.frag.type}/${d.frag.sn}` : null;
        console.log(`hls.js error: ${d.type} ${d.details} fatal=${d.fatal} frag=${frag}`);
        window.__errors.push({ type: d.type, details: d.details, fatal: d.fatal, frag });
      });
      return load.call(this, url);
    };
    const v = document.getElementById("video");
    v.addEventListener("waiting", () => { window.__waitingSince = performance.now(); });
    v.addEventListener("playing", () => {
      if (window.__waitingSince) {
        window.__stalls.push(Math.round(performance.now() - window.__waitingSince));
        window.__waitingSince = null;
      }
    });
  });
  await page.click("#play");
  await page.waitForFunction(() => {
    const v = document.getElementById("video");
    return v.ended || v.error || window.__errors.some((e) => e.fatal);
  }, null, { timeout: 240000 });
  const end = await page.evaluate(() => {
    const v = document.getElementById("video");
    const buffered = [];
    for (let i = 0; i < v.buffered.length; i++) buffered.push([v.buffered.start(i), v.buffered.end(i)]);
    return {
      ended: v.ended,
      time: v.currentTime,
      duration: v.duration,
      error: v.error ? v.error.message || String(v.error.code) : null,
      errors: window.__errors,
      stalls: window.__stalls,
      buffered,
    };
  });
  end.shown = await page.textContent("#error");
  console.log(`RESULT ${JSON.stringify(end)}`);
}, () => ({
  time: document.getElementById("video").currentTime,
  errors: window.__errors,
  error: document.getElementById("error").textContent,
}));
