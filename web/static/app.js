// hlsd's page: the library, a detail view with a player, preload on the
// detail view (cancelled on leaving it), session state and errors.
"use strict";

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem("hlsd-token");
let items = [];
let current = null; // { item, preloadSession, hls, poll }

// What this browser plays, as an hlsd client profile: asked of Media
// Source Extensions (what hls.js feeds) and of the <video> element (direct
// play, native HLS). The server decides direct play, remux or transcode,
// MPEG-TS or fMP4, from it.
const PROFILE = JSON.stringify((() => {
  const ms = window.ManagedMediaSource || window.MediaSource;
  const mse = (t) => !!(ms && ms.isTypeSupported && ms.isTypeSupported(t));
  const probe = document.createElement("video");
  const element = (t) => probe.canPlayType(t) !== "";
  const plays = (t) => mse(t) || element(t);
  const video = [];
  if (plays('video/mp4; codecs="avc1.640028"')) {
    video.push({ codec: "h264", profiles: ["constrained-baseline", "baseline", "main", "high"] });
  }
  if (plays('video/mp4; codecs="hvc1.1.6.L120.90"')) {
    const ten = plays('video/mp4; codecs="hvc1.2.4.L120.90"');
    video.push({ codec: "hevc", profiles: ten ? ["main", "main-10"] : ["main"], max_bit_depth: ten ? 10 : 8 });
  }
  if (element('video/webm; codecs="vp8"')) video.push({ codec: "vp8" });
  if (plays('video/mp4; codecs="vp09.00.10.08"')) {
    video.push({ codec: "vp9", max_bit_depth: plays('video/mp4; codecs="vp09.02.10.10"') ? 10 : 8 });
  }
  if (plays('video/mp4; codecs="av01.0.05M.08"')) {
    video.push({ codec: "av1", max_bit_depth: plays('video/mp4; codecs="av01.0.05M.10"') ? 10 : 8 });
  }
  const audio = [];
  for (const [codec, types] of [
    ["aac", ['audio/mp4; codecs="mp4a.40.2"']],
    ["mp3", ["audio/mpeg"]],
    ["opus", ['audio/mp4; codecs="opus"', 'audio/webm; codecs="opus"']],
    ["vorbis", ['audio/webm; codecs="vorbis"']],
    ["flac", ['audio/mp4; codecs="flac"']],
    ["ac3", ['audio/mp4; codecs="ac-3"']],
    ["eac3", ['audio/mp4; codecs="ec-3"']],
  ]) {
    if (types.some(plays)) audio.push({ codec });
  }
  const containers = [];
  if (element("video/mp4")) containers.push("mp4", "mov");
  if (element("video/webm")) containers.push("webm");
  // Audio files played as they are (a music library costs no encode).
  if (element("audio/mpeg")) containers.push("mp3");
  if (element("audio/flac")) containers.push("flac");
  if (element('audio/ogg; codecs="opus"') || element('audio/ogg; codecs="vorbis"')) containers.push("ogg");
  if (element("audio/aac")) containers.push("aac");
  const fmp4 = mse('video/mp4; codecs="avc1.640028"') || element("application/vnd.apple.mpegurl");
  return { name: "page", containers, video, audio, fmp4 };
})());
const profileQuery = `profile=${encodeURIComponent(PROFILE)}`;

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${token}`, ...(options.headers || {}) },
  });
  if (!res.ok && res.status !== 302) {
    let message = `${res.status}`;
    try {
      const body = await res.json();
      message = `${body.error.code}: ${body.error.message}`;
    } catch (_) {}
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return res;
}

function fmtDuration(s) {
  if (s == null) return "?";
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

// "HDR10 (PQ) 1000 nits", "HLG" or "Dolby Vision 8.1" for HDR video,
// else "".
function hdrLabel(video) {
  const h = video && video.hdr;
  if (!h) return "";
  const dv = h.dolby_vision;
  if (dv) return `Dolby Vision ${dv.profile}.${dv.compatibility_id}`;
  const name = h.transfer === "pq" ? "HDR10 (PQ)" : "HLG";
  return h.mastering_max_nits ? `${name} ${Math.round(h.mastering_max_nits)} nits` : name;
}

function codecs(item) {
  const hdr = hdrLabel(item.video);
  const v = item.video ? item.video.codec + (hdr ? ` ${hdr}` : "") : "no video";
  const a = item.audio.length ? item.audio.map((x) => x.codec).join("+") : "no audio";
  return `${v} / ${a}`;
}

function show(section) {
  for (const id of ["login", "library", "detail"]) $(id).classList.toggle("hidden", id !== section);
  $("logout").classList.toggle("hidden", section === "login");
}

const PAGE = 100;
let total = 0;

// One page of the library after the ones shown; `fresh` starts over (a
// new search).
async function loadPage(fresh) {
  if (fresh) items = [];
  const q = $("search").value.trim();
  const params = new URLSearchParams({ offset: String(items.length), limit: String(PAGE) });
  if (q) params.set("q", q);
  const page = await (await api(`/api/v1/media?${params}`)).json();
  total = page.total;
  items = items.concat(page.items);
  const rows = items.map((it, i) => {
    const decision = it.probed ? it.playback || "unplayable" : "pending";
    const res = it.video ? `${it.video.width}×${it.video.height}` : "";
    // A poster frame for what has video, fetched as the row scrolls in.
    const poster = it.video && it.probed
      ? `<img class="poster" loading="lazy" alt="" src="/api/v1/media/${it.id}/thumbnail?api_key=${encodeURIComponent(token)}">`
      : "";
    return `<tr class="item" data-i="${i}" data-path="${escapeHtml(it.path)}">
      <td>${poster}</td><td>${escapeHtml(it.path)}</td><td>${fmtDuration(it.duration_s)}</td><td>${res}</td>
      <td>${escapeHtml(codecs(it))}</td>
      <td><span class="badge ${decision}">${decision}</span><div class="reasons">${escapeHtml(it.reasons.join(", "))}</div></td></tr>`;
  });
  $("items").innerHTML = rows.join("");
  for (const tr of document.querySelectorAll("tr.item")) {
    tr.addEventListener("click", () => openDetail(items[Number(tr.dataset.i)]));
  }
  $("count").textContent = `${items.length} of ${total}`;
  $("more").classList.toggle("hidden", items.length >= total);
}

async function openLibrary() {
  try {
    await loadPage(true);
  } catch (e) {
    if (e.status === 401) {
      localStorage.removeItem("hlsd-token");
      $("login-error").textContent = "That token was not accepted.";
      show("login");
      return;
    }
    throw e;
  }
  show("library");
  location.hash = "";
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function openDetail(item) {
  await leaveDetail();
  current = { item, preloadSession: null, hls: null, poll: null };
  // The decision for this browser, not the generic one the list shows.
  try {
    item = await (await api(`/api/v1/media/${item.id}?${profileQuery}`)).json();
    current.item = item;
  } catch (_) {}
  $("title").textContent = item.path;
  Scrub.load(item.video && item.duration_s ? item.id : null, token);
  const packaging = item.packaging === "fmp4" && item.playback !== "direct_play" ? " (fMP4)" : "";
  $("facts").textContent = `${fmtDuration(item.duration_s)} · ${codecs(item)} · ${item.playback || "unplayable"}${packaging}`;
  $("status").textContent = "";
  $("error").textContent = "";
  $("retry").classList.add("hidden");
  $("resume").classList.add("hidden");
  show("detail");
  location.hash = item.id;
  if (!item.playable) {
    $("error").textContent = `This file cannot be played: ${item.reasons.join(", ")}`;
    return;
  }
  // Where this user stopped last time (saved every 10 s while playing).
  try {
    const p = await (await api(`/api/v1/progress/${item.id}`)).json();
    const end = item.duration_s || Infinity;
    if (current && current.item.id === item.id && p.position_s >= 2 && p.position_s < end - 1) {
      current.resumeAt = p.position_s;
      $("resume").textContent = `Resume from ${fmtDuration(p.position_s)}`;
      $("resume").classList.remove("hidden");
    }
  } catch (_) {} // 404: never played
  // Warm the session up while the viewer reads this page.
  try {
    const body = await (await api(`/api/v1/hls/preload/${item.id}?${profileQuery}`, { method: "POST" })).json();
    if (body.status === "warming") {
      current.preloadSession = body.session_id;
      $("status").textContent = "warming up…";
    }
  } catch (e) {
    $("status").textContent = `preload: ${e.message}`;
  }
}

async function leaveDetail() {
  if (!current) return;
  const c = current;
  current = null;
  Scrub.load(null);
  if (c.poll) clearInterval(c.poll);
  if (c.played) saveProgress(c, true);
  if (c.hls) c.hls.destroy();
  const video = $("video");
  video.pause();
  video.removeAttribute("src");
  video.load();
  // A page navigated away from cancels its preload at once.
  if (c.preloadSession && !c.played) {
    api(`/api/v1/hls/${c.preloadSession}`, { method: "DELETE", keepalive: true }).catch(() => {});
  }
}

function fail(message) {
  $("error").textContent = message;
  $("retry").classList.remove("hidden");
}

// Saves where the viewer is, at most every 10 s (and on leaving).
function saveProgress(c, now) {
  const t = $("video").currentTime;
  if (!(t > 0) || (!now && Date.now() - (c.savedAt || 0) < 10000)) return;
  c.savedAt = Date.now();
  api(`/api/v1/progress/${c.item.id}`, {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ position_s: Math.round(t * 1000) / 1000 }),
    keepalive: true,
  }).catch(() => {});
}

function play(startAt) {
  const c = current;
  if (!c) return;
  c.played = true;
  $("resume").classList.add("hidden");
  const from = typeof startAt === "number" ? startAt : 0;
  $("error").textContent = "";
  $("retry").classList.add("hidden");
  const video = $("video");
  const url = `/api/v1/stream/${c.item.id}?api_key=${encodeURIComponent(token)}&${profileQuery}` +
    (from > 0 ? `&start=${from}` : "");
  if (c.hls) { c.hls.destroy(); c.hls = null; }
  if (c.item.playback === "direct_play") {
    video.src = url;
    if (from > 0) video.addEventListener("loadedmetadata", () => { video.currentTime = from; }, { once: true });
    addTextTracks(c, video);
    $("status").textContent = "direct play";
  } else if (window.Hls && Hls.isSupported()) {
    const hls = new Hls();
    c.hls = hls;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) fail(`playback error: ${data.type} ${data.details}${data.response ? ` (${data.response.code})` : ""}`);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => { applyQuality(c); fillHlsPickers(c); });
    hls.on(Hls.Events.LEVEL_SWITCHED, () => fillQuality(c));
    hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, () => fillHlsPickers(c));
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, () => fillHlsPickers(c));
    hls.loadSource(url);
    hls.attachMedia(video);
    pollSession(c);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url; // native HLS (Safari)
    pollSession(c);
  } else {
    fail("This browser cannot play HLS and hls.js is not installed (run scripts/setup.sh).");
    return;
  }
  video.play().catch((e) => $("status").textContent = `press play (${e.name})`);
}

// Track pickers: names from the language tags, choices remembered per
// language in this browser.
const languageNames = (() => {
  try { return new Intl.DisplayNames([navigator.language], { type: "language" }); } catch (_) { return null; }
})();
function languageName(tag) {
  if (!tag) return "";
  try { return (languageNames && languageNames.of(tag)) || tag; } catch (_) { return tag; }
}
function trackLabel(t, i) {
  const lang = languageName(t.lang || t.language);
  const name = t.name || t.title || "";
  return [lang, name && name !== lang ? name : ""].filter(Boolean).join(" – ") || `Track ${i + 1}`;
}
function remember(kind, lang) {
  if (lang) localStorage.setItem(`hlsd-${kind}-language`, lang); else localStorage.removeItem(`hlsd-${kind}-language`);
}
function remembered(kind) { return localStorage.getItem(`hlsd-${kind}-language`); }

function fillSelect(select, options, selected, onChange) {
  select.replaceChildren(...options.map(([value, label]) => {
    const o = document.createElement("option");
    o.value = value; o.textContent = label; return o;
  }));
  select.value = String(selected);
  select.onchange = () => onChange(select.value);
}

function fillHlsPickers(c) {
  const hls = c.hls;
  if (!hls) return;
  fillQuality(c);
  if (!c.pickedRemembered) {
    c.pickedRemembered = true;
    const a = remembered("audio");
    const ai = hls.audioTracks.findIndex((t) => t.lang === a);
    if (a && ai >= 0 && ai !== hls.audioTrack) hls.audioTrack = ai;
    const s = remembered("subtitle");
    const si = hls.subtitleTracks.findIndex((t) => t.lang === s);
    if (s && si >= 0) hls.subtitleTrack = si;
    if (s === "off") hls.subtitleTrack = -1;
  }
  fillSelect($("audio-track"), hls.audioTracks.map((t, i) => [i, trackLabel(t, i)]), hls.audioTrack, (v) => {
    hls.audioTrack = Number(v);
    remember("audio", hls.audioTracks[Number(v)].lang);
  });
  fillSelect($("subtitle-track"), [[-1, "Off"], ...hls.subtitleTracks.map((t, i) => [i, trackLabel(t, i)])], hls.subtitleTrack, (v) => {
    hls.subtitleTrack = Number(v);
    remember("subtitle", Number(v) < 0 ? "off" : hls.subtitleTracks[Number(v)].lang);
  });
}

// The quality picker: Auto (hls.js's ABR), the original (the variant
// whose URI names the copy, "video-copy"), and each encoded rung by its
// height; the one playing is shown. The choice is remembered in this
// browser ("auto", "original" or a height) and applied to the next title.
function isOriginal(level) {
  const url = Array.isArray(level.url) ? level.url[0] : level.url;
  return /\/video-copy[^/]*\//.test(url || "");
}
function levelLabel(level) {
  return isOriginal(level) ? `Original (${level.width}×${level.height})` : `${level.height}p`;
}
function applyQuality(c) {
  const hls = c.hls;
  const want = localStorage.getItem("hlsd-quality") || "auto";
  const i = want === "original"
    ? hls.levels.findIndex(isOriginal)
    : hls.levels.findIndex((l) => !isOriginal(l) && String(l.height) === want);
  if (want !== "auto" && i >= 0) {
    hls.currentLevel = i;
  } else {
    // Auto starts where the master playlist says (its first variant, as
    // the Apple HLS authoring spec has clients do): the original of a
    // copied title, the 720p rung of a ladder. hls.js would otherwise
    // start from its own default estimate of 500 kb/s.
    hls.startLevel = hls.firstLevel;
  }
}
function fillQuality(c) {
  const hls = c.hls;
  if (!hls || !hls.levels.length) return;
  const playing = hls.levels[hls.currentLevel];
  const auto = `Auto${playing ? ` (${levelLabel(playing)})` : ""}`;
  fillSelect($("quality"), [[-1, auto], ...hls.levels.map((l, i) => [i, levelLabel(l)])],
    hls.manualLevel, (v) => {
      const i = Number(v);
      hls.currentLevel = i;
      localStorage.setItem("hlsd-quality", i < 0 ? "auto" : isOriginal(hls.levels[i]) ? "original" : String(hls.levels[i].height));
      fillQuality(c);
    });
}

// Direct play: text subtitles as <track> elements (whole-file WebVTT).
function addTextTracks(c, video) {
  video.querySelectorAll("track").forEach((t) => t.remove());
  const text = (c.item.subtitles || []).filter((s) => s.kind === "text");
  text.forEach((s) => {
    const t = document.createElement("track");
    t.kind = "subtitles";
    t.srclang = s.language || "";
    t.label = trackLabel(s, s.index);
    t.src = `/api/v1/media/${c.item.id}/subtitles/${s.index}.vtt?api_key=${encodeURIComponent(token)}`;
    video.appendChild(t);
  });
  const pick = remembered("subtitle");
  const tracks = () => Array.from(video.textTracks);
  tracks().forEach((t) => { t.mode = t.language === pick ? "showing" : "disabled"; });
  fillSelect($("subtitle-track"), [[-1, "Off"], ...text.map((s, i) => [i, trackLabel(s, s.index)])],
    tracks().findIndex((t) => t.mode === "showing"), (v) => {
      tracks().forEach((t, i) => { t.mode = i === Number(v) ? "showing" : "disabled"; });
      remember("subtitle", Number(v) < 0 ? "off" : text[Number(v)].language);
    });
  const audio = c.item.audio || [];
  fillSelect($("audio-track"), audio.slice(0, 1).map((a, i) => [i, trackLabel(a, i)]), 0, () => {});
  fillSelect($("quality"), [[0, "Original"]], 0, () => {});
}

function pollSession(c) {
  if (c.poll) clearInterval(c.poll);
  const tick = async () => {
    try {
      const list = await (await api("/api/v1/sessions")).json();
      const s = list.find((x) => x.media_id === c.item.id);
      if (!s) return;
      const pct = s.percent == null ? "" : ` · ${s.percent.toFixed(0)} % made`;
      $("status").textContent = `${s.mode} · ${s.state}${pct} · encoder at ${s.position_s.toFixed(0)} s · ${s.speed}× real time`;
      if (s.state === "failed") fail(`the session failed: ${s.error}`);
    } catch (e) {
      $("status").textContent = e.message;
    }
  };
  tick();
  c.poll = setInterval(tick, 1000);
}

$("video").addEventListener("error", () => {
  const e = $("video").error;
  if (e && current) fail(`video error ${e.code}: ${e.message || ""}`);
});
$("play").addEventListener("click", () => play(0));
$("resume").addEventListener("click", () => play(current && current.resumeAt));
$("video").addEventListener("timeupdate", () => { if (current && current.played) saveProgress(current, false); });
$("more").addEventListener("click", () => loadPage(false));
let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadPage(true), 250);
});
$("retry").addEventListener("click", () => play(0));
$("back").addEventListener("click", async () => { await leaveDetail(); openLibrary(); });
$("logout").addEventListener("click", async () => {
  await leaveDetail();
  localStorage.removeItem("hlsd-token");
  token = null;
  show("login");
});
$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  localStorage.setItem("hlsd-token", token);
  $("login-error").textContent = "";
  openLibrary();
});
window.addEventListener("pagehide", () => { leaveDetail(); });

if (token) openLibrary(); else show("login");
