// The seek bar under the video, with a thumbnail of the place under the
// pointer while hovering or dragging. The pictures come from the item's
// WebVTT thumbnails track (/api/v1/media/{id}/thumbnails.vtt), whose cues
// name a region of a JPEG sheet ("thumbnails/sheet_N.jpg#xywh=x,y,w,h");
// a sheet still being made answers 503 and is asked for again.
"use strict";

const Scrub = (() => {
  const video = document.getElementById("video");
  const bar = document.getElementById("seekbar");
  const fill = document.getElementById("seek-fill");
  const preview = document.getElementById("preview");
  const label = document.getElementById("preview-time");
  let cues = [];
  let base = "";
  let key = "";
  let hovering = false;
  let dragging = false;
  let lastT = 0;
  const sheets = new Map(); // URL → true once loaded, else its Image

  function seconds(t) {
    const p = t.split(":").map(Number);
    return p.reduce((acc, v) => acc * 60 + v, 0);
  }

  function parse(text) {
    const out = [];
    for (const block of text.split(/\n\n+/)) {
      const lines = block.trim().split("\n");
      const times = lines.findIndex((l) => l.includes("-->"));
      if (times < 0 || !lines[times + 1]) continue;
      const [a, b] = lines[times].split("-->").map((s) => seconds(s.trim()));
      const [sheet, frag] = lines[times + 1].split("#xywh=");
      const [x, y, w, h] = (frag || "0,0,0,0").split(",").map(Number);
      out.push({ start: a, end: b, sheet, x, y, w, h });
    }
    return out;
  }

  function duration() {
    if (Number.isFinite(video.duration) && video.duration > 0) return video.duration;
    return cues.length ? cues[cues.length - 1].end : 0;
  }

  function timeAt(ev) {
    const r = bar.getBoundingClientRect();
    const f = Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1);
    return { t: f * duration(), x: f * r.width };
  }

  function sheetUrl(c) {
    return `${base}${c.sheet}${c.sheet.includes("?") ? "&" : "?"}api_key=${encodeURIComponent(key)}`;
  }

  // Whether the sheet is loaded; starts (or retries) loading it if not.
  function ready(url) {
    if (sheets.get(url) === true) return true;
    if (!sheets.has(url)) {
      const img = new Image();
      img.onload = () => { sheets.set(url, true); if (hovering || dragging) show(lastT); };
      img.onerror = () => setTimeout(() => { sheets.delete(url); if (hovering || dragging) show(lastT); }, 1000);
      img.src = url;
      sheets.set(url, img);
    }
    return false;
  }

  function show(t, x) {
    lastT = t;
    if (x !== undefined) preview.style.left = `${x}px`;
    const m = Math.floor(t / 60);
    label.textContent = `${m}:${String(Math.floor(t % 60)).padStart(2, "0")}`;
    const c = cues.find((q) => t >= q.start && t < q.end) || cues[cues.length - 1];
    if (!c) return;
    preview.style.width = `${c.w}px`;
    preview.style.height = `${c.h}px`;
    preview.classList.remove("hidden");
    const url = sheetUrl(c);
    if (ready(url)) {
      preview.style.backgroundImage = `url("${url}")`;
      preview.style.backgroundPosition = `-${c.x}px -${c.y}px`;
      preview.dataset.sheet = c.sheet;
      preview.dataset.start = String(c.start);
      preview.classList.add("loaded");
    } else {
      preview.classList.remove("loaded");
    }
  }

  function hide() {
    preview.classList.add("hidden");
    preview.classList.remove("loaded");
  }

  bar.addEventListener("pointermove", (ev) => {
    hovering = true;
    const { t, x } = timeAt(ev);
    show(t, x);
    if (dragging) fill.style.width = `${(100 * t) / (duration() || 1)}%`;
  });
  bar.addEventListener("pointerleave", () => { hovering = false; if (!dragging) hide(); });
  bar.addEventListener("pointerdown", (ev) => {
    dragging = true;
    bar.setPointerCapture(ev.pointerId);
    const { t, x } = timeAt(ev);
    show(t, x);
  });
  bar.addEventListener("pointerup", (ev) => {
    if (!dragging) return;
    dragging = false;
    const { t } = timeAt(ev);
    if (duration() > 0) video.currentTime = t;
    if (!hovering) hide();
  });
  video.addEventListener("timeupdate", () => {
    if (!dragging) fill.style.width = `${(100 * video.currentTime) / (duration() || 1)}%`;
  });

  // Shows the seek bar for item `id` (thumbnails when it has some);
  // `null` hides it.
  async function load(id, token) {
    cues = [];
    sheets.clear();
    hide();
    fill.style.width = "0";
    bar.classList.toggle("hidden", !id);
    if (!id) return;
    base = `/api/v1/media/${id}/`;
    key = token;
    try {
      const r = await fetch(`${base}thumbnails.vtt`, { headers: { Authorization: `Bearer ${token}` } });
      if (r.ok) cues = parse(await r.text());
    } catch (_) {}
  }

  return { load };
})();
