// Plays files through hlsd's own page in Debian's chromium (headless),
// driven by playwright-core. Exits non-zero on the first failure.
// Usage: node web/tests/browser.mjs BASE_URL TOKEN OUT_DIR DIRECT[,DIRECT...] REMUX TRANSCODE FMP4...
// Each DIRECT is a file the page plays as it is (an MP4, a FLAC album
// track). Each FMP4 is a file the page's own profile gets as fMP4 HLS with
// its streams copied (AV1 in Matroska): it must play and seek too.
import { chromium } from "playwright-core";

const [base, token, outDir, direct, remux, transcode, ...fmp4] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
  ],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.on("console", (m) => console.log(`page ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  page.on("response", (r) => { if (r.status() >= 400) console.log(`HTTP ${r.status()} ${r.url().replace(/api_key=[^&]*/, "api_key=…")}`); });
  await page.goto(`${base}/`);
  await page.fill("#token", token);
  await page.click("#login-form button");
  await page.waitForSelector("tr.item");
  // Every video item's poster frame loads, 320 pixels wide.
  await page.waitForFunction(() => {
    const posters = Array.from(document.querySelectorAll("img.poster"));
    return posters.length > 0 && posters.every((p) => p.complete && p.naturalWidth === 320);
  }, null, { timeout: 30000 });
  const posters = await page.evaluate(() => document.querySelectorAll("img.poster").length);
  await page.screenshot({ path: `${outDir}/library.png` });
  console.log(`library listed, ${posters} poster frames`);

  const files = [...direct.split(",").map((f) => [f, "direct_play"]), [remux, "remux"], [transcode, "transcode"], ...fmp4.map((f) => [f, "fmp4"])];
  for (const [name, kind] of files) {
    if (!name) continue;
    await page.click(`tr.item[data-path="${name}"]`);
    await page.waitForSelector("#detail:not(.hidden)");
    if (kind === "fmp4") {
      await page.waitForFunction(() => document.getElementById("facts").textContent.includes("("));
      const facts = await page.textContent("#facts");
      console.log(`${name}: ${facts}`);
      if (!facts.includes("remux (fMP4)")) throw new Error(`${name} is not an fMP4 remux for this browser: ${facts}`);
    }
    const errors = [];
    await page.evaluate(() => {
      window.__videoErrors = [];
      document.getElementById("video").addEventListener("error", () => window.__videoErrors.push(document.getElementById("video").error?.code));
    });
    const t0 = Date.now();
    // A position stored for the transcode (the Rust test stores 4 s): the
    // page offers to resume there.
    const resume = kind === "transcode";
    if (resume) {
      await page.waitForSelector("#resume:not(.hidden)", { timeout: 10000 });
      console.log(`${name}: offers "${await page.textContent("#resume")}"`);
      await page.click("#resume");
      await page.waitForFunction(() => document.getElementById("video").currentTime >= 4, null, { timeout: 60000 });
      console.log(`${kind} ${name}: resumed at ${(await page.evaluate(() => document.getElementById("video").currentTime)).toFixed(2)} s`);
    } else {
      await page.click("#play");
    }
    await page.waitForFunction(() => document.getElementById("video").currentTime > 3, null, { timeout: 60000 });
    console.log(`${kind} ${name}: past 3 s after ${Date.now() - t0} ms`);
    errors.push(...(await page.evaluate(() => window.__videoErrors)));
    const shown = await page.textContent("#error");
    if (errors.length || shown) throw new Error(`${name}: errors ${JSON.stringify(errors)} ${shown}`);
    if (kind === "transcode" || kind === "fmp4") {
      const duration = await page.evaluate(() => document.getElementById("video").duration);
      const target = duration * 0.8;
      const t1 = Date.now();
      await page.evaluate((t) => { document.getElementById("video").currentTime = t; }, target);
      await page.waitForFunction(
        (t) => { const v = document.getElementById("video"); return !v.seeking && v.currentTime > t + 0.3 && !v.paused; },
        target,
        { timeout: 30000 },
      );
      console.log(`${kind} ${name}: seek to ${target.toFixed(1)} s of ${duration.toFixed(1)} s resumed after ${Date.now() - t1} ms`);
      if (kind === "transcode") await page.screenshot({ path: `${outDir}/playing.png` });
    }
    if (kind === "transcode") {
      // Hovering the seek bar shows the thumbnail of that place above it
      // (its sheet made on the first hover), and a click seeks there.
      const box = await page.locator("#seekbar").boundingBox();
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
      await page.waitForSelector("#preview.loaded", { timeout: 60000 });
      const shown = await page.evaluate(async () => {
        const p = document.getElementById("preview");
        const url = getComputedStyle(p).backgroundImage.slice(5, -2);
        const img = new Image();
        img.src = url;
        await img.decode();
        const r = p.getBoundingClientRect();
        const bar = document.getElementById("seekbar").getBoundingClientRect();
        return { sheet: p.dataset.sheet, start: p.dataset.start, w: r.width, h: r.height, above: r.bottom <= bar.top, sheetWidth: img.naturalWidth };
      });
      if (!shown.above || shown.sheetWidth !== 3200) throw new Error(`thumbnail not shown: ${JSON.stringify(shown)}`);
      await page.screenshot({ path: `${outDir}/scrubbing.png` });
      console.log(`thumbnail above the seek bar: ${shown.sheet} from ${shown.start} s, ${Math.round(shown.w)}x${Math.round(shown.h)} of a ${shown.sheetWidth} px sheet`);
      const duration = await page.evaluate(() => document.getElementById("video").duration);
      await page.mouse.click(box.x + box.width * 0.25, box.y + box.height / 2);
      await page.waitForFunction((t) => Math.abs(document.getElementById("video").currentTime - t) < 2, duration * 0.25, { timeout: 30000 });
      console.log(`seek bar click went to ${(await page.evaluate(() => document.getElementById("video").currentTime)).toFixed(1)} s of ${duration.toFixed(1)} s`);
    }
    await page.click("#back");
    await page.waitForSelector("#library:not(.hidden)");
  }
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
