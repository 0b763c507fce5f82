// Audio and subtitle switching through hlsd's own page in Debian's
// chromium (headless), driven by playwright-core: play an item with two
// audio tracks and a text subtitle track, switch audio with the page's
// picker (hls.js AUDIO_TRACK_SWITCHED), keep playing, turn the subtitles
// on and see a cue active at its time. Prints one `RESULT {json}` line
// with the producers hlsd started (admin statistics) before and after the
// switch. Exits non-zero on the first failure.
// Usage: node web/tests/tracks.mjs BASE_URL TOKEN ITEM_PATH CUE_TIME CUE_TEXT
import { openItem, runScript } from "./page.mjs";

const [base, token, path, cueTime, cueText] = process.argv.slice(2);
const stats = async () => {
  const r = await fetch(`${base}/api/v1/admin/streaming-stats`, { headers: { authorization: `Bearer ${token}` } });
  return (await r.json()).producers_started;
};
await runScript(async (browser) => {
  const page = await openItem(browser, base, token, path);
  // hls.js errors in the log, with what the page does not show.
  await page.evaluate(() => {
    const v = document.getElementById("video");
    v.addEventListener("error", () => console.log(`media error: ${v.error && v.error.code} ${v.error && v.error.message}`));
    const load = Hls.prototype.loadSource;
    Hls.prototype.loadSource = function (url) {
      this.on(Hls.Events.ERROR, (_e, d) => console.log(`hls.js error: ${d.details} ${d.sourceBufferName || ""} ${d.error ? d.error.message : ""} fatal=${d.fatal}`));
      return load.call(this, url);
    };
  });
  await page.click("#play");
  await page.waitForFunction(() => {
    const v = document.getElementById("video");
    return current && current.hls && current.hls.audioTracks.length === 2 && v.currentTime > 1;
  }, null, { timeout: 60000 });
  const before = await stats();
  await page.evaluate(() => {
    window.__switched = null;
    current.hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_e, d) => { window.__switched = d.id; });
  });
  const t0 = Date.now();
  await page.selectOption("#audio-track", "1");
  await page.waitForFunction(() => window.__switched === 1, null, { timeout: 30000 });
  const switchedMs = Date.now() - t0;
  const at = await page.evaluate(() => document.getElementById("video").currentTime);
  await page.waitForFunction((t) => {
    const v = document.getElementById("video");
    return v.currentTime > t + 3 && !v.paused && !v.error;
  }, at, { timeout: 30000 });
  console.log(`audio switched after ${switchedMs} ms at ${at.toFixed(1)} s; playing on`);
  const afterSwitch = await stats();
  // Subtitles on (the embedded track), then a cue at its time.
  const sub = await page.evaluate(() => current.hls.subtitleTracks.findIndex((t) => t.url.includes("/subs-0/")));
  if (sub < 0) throw new Error("no embedded subtitle track in hls.js");
  await page.selectOption("#subtitle-track", String(sub));
  await page.evaluate((t) => { document.getElementById("video").currentTime = t; }, Number(cueTime));
  await page.waitForFunction((text) => Array.from(document.getElementById("video").textTracks).some(
    (t) => t.mode === "showing" && t.activeCues && Array.from(t.activeCues).some((c) => c.text.includes(text))),
  cueText, { timeout: 30000 });
  const shownAt = await page.evaluate(() => document.getElementById("video").currentTime);
  console.log(`cue "${cueText}" active at ${shownAt.toFixed(2)} s`);
  const shown = await page.textContent("#error");
  if (shown) throw new Error(`page error: ${shown}`);
  console.log(`RESULT ${JSON.stringify({ before, afterSwitch, switchedMs, cueAt: shownAt })}`);
}, () => ({
  hls: !!(current && current.hls),
  audioTracks: current && current.hls ? current.hls.audioTracks.length : null,
  time: document.getElementById("video").currentTime,
  status: document.getElementById("status").textContent,
  error: document.getElementById("error").textContent,
}));
