// Loads a master playlist in Shaka Player (a second HLS client beside
// hls.js) in Debian's chromium (headless), driven by playwright-core, and
// checks what it makes of hlsd's thumbnails: the image track that
// `EXT-X-IMAGE-STREAM-INF` lists, and a thumbnail of it, fetched.
// Usage: node web/tests/shaka.mjs BASE_URL MASTER_PATH SECONDS...
// Prints one line per time: "thumbnail at T s: URI xywh=X,Y,W,H, N bytes".
import { chromium } from "playwright-core";
import { fileURLToPath } from "node:url";

const [base, master, ...times] = process.argv.slice(2);
const shaka = fileURLToPath(new URL("../node_modules/shaka-player/dist/shaka-player.compiled.js", import.meta.url));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
});
let failed = false;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.log(`page ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`page error: ${e}`));
  // hlsd's own origin, so the playlists need no CORS.
  await page.goto(`${base}/`);
  await page.addScriptTag({ path: shaka });
  const result = await page.evaluate(async ({ master, times }) => {
    shaka.polyfill.installAll();
    const video = document.createElement("video");
    video.muted = true;
    document.body.appendChild(video);
    const player = new shaka.Player();
    await player.attach(video);
    await player.load(master);
    const tracks = player.getImageTracks();
    const out = { tracks: tracks.map((t) => `${t.width}x${t.height} ${t.mimeType} tiles ${t.tilesLayout}`), thumbnails: [] };
    for (const t of times) {
      const th = await player.getThumbnails(tracks[0].id, t);
      const uri = th.uris[0];
      const r = await fetch(uri);
      const bytes = (await r.arrayBuffer()).byteLength;
      out.thumbnails.push({ t, uri: uri.replace(/token=[^&]*/, "token=…"), x: th.positionX, y: th.positionY, w: th.width, h: th.height, start: th.startTime, status: r.status, bytes });
    }
    await player.destroy();
    return out;
  }, { master, times: times.map(Number) });
  console.log(`image tracks: ${result.tracks.join("; ")}`);
  for (const th of result.thumbnails) {
    if (th.status !== 200 || th.bytes === 0) throw new Error(`thumbnail at ${th.t} s: ${JSON.stringify(th)}`);
    console.log(`thumbnail at ${th.t} s: ${th.uri.split("/").pop()} xywh=${th.x},${th.y},${th.w},${th.h} from ${th.start} s, ${th.bytes} bytes`);
  }
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
