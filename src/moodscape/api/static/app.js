/* moodscape web page: plain JS over the /api/v1 JSON API, charts with the bundled plotly.js. */
"use strict";

const API = "/api/v1";
const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#86bcb6", "#d37295", "#8cd17d", "#b6992d", "#499894", "#79706e", "#fabfd2",
];
const MUTED = "#c5cad3";
const METHOD_NAMES = { pca: "PCA", umap: "UMAP", tsne: "t-SNE" };
const SCATTERGL_THRESHOLD = 5000;
/* Valence/arousal are on a 0–1 scale; the regressor can overshoot it a little, so the axes show a margin. */
const VA_MARGIN = 0.05;
const PLOT_CONFIG = { responsive: true, displaylogo: false };
const BASE_LAYOUT = {
  margin: { l: 56, r: 16, t: 24, b: 48 },
  paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "#ffffff",
  font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#1f2933" },
  hoverlabel: { align: "left" },
};
/* Russell's circumplex: the four quadrants of the valence (x) / arousal (y) plane. */
const QUADRANTS = [
  { x: 0.98, y: 0.98, text: "happy / excited", xanchor: "right", yanchor: "top" },
  { x: 0.02, y: 0.98, text: "angry / tense", xanchor: "left", yanchor: "top" },
  { x: 0.02, y: 0.02, text: "sad / depressed", xanchor: "left", yanchor: "bottom" },
  { x: 0.98, y: 0.02, text: "calm / content", xanchor: "right", yanchor: "bottom" },
];

const state = {
  labels: [], // label items from GET /labels, in label index order
  labelInfo: {}, // canonical label -> item (+ index)
  map: null, // columns from GET /map, with valence/arousal aliases of x/y
  projections: {}, // method -> promise of GET /projection
  selection: undefined,
  metrics: undefined,
  activeTab: "map",
  rendered: new Set(),
  lists: {}, // list element id -> {items, options}: re-rendered after a rename
  exports: {}, // export key -> {name, ids}
  method: "pca",
  colorBy: "label",
  pad: { mode: "target", target: { valence: 0.5, arousal: 0.5 }, start: null, end: null, results: [], path: [] },
  analysis: null,
  playing: null, // the track in the audio player
};

/* ---------- small DOM helpers ---------- */

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "style" && typeof value === "object") {
      for (const [name, css] of Object.entries(value)) node.style.setProperty(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), css);
    }
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 2) {
  if (value === undefined || value === null || Number.isNaN(Number(value))) return "—";
  return Number(value).toFixed(digits);
}

const pct = (value, digits = 1) => (value === undefined || value === null ? "—" : `${Number(value).toFixed(digits)}%`);

function asTagList(tags) {
  if (Array.isArray(tags)) return tags;
  if (typeof tags === "string" && tags.trim()) return tags.split(",").map((t) => t.trim()).filter(Boolean);
  return [];
}

function table(headers, rows, attrs = {}) {
  return el("table", { class: "data-table", ...attrs },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, row.map((cell) => el("td", {}, cell))))));
}

function notAvailable(container, what) {
  $(container).replaceChildren(el("p", { class: "muted not-available" }, `${what}: not available.`));
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/* ---------- labels: display names and colours ---------- */

const labelName = (label) => state.labelInfo[label]?.label_name ?? label;

/** Text for Plotly, which reads a few HTML tags in names and hover text: user text is escaped. */
const escapeHtml = (text) => String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const plotName = (label) => escapeHtml(labelName(label));

function labelColor(label) {
  const index = state.labelInfo[label]?.index;
  return index === undefined ? MUTED : PALETTE[index % PALETTE.length];
}

function labelChip(label) {
  return el("span", { class: "chip", style: { "--chip": labelColor(label) }, "data-label": label }, labelName(label));
}

/* ---------- the one fetch helper ---------- */

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function formatDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => {
      const where = (item.loc || []).filter((part) => !["body", "query", "path"].includes(part)).join(".");
      return where ? `${where}: ${item.msg}` : item.msg;
    }).join("; ");
  }
  return JSON.stringify(detail);
}

async function describeError(response) {
  let detail = response.statusText;
  try {
    const body = await response.clone().json();
    detail = formatDetail(body.detail ?? body);
  } catch {
    detail = (await response.text().catch(() => "")) || detail;
  }
  return `Error ${response.status}: ${detail}`;
}

/**
 * fetch `path`; non-2xx responses become an ApiError whose message is shown in `errorTarget`
 * (an element) or in the page's error banner (`quiet` shows nothing). `json` is sent as the body.
 * Returns parsed JSON, text, or (with `raw`) the Response itself.
 */
async function api(path, { json, errorTarget, quiet = false, raw = false, ...init } = {}) {
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers = { "Content-Type": "application/json", ...(init.headers || {}) };
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    const message = `Network error (${path}): ${err.message}`;
    if (!quiet) reportError(message, errorTarget);
    throw new ApiError(message, 0);
  }
  if (!response.ok) {
    const message = await describeError(response);
    if (!quiet) reportError(message, errorTarget);
    throw new ApiError(message, response.status);
  }
  if (raw) return response;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function reportError(message, target) {
  const node = target || $("error-text");
  node.textContent = message;
  (target || $("error-banner")).hidden = false;
}

function clearError(target) {
  if (!target) return;
  target.textContent = "";
  target.hidden = true;
}

/** Run an async UI action; errors were already shown by api(), anything else goes to the banner. */
function guarded(action) {
  return (...args) => Promise.resolve(action(...args)).catch((err) => {
    if (!(err instanceof ApiError)) {
      console.error(err);
      reportError(String(err.message || err));
    }
  });
}

/* ---------- Plotly helpers ---------- */

const boundEvents = new Set();

async function plot(id, traces, layout, config = {}) {
  const gd = $(id);
  await Plotly.react(gd, traces, { ...BASE_LAYOUT, ...layout }, { ...PLOT_CONFIG, ...config });
  gd.dataset.rendered = "true";
  gd.dataset.traces = String(traces.length);
  return gd;
}

function onPlot(id, event, handler) {
  const key = `${id}:${event}`;
  if (boundEvents.has(key)) return;
  boundEvents.add(key);
  $(id).on(event, guarded(handler));
}

function clearPlot(id, message) {
  const gd = $(id);
  if (gd.data) Plotly.purge(gd);
  for (const key of [...boundEvents]) if (key.startsWith(`${id}:`)) boundEvents.delete(key);
  delete gd.dataset.rendered;
  gd.replaceChildren(el("p", { class: "muted not-available" }, message));
}

function resizeCharts(section) {
  if (!Plotly.Plots?.resize) return;
  for (const gd of $(`section-${section}`).querySelectorAll(".js-plotly-plot")) Plotly.Plots.resize(gd);
}

/** Axis range of a valence/arousal plane: 0–1 plus a margin, wide enough for every value of the catalogue. */
function vaRange() {
  let [low, high] = [-VA_MARGIN, 1 + VA_MARGIN];
  for (const column of [state.map?.valence, state.map?.arousal]) {
    for (const value of column || []) {
      if (value === null) continue;
      if (value - 0.02 < low) low = value - 0.02;
      if (value + 0.02 > high) high = value + 0.02;
    }
  }
  return [low, high];
}

/** Layout of a valence/arousal plane: 0–1 scale, midlines, named quadrants (square, same range on both axes). */
function vaLayout(extra = {}) {
  const axis = {
    range: vaRange(), zeroline: false, gridcolor: "#eef0f3", tickvals: [0, 0.25, 0.5, 0.75, 1], constrain: "domain",
  };
  return {
    xaxis: { ...axis, title: { text: "valence (negative → positive)" } },
    yaxis: { ...axis, title: { text: "arousal (calm → energetic)" }, scaleanchor: "x", scaleratio: 1 },
    shapes: [
      { type: "line", x0: 0.5, x1: 0.5, y0: 0, y1: 1, line: { color: "#9aa5b1", width: 1, dash: "dot" }, layer: "below" },
      { type: "line", x0: 0, x1: 1, y0: 0.5, y1: 0.5, line: { color: "#9aa5b1", width: 1, dash: "dot" }, layer: "below" },
    ],
    annotations: QUADRANTS.map((q) => ({
      ...q, xref: "x", yref: "y", showarrow: false, font: { size: 13, color: "#7b8794" },
    })),
    hovermode: "closest",
    ...extra,
  };
}

function hoverText(trackId, label, tags) {
  const tagText = escapeHtml(asTagList(tags).join(", ")) || "(no tags)";
  return `<b>${escapeHtml(trackId)}</b><br>${plotName(label)}<br>${tagText}`;
}

/** One scatter trace per label (legend = display names), points carry their track id. */
function tracesByLabel(columns, xKey, yKey, size) {
  const n = columns.track_id.length;
  const groups = new Map(state.labels.map((item) => [item.label, []]));
  for (let i = 0; i < n; i += 1) {
    const label = columns.label[i];
    if (columns[xKey][i] === null || columns[yKey][i] === null) continue;
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(i);
  }
  const type = n > SCATTERGL_THRESHOLD ? "scattergl" : "scatter";
  return [...groups].filter(([, rows]) => rows.length).map(([label, rows]) => ({
    type,
    mode: "markers",
    name: plotName(label),
    meta: label,
    x: rows.map((i) => columns[xKey][i]),
    y: rows.map((i) => columns[yKey][i]),
    customdata: rows.map((i) => columns.track_id[i]),
    text: rows.map((i) => hoverText(columns.track_id[i], label, columns.tags[i])),
    hovertemplate: "%{text}<extra></extra>",
    marker: { color: labelColor(label), size: size ?? (n > 2000 ? 4 : 8), opacity: 0.85, line: { width: 0 } },
    cliponaxis: false,
  }));
}

/* ---------- tabs ---------- */

const SECTIONS = {
  map: renderMoodMap,
  labels: renderLabels,
  embedding: renderEmbedding,
  model: renderModel,
  recommend: renderRecommend,
  analyze: renderAnalyze,
};

function showTab(name) {
  state.activeTab = name;
  for (const button of document.querySelectorAll("#tabs [data-tab]")) {
    const active = button.dataset.tab === name;
    button.classList.toggle("active", active);
    button.setAttribute("aria-selected", String(active));
  }
  for (const section of document.querySelectorAll("main > .section")) section.hidden = section.dataset.section !== name;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  return renderSection(name);
}

async function renderSection(name) {
  if (state.rendered.has(name)) {
    resizeCharts(name);
    return;
  }
  state.rendered.add(name);
  try {
    await SECTIONS[name]();
  } catch (err) {
    state.rendered.delete(name); // try again next time the tab is shown
    throw err;
  }
}

/* ---------- track lists, audio, playlists ---------- */

/** "Artist - Title" from the file's tags, the title alone, or the track id when it has no title. */
function trackName(track) {
  if (!track.title) return track.track_id;
  return track.artist ? `${track.artist} - ${track.title}` : track.title;
}

function playTrack(track) {
  const player = $("player");
  if (!track.audio_url) {
    $("now-playing").textContent = `${trackName(track)} (no audio available)`;
    return;
  }
  state.playing = track;
  player.src = track.audio_url;
  player.dataset.trackId = track.track_id;
  showNowPlaying();
  player.play().catch(() => { /* autoplay refused or no audio device: the controls still work */ });
}

function showNowPlaying() {
  const track = state.playing;
  if (track) $("now-playing").textContent = `${trackName(track)} · ${labelName(track.label)}`;
}

function trackItem(track, { score, numbered }, index) {
  const details = [`V ${fmt(track.valence)}`, `A ${fmt(track.arousal)}`];
  if (score && track.score !== undefined && track.score !== null) details.push(`score ${fmt(track.score, 3)}`);
  if (track.target) details.push(`target (${fmt(track.target.valence)}, ${fmt(track.target.arousal)})`);
  return el("li", { "data-track-id": track.track_id, "data-testid": "track-item" },
    el("button", {
      type: "button", class: "play", "data-testid": "play", disabled: !track.audio_url,
      title: track.audio_url ? `play ${trackName(track)}` : "no audio for this track",
      onclick: () => playTrack(track),
    }, "▶"),
    el("span", { class: "track-id", title: track.title ? track.track_id : undefined },
      numbered ? `${index + 1}. ${trackName(track)}` : trackName(track)),
    labelChip(track.label),
    el("span", { class: "meta" }, details.join(" · ")),
    el("span", { class: "tags" }, asTagList(track.tags).slice(0, 6).join(", ")));
}

/** Render `items` into the <ol> `listId`; remembered so a rename can re-render it. */
function renderTrackList(listId, items, options = {}) {
  state.lists[listId] = { items, options };
  const list = $(listId);
  list.replaceChildren(...items.map((item, index) => trackItem(item, options, index)));
  list.dataset.count = String(items.length);
  if (!items.length) list.append(el("li", { class: "muted empty" }, options.empty || "No tracks."));
}

function rerenderLists() {
  for (const [listId, { items, options }] of Object.entries(state.lists)) renderTrackList(listId, items, options);
}

function setExport(key, name, ids) {
  state.exports[key] = { name, ids };
  for (const button of document.querySelectorAll(`[data-export-for="${key}"] button`)) button.disabled = !ids.length;
}

function filenameFrom(disposition) {
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition || "");
  return match ? decodeURIComponent(match[1]) : null;
}

async function exportPlaylist(key, format) {
  const { name, ids } = state.exports[key] || {};
  if (!ids?.length) return;
  const response = await api(`${API}/playlists/export?format=${format}`, {
    method: "POST", json: { name, track_ids: ids }, raw: true,
  });
  const blob = await response.blob();
  const filename = filenameFrom(response.headers.get("content-disposition"))
    || `${name.replace(/[^\w.-]+/g, "_")}.${format}`;
  const link = el("a", { href: URL.createObjectURL(blob), download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function setupExportRows() {
  for (const row of document.querySelectorAll("[data-export-for]")) {
    const key = row.dataset.exportFor;
    row.append(el("span", { class: "muted small" }, "Export:"));
    for (const format of ["m3u", "m3u8", "json"]) {
      row.append(el("button", {
        type: "button", disabled: true, "data-testid": `export-${key}-${format}`,
        onclick: guarded(() => exportPlaylist(key, format)),
      }, format.toUpperCase()));
    }
    row.append(el("span", { class: "muted small" }, "MPD:"));
    for (const [label, clear] of [["replace & play", true], ["append", false]]) {
      row.append(el("button", {
        type: "button", disabled: true, "data-testid": `mpd-${key}-${clear ? "replace" : "append"}`,
        title: "Send to a running MPD (shift-click: change its address and music directory)",
        onclick: guarded((event) => pushToMpd(key, event, clear)),
      }, label));
    }
  }
}

const MPD_SETTINGS_KEY = "moodscape-mpd";

/** MPD's address and music_directory, asked once and kept in this browser; `ask` asks again. */
function mpdSettings(ask) {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(MPD_SETTINGS_KEY) || "null"); } catch { saved = null; }
  if (saved && !ask) return saved;
  const folder = window.prompt("MPD's music_directory (from mpd.conf):", saved?.music_directory || "");
  if (!folder) return null;
  const address = window.prompt("MPD's host:port", saved ? `${saved.host}:${saved.port}` : "127.0.0.1:6600");
  if (!address) return null;
  const colon = address.lastIndexOf(":");
  saved = colon > 0 ? { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) } : { host: address, port: 6600 };
  saved.music_directory = folder;
  try { localStorage.setItem(MPD_SETTINGS_KEY, JSON.stringify(saved)); } catch { /* private mode: ask next time */ }
  return saved;
}

async function pushToMpd(key, event, clear) {
  const { ids } = state.exports[key] || {};
  if (!ids?.length) return;
  const settings = mpdSettings(event.shiftKey);
  if (!settings) return;
  const result = await api(`${API}/mpd/push`, { method: "POST", json: { ...settings, track_ids: ids, clear, play: clear } });
  event.target.title = `queued ${result.queued} tracks in MPD (its queue: ${result.queue_length})`;
}

/* ---------- Mood map ---------- */

/** Columns of GET /map (x = valence, y = arousal), also named valence/arousal here. */
async function loadMap() {
  if (!state.map) {
    const body = await api(`${API}/map`);
    const columns = body.points ?? body;
    state.map = { ...columns, valence: columns.valence ?? columns.x, arousal: columns.arousal ?? columns.y };
  }
  return state.map;
}

async function renderMoodMap() {
  const points = await loadMap();
  const traces = tracesByLabel(points, "valence", "arousal");
  if (!traces.length) {
    clearPlot("mood-map", "No valence / arousal predictions in this bundle.");
    return;
  }
  await plot("mood-map", traces, vaLayout({
    dragmode: "lasso",
    legend: { title: { text: "label" }, itemclick: "toggle", x: 1.02, y: 1, yanchor: "top" },
    margin: { l: 56, r: 16, t: 40, b: 48 },
  }));
  onPlot("mood-map", "plotly_click", (event) => {
    const point = event.points?.[0];
    if (point?.customdata) return selectTrack(point.customdata);
  });
  onPlot("mood-map", "plotly_selected", (event) => setPlaylist(event ? event.points.map((p) => p.customdata) : []));
  onPlot("mood-map", "plotly_deselect", () => setPlaylist([]));
}

async function selectTrack(trackId) {
  const id = encodeURIComponent(trackId);
  const track = await api(`${API}/tracks/${id}`);
  showTrackDetail(track);
  playTrack(track);
  const similar = await api(`${API}/tracks/${id}/similar?limit=10`);
  renderTrackList("similar-list", similar.items, { score: true, empty: "No similar tracks." });
}

function showTrackDetail(track) {
  const probs = Object.entries(track.probabilities || {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
  $("track-detail").replaceChildren(
    el("div", { class: "detail-head" }, el("strong", { "data-testid": "detail-track-id" }, track.track_id), labelChip(track.label)),
    track.title ? el("div", { "data-testid": "detail-title" },
      [trackName(track), track.album].filter(Boolean).join(" · ")) : "",
    el("div", { class: "small" }, `valence ${fmt(track.valence)} · arousal ${fmt(track.arousal)} · `
      + `p ${fmt(track.probability)} · ${fmt(track.duration, 0)} s`),
    el("div", { class: "small muted" }, probs.map(([label, p]) => `${labelName(label)} ${fmt(p)}`).join(" · ")),
    el("div", { class: "small tags" }, asTagList(track.tags).join(", ") || "(no tags)"));
  $("track-detail").classList.remove("muted");
}

async function setPlaylist(ids) {
  const unique = [...new Set(ids)].slice(0, 1000);
  $("playlist-count").textContent = String(unique.length);
  $("playlist-hint").textContent = ids.length > 1000 ? "First 1,000 tracks of the selection." : "";
  if (!unique.length) {
    renderTrackList("playlist-list", [], { empty: "Empty selection." });
    setExport("playlist", "selection", []);
    return;
  }
  const { items } = await api(`${API}/tracks/lookup`, { method: "POST", json: { track_ids: unique } });
  renderTrackList("playlist-list", items, {});
  setExport("playlist", "mood-map-selection", items.map((t) => t.track_id));
}

/* ---------- Labels ---------- */

async function loadLabels() {
  const { items } = await api(`${API}/labels`);
  state.labels = items;
  state.labelInfo = Object.fromEntries(items.map((item, index) => [item.label, { ...item, index }]));
  renderLabelFilter();
}

async function renderLabels() {
  renderLabelCards();
  await Promise.all([renderKCurves(), ...state.labels.map((item) => renderLabelBars(item))]);
}

async function renderKCurves() {
  if (state.selection === undefined) {
    state.selection = await api(`${API}/selection`, { quiet: true }).catch(() => null);
  }
  const selection = state.selection;
  if (!selection?.scan?.length) {
    clearPlot("k-curves", "K-selection curves: not available.");
    return;
  }
  $("selection-reason").textContent = `K = ${selection.k}: ${selection.reason || ""}`;
  const fixed = selection.rule === "fixed" || selection.scan.length < 2;
  $("k-curves").classList.toggle("note-only", fixed);
  if (fixed) {
    clearPlot("k-curves", `K = ${selection.k} was fixed (cluster.k), so no range of K was scanned: `
      + "there are no curves to compare. Set cluster.k = \"auto\" to scan cluster.k_range.");
    return;
  }
  const noStructure = selection.structure === "none";
  const ks = selection.scan.map((row) => row.k);
  const at = (k, key) => selection.scan.find((row) => row.k === k)?.[key];
  const traces = [
    { type: "scatter", mode: "lines+markers", name: "inertia (elbow)", x: ks, y: selection.scan.map((r) => r.inertia),
      line: { color: PALETTE[0] }, hovertemplate: "K=%{x}<br>inertia %{y:.1f}<extra></extra>" },
    { type: "scatter", mode: "lines+markers", name: "silhouette", x: ks, y: selection.scan.map((r) => r.silhouette),
      yaxis: "y2", line: { color: PALETTE[1] }, hovertemplate: "K=%{x}<br>silhouette %{y:.3f}<extra></extra>" },
  ];
  if (selection.elbow_k !== undefined && selection.elbow_k !== null) {
    traces.push({ type: "scatter", mode: "markers", name: `elbow K=${selection.elbow_k}`, x: [selection.elbow_k],
      y: [at(selection.elbow_k, "inertia")], marker: { size: 14, symbol: "diamond-open", color: PALETTE[0], line: { width: 2 } } });
  }
  if (selection.best_silhouette_k !== undefined && selection.best_silhouette_k !== null) {
    traces.push({ type: "scatter", mode: "markers", name: `best silhouette K=${selection.best_silhouette_k}`,
      x: [selection.best_silhouette_k], y: [at(selection.best_silhouette_k, "silhouette")], yaxis: "y2",
      marker: { size: 14, symbol: "star-open", color: PALETTE[1], line: { width: 2 } } });
  }
  await plot("k-curves", traces, {
    xaxis: { title: { text: "K (number of clusters)" }, dtick: 1 },
    yaxis: { title: { text: "inertia" }, color: PALETTE[0] },
    yaxis2: { title: { text: "silhouette" }, overlaying: "y", side: "right", color: PALETTE[1], showgrid: false, tickmode: "auto" },
    shapes: [{ type: "line", xref: "x", yref: "paper", x0: selection.k, x1: selection.k, y0: 0, y1: 1,
      line: { color: "#e15759", width: 2, dash: "dash" } }],
    annotations: [{ xref: "x", yref: "paper", x: selection.k, y: 1.02,
      text: noStructure ? `no structure: K = target ${selection.k}` : `chosen K = ${selection.k}`,
      showarrow: false, font: { color: "#e15759" }, yanchor: "bottom" }],
    legend: { orientation: "h", y: -0.25 },
    margin: { l: 64, r: 64, t: 28, b: 40 },
  });
}

function renderLabelCards() {
  const cards = state.labels.map((item) => {
    const info = state.labelInfo[item.label];
    const input = el("input", { type: "text", value: item.label_name, "data-testid": "rename-input",
      "aria-label": `display name of ${item.label}` });
    const error = el("p", { class: "error small", "data-testid": "rename-error", hidden: true });
    const save = () => renameLabel(item.label, input.value, error);
    input.addEventListener("keydown", (event) => { if (event.key === "Enter") guarded(save)(); });
    const renamed = item.label_name !== item.label;
    return el("article", { class: "card label-card", "data-label": item.label, "data-testid": "label-card" },
      el("header", { class: "label-head" },
        el("span", { class: "swatch", style: { background: labelColor(item.label) } }),
        el("h3", { class: "label-name", "data-testid": "label-name" }, item.label_name),
        renamed ? el("span", { class: "muted small" }, `(canonical: ${item.label})`) : null),
      el("div", { class: "stat-row small" },
        stat("tracks", item.size), stat("training tracks", item.cluster_size ?? item.train_size ?? "—"),
        stat("mean valence", fmt(item.mean_valence)), stat("mean arousal", fmt(item.mean_arousal)),
        stat("named by", item.named_by === "acoustic" ? "its sound" : item.named_by),
        namedFromSound(item)
          ? stat("naming features", namingFeatures(item).map((f) => `${f.word} (${f.feature} ${signed(f.z)}σ)`).join(", ") || "—")
          : stat("distinctive", (item.distinctive_tags || []).join(", ") || "—")),
      el("div", { class: "rename" }, input,
        el("button", { type: "button", class: "primary", "data-testid": "rename-save", onclick: guarded(save) }, "Save"),
        el("button", { type: "button", "data-testid": "rename-reset", disabled: !renamed,
          onclick: guarded(() => resetLabel(item.label, error)) }, "Reset")),
      error,
      el("div", { id: `label-bars-${info.index}`, class: "chart chart-bars", "data-testid": "label-bars" }));
  });
  $("label-cards").replaceChildren(...cards);
}

function stat(name, value) {
  return el("span", { class: "stat" }, el("span", { class: "stat-name" }, name), el("span", { class: "stat-value" }, value));
}

const namedFromSound = (item) => item.named_by === "acoustic" || (!item.top_tags?.length && item.acoustic_features?.length > 0);
const namingFeatures = (item) => (item.acoustic_features || []).filter((f) => f.in_name);
const signed = (value) => `${value >= 0 ? "+" : "−"}${fmt(Math.abs(value), 2)}`;

/** The scores that decided the label's name: tag z-scores, or the feature z-scores of a name from its sound. */
async function renderLabelBars(item) {
  const id = `label-bars-${state.labelInfo[item.label].index}`;
  const bars = namedFromSound(item) ? featureBars(item) : tagBars(item);
  if (!bars) {
    clearPlot(id, "No original tags or features for this cluster.");
    return;
  }
  const { axisTitle, text, ...trace } = bars;
  $(id).style.height = `${70 + 22 * trace.y.length}px`;
  const low = Math.min(0, ...trace.x), high = Math.max(0, ...trace.x), span = high - low || 1;
  // each value printed right of its bar's end, or of zero for a negative bar (clear of the tag names)
  const values = { type: "scatter", mode: "text", x: trace.x.map((x) => Math.max(x, 0)), y: trace.y, text,
    textposition: "middle right", cliponaxis: false, hoverinfo: "skip" };
  await plot(id, [{ type: "bar", orientation: "h", ...trace }, values], {
    xaxis: { title: { text: axisTitle }, zeroline: true, range: [low < 0 ? low - 0.05 * span : 0, high + 0.45 * span] },
    yaxis: { autorange: "reversed", automargin: true },
    margin: { l: 8, r: 48, t: 8, b: 40 },
    showlegend: false,
  }, { displayModeBar: false });
}

/** Tags by their smoothed log-odds z (what ranks them for the name); the lift is in the label and the tooltip. */
function tagBars(item) {
  const tags = [...(item.top_tags || [])].sort((a, b) => b.score - a.score).slice(0, 10);
  if (!tags.length) return null;
  const color = labelColor(item.label);
  return {
    axisTitle: "distinctiveness z (smoothed log-odds)",
    x: tags.map((t) => t.score),
    y: tags.map((t) => escapeHtml(t.tag)),
    marker: { color: tags.map((t) => (t.distinctive ? color : MUTED)) },
    text: tags.map((t) => `z ${fmt(t.score, 1)} · ×${fmt(t.lift, 1)}`),
    customdata: tags.map((t) => [t.count, 100 * t.share, t.distinctive ? "distinctive" : "", t.lift]),
    hovertemplate: "<b>%{y}</b> %{customdata[2]}<br>z %{x:.2f} · lift ×%{customdata[3]:.2f}<br>%{customdata[0]} tracks "
      + "(%{customdata[1]:.0f}% of the cluster)<extra></extra>",
  };
}

/** Features by the z of the cluster's mean (standard deviations from the collection); those in the name highlighted. */
function featureBars(item) {
  const features = (item.acoustic_features || []).slice(0, 10);
  if (!features.length) return null;
  const color = labelColor(item.label);
  return {
    axisTitle: "cluster mean, σ from the collection",
    x: features.map((f) => f.z),
    y: features.map((f) => escapeHtml(f.word ? `${f.feature} (${f.word})` : f.feature)),
    marker: { color: features.map((f) => (f.in_name ? color : MUTED)) },
    text: features.map((f) => `${signed(f.z)}σ`),
    customdata: features.map((f) => [f.in_name ? "in the name" : ""]),
    hovertemplate: "<b>%{y}</b> %{customdata[0]}<br>z %{x:+.2f}<extra></extra>",
  };
}

async function renameLabel(label, name, errorTarget) {
  clearError(errorTarget);
  await api(`${API}/labels/${encodeURIComponent(label)}/name`, { method: "PUT", json: { name }, errorTarget });
  await refreshAfterRename();
}

async function resetLabel(label, errorTarget) {
  clearError(errorTarget);
  await api(`${API}/labels/${encodeURIComponent(label)}/name`, { method: "DELETE", errorTarget });
  await refreshAfterRename();
}

/** A display name changed: re-fetch labels and the map, redraw every chart and list on next show. */
async function refreshAfterRename() {
  await loadLabels();
  state.map = null;
  state.rendered.clear();
  rerenderLists();
  showNowPlaying();
  await renderSection(state.activeTab);
}

/* ---------- Embedding map ---------- */

function loadProjection(method) {
  if (!state.projections[method]) {
    state.projections[method] = api(`${API}/projection?method=${method}`, { errorTarget: $("embedding-status") })
      .catch((err) => {
        delete state.projections[method];
        throw err;
      });
  }
  return state.projections[method];
}

async function renderEmbedding() {
  const method = state.method;
  const status = $("embedding-status");
  status.hidden = false;
  status.textContent = `computing ${METHOD_NAMES[method]}… (the first time can take several seconds)`;
  status.dataset.state = "computing";
  let projection;
  try {
    projection = await loadProjection(method);
  } catch (err) {
    status.dataset.state = "error"; // api() wrote the message into the status line
    throw err;
  }
  if (method !== state.method) return; // the user switched method meanwhile
  fillTagSelect(projection.tags);
  const traces = state.colorBy === "label" ? tracesByLabel(projection, "x", "y") : tracesByTag(projection, state.colorBy.slice(4));
  const gd = await plot("embedding-map", traces, {
    xaxis: { title: { text: `${METHOD_NAMES[method]} 1` }, zeroline: false, showticklabels: method === "pca" },
    yaxis: { title: { text: `${METHOD_NAMES[method]} 2` }, zeroline: false, showticklabels: method === "pca" },
    hovermode: "closest",
    legend: { title: { text: state.colorBy === "label" ? "label" : `tag “${escapeHtml(state.colorBy.slice(4))}”` } },
  });
  gd.dataset.method = method;
  gd.dataset.colorBy = state.colorBy;
  const sampled = projection.total && projection.total > projection.track_id.length ? ` (a sample of ${projection.total})` : "";
  status.textContent = `${METHOD_NAMES[method]} of ${projection.track_id.length} tracks${sampled}`;
  status.dataset.state = "ready";
  onPlot("embedding-map", "plotly_click", (event) => {
    const point = event.points?.[0];
    if (point?.customdata) return api(`${API}/tracks/${encodeURIComponent(point.customdata)}`).then(playTrack);
  });
}

function tracesByTag(projection, tag) {
  const has = [];
  const hasNot = [];
  projection.track_id.forEach((_, i) => (asTagList(projection.tags[i]).includes(tag) ? has : hasNot).push(i));
  const type = projection.track_id.length > SCATTERGL_THRESHOLD ? "scattergl" : "scatter";
  const trace = (rows, name, color, size) => ({
    type, mode: "markers", name: `${name} (${rows.length})`,
    x: rows.map((i) => projection.x[i]), y: rows.map((i) => projection.y[i]),
    customdata: rows.map((i) => projection.track_id[i]),
    text: rows.map((i) => hoverText(projection.track_id[i], projection.label[i], projection.tags[i])),
    hovertemplate: "%{text}<extra></extra>",
    marker: { color, size, opacity: 0.85 },
  });
  return [trace(hasNot, "without the tag", MUTED, 6), trace(has, `tagged “${escapeHtml(tag)}”`, "#e15759", 9)];
}

function fillTagSelect(tagColumn) {
  const select = $("embedding-color");
  if (select.options.length > 1) return;
  const counts = new Map();
  for (const tags of tagColumn) for (const tag of asTagList(tags)) counts.set(tag, (counts.get(tag) || 0) + 1);
  const sorted = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  select.append(...sorted.map(([tag, count]) => el("option", { value: `tag:${tag}` }, `tag: ${tag} (${count})`)));
  select.value = state.colorBy;
}

function setProjectionMethod(method) {
  state.method = method;
  for (const button of document.querySelectorAll("#projection-method [data-method]")) {
    button.classList.toggle("active", button.dataset.method === method);
  }
  return renderEmbedding();
}

/* ---------- Model ---------- */

async function renderModel() {
  if (state.metrics === undefined) state.metrics = await api(`${API}/metrics`);
  await Promise.all([renderClassifier(state.metrics?.classifier), renderAv(state.metrics?.av)]);
}

async function renderClassifier(metrics) {
  if (!metrics) {
    notAvailable("classifier-summary", "Classifier metrics");
    clearPlot("confusion-matrix", "Confusion matrix: not available.");
    $("per-class-table").replaceChildren();
    return;
  }
  $("classifier-summary").replaceChildren(
    stat("accuracy", fmt(metrics.accuracy, 3)), stat("macro-F1", fmt(metrics.macro_f1, 3)),
    stat("tracks", metrics.n_tracks ?? "—"), metrics.mode ? stat("mode", metrics.mode) : null);
  const perClass = Object.entries(metrics.per_class || {});
  $("per-class-table").replaceChildren(table(["label", "precision", "recall", "F1", "support"],
    perClass.map(([label, m]) => [labelChip(label), fmt(m.precision, 3), fmt(m.recall, 3), fmt(m.f1, 3), m.support ?? "—"])));
  const cm = metrics.confusion_matrix;
  if (!cm?.matrix?.length) {
    clearPlot("confusion-matrix", "Confusion matrix: not available.");
    return;
  }
  const names = cm.labels.map(plotName);
  const shares = cm.matrix.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count) => (total ? count / total : 0));
  });
  await plot("confusion-matrix", [{
    type: "heatmap", z: shares, text: cm.matrix, x: names, y: names, zmin: 0, zmax: 1,
    colorscale: [[0, "#f7fafc"], [1, "#2c5282"]], showscale: false, texttemplate: "%{text}", xgap: 1, ygap: 1,
    hovertemplate: "true %{y}<br>predicted %{x}<br>%{text} tracks (%{z:.0%} of the true class)<extra></extra>",
  }], {
    xaxis: { title: { text: "predicted" }, automargin: true, tickangle: -30 },
    yaxis: { title: { text: "true" }, autorange: "reversed", automargin: true },
    margin: { l: 8, r: 8, t: 8, b: 8 },
  });
}

async function renderAv(metrics) {
  if (!metrics) {
    notAvailable("av-summary", "Valence / arousal metrics");
    clearPlot("pairwise-chart", "Pairwise accuracy: not available.");
    $("pairwise-table").replaceChildren();
    return;
  }
  const heldOut = metrics.held_out || {};
  const rows = ["valence", "arousal"].filter((dim) => heldOut[dim]).map((dim) => {
    const m = heldOut[dim];
    return [dim, fmt(m.r2, 3), fmt(m.pearson_r, 3), fmt(m.rmse, 3), m.n ?? "—"];
  });
  const summary = [];
  if (rows.length) summary.push(table(["held out", "R²", "Pearson r", "RMSE", "n"], rows));
  else summary.push(el("p", { class: "muted" }, "Held-out regression metrics: not available."));
  const pairwiseAcc = metrics.pairwise_accuracy || {};
  summary.push(el("div", { class: "stat-row" },
    stat("MusAV pairwise arousal", pct(pairwiseAcc.arousal)), stat("MusAV pairwise valence", pct(pairwiseAcc.valence)),
    metrics.mode ? stat("mode", metrics.mode) : null, metrics.folds ? stat("folds", metrics.folds) : null));
  $("av-summary").replaceChildren(...summary);

  const pairwise = metrics.pairwise || [];
  if (!pairwise.length) {
    clearPlot("pairwise-chart", "Pairwise accuracy per ground-truth file: not available.");
    $("pairwise-table").replaceChildren();
    return;
  }
  $("pairwise-table").replaceChildren(table(["ground truth", "dimension", "correct", "incorrect", "accuracy"],
    pairwise.map((p) => [p.file, p.type, p.correct ?? "—", p.incorrect ?? "—", pct(p.accuracy)])));
  const dims = [...new Set(pairwise.map((p) => p.type))];
  await plot("pairwise-chart", dims.map((dim, i) => {
    const rowsOfDim = pairwise.filter((p) => p.type === dim);
    return {
      type: "bar", name: dim, x: rowsOfDim.map((p) => p.file), y: rowsOfDim.map((p) => p.accuracy),
      marker: { color: PALETTE[i % PALETTE.length] }, hovertemplate: `${dim} · %{x}: %{y:.1f}%<extra></extra>`,
    };
  }), {
    barmode: "group",
    yaxis: { title: { text: "pairwise accuracy (%)" }, range: [0, 100] },
    legend: { orientation: "h", y: 1.15 },
    margin: { l: 56, r: 8, t: 32, b: 40 },
  }, { displayModeBar: false });
}

/* ---------- Recommend ---------- */

function renderLabelFilter() {
  const container = $("rec-labels");
  const checked = new Set([...container.querySelectorAll("input:checked")].map((input) => input.value));
  container.replaceChildren(...state.labels.map((item) => el("label", { class: "check" },
    el("input", { type: "checkbox", value: item.label, checked: checked.has(item.label), "data-testid": "rec-label" }),
    el("span", { class: "swatch", style: { background: labelColor(item.label) } }),
    item.label_name)));
}

const chosenLabels = () => [...$("rec-labels").querySelectorAll("input:checked")].map((input) => input.value);

function parseIds(text) {
  return [...new Set(text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean))];
}

function numberInput(id, min, max) {
  const value = Math.round(Number($(id).value));
  return Math.min(max, Math.max(min, Number.isFinite(value) ? value : min));
}

async function renderRecommend() {
  await drawPad();
  onPlot("va-pad", "plotly_click", onPadClick);
}

/** Valence/arousal under the mouse: from the click's pixel in the plot area (the pad's axes are fixed). */
function padPosition(event) {
  const gd = $("va-pad");
  const area = gd.querySelector(".nsewdrag")?.getBoundingClientRect();
  const mouse = event.event;
  if (area && mouse && Number.isFinite(mouse.clientX)) {
    const [x0, x1] = gd.layout.xaxis.range;
    const [y0, y1] = gd.layout.yaxis.range;
    return {
      x: x0 + ((mouse.clientX - area.left) / area.width) * (x1 - x0),
      y: y0 + ((area.bottom - mouse.clientY) / area.height) * (y1 - y0),
    };
  }
  return { x: event.xvals?.[0] ?? event.points?.[0]?.x, y: event.yvals?.[0] ?? event.points?.[0]?.y };
}

function onPadClick(event) {
  const { x, y } = padPosition(event);
  if (x === undefined || y === undefined) return;
  const point = { valence: clamp01(x), arousal: clamp01(y) };
  const pad = state.pad;
  if (pad.mode === "target") pad.target = point;
  else if (!pad.start || pad.end) {
    pad.start = point;
    pad.end = null;
    pad.path = [];
  } else pad.end = point;
  return drawPad();
}

const clamp01 = (v) => Math.round(Math.min(1, Math.max(0, Number(v))) * 1000) / 1000;
const vaText = (p) => (p ? `(${fmt(p.valence)}, ${fmt(p.arousal)})` : "—");

function padReadout() {
  const pad = state.pad;
  if (pad.mode === "target") return `target ${vaText(pad.target)} ± ${fmt(Number($("tolerance").value))}`;
  if (!pad.start) return "click the start point";
  if (!pad.end) return `start ${vaText(pad.start)}: now click the end point`;
  return `path ${vaText(pad.start)} → ${vaText(pad.end)}`;
}

function padTraces(catalog) {
  const pad = state.pad;
  const traces = [];
  if (catalog) {
    traces.push({
      type: catalog.track_id.length > SCATTERGL_THRESHOLD ? "scattergl" : "scatter", mode: "markers", name: "catalogue",
      x: catalog.valence, y: catalog.arousal, marker: { color: MUTED, size: 4, opacity: 0.6 }, hoverinfo: "skip",
    });
  }
  const trackTrace = (items, name, extra = {}) => ({
    type: "scatter", mode: "markers", name,
    x: items.map((t) => t.valence), y: items.map((t) => t.arousal),
    customdata: items.map((t) => t.track_id),
    text: items.map((t) => hoverText(t.track_id, t.label, t.tags)),
    hovertemplate: "%{text}<extra></extra>",
    marker: { color: items.map((t) => labelColor(t.label)), size: 10, line: { color: "#fff", width: 1 } },
    ...extra,
  });
  if (pad.mode === "target") {
    if (pad.results.length) traces.push(trackTrace(pad.results, "recommendations"));
    traces.push({ type: "scatter", mode: "markers", name: "target", x: [pad.target.valence], y: [pad.target.arousal],
      marker: { symbol: "x-thin-open", size: 16, color: "#1f2933", line: { width: 3 } }, hoverinfo: "skip" });
    return traces;
  }
  if (pad.start && pad.end) {
    traces.push({ type: "scatter", mode: "lines", name: "mood line", x: [pad.start.valence, pad.end.valence],
      y: [pad.start.arousal, pad.end.arousal], line: { color: "#9aa5b1", dash: "dash", width: 2 }, hoverinfo: "skip" });
  }
  if (pad.path.length) {
    traces.push(trackTrace(pad.path, "path", {
      mode: "lines+markers+text", text: pad.path.map((_, i) => String(i + 1)), textposition: "top center",
      line: { color: "#3e4c59", width: 1.5 },
      hovertext: pad.path.map((t, i) => `${i + 1}. ${hoverText(t.track_id, t.label, t.tags)}`),
      hovertemplate: "%{hovertext}<extra></extra>",
    }));
  }
  const ends = [[pad.start, "start", "circle-open"], [pad.end, "end", "square-open"]].filter(([p]) => p);
  for (const [p, name, symbol] of ends) {
    traces.push({ type: "scatter", mode: "markers+text", name, x: [p.valence], y: [p.arousal], text: [name],
      textposition: "bottom center", marker: { symbol, size: 16, color: "#1f2933", line: { width: 3 } }, hoverinfo: "skip" });
  }
  return traces;
}

async function drawPad() {
  const pad = state.pad;
  const catalog = await loadMap().catch(() => null);
  const layout = vaLayout({
    clickanywhere: true, dragmode: false, showlegend: false,
    margin: { l: 52, r: 12, t: 12, b: 44 },
  });
  layout.xaxis.fixedrange = true;
  layout.yaxis.fixedrange = true;
  if (pad.mode === "target") {
    const tol = Number($("tolerance").value);
    layout.shapes.push({ type: "circle", x0: pad.target.valence - tol, x1: pad.target.valence + tol,
      y0: pad.target.arousal - tol, y1: pad.target.arousal + tol,
      line: { color: "#4e79a7", width: 1 }, fillcolor: "rgba(78,121,167,0.12)", layer: "below" });
  }
  $("pad-readout").textContent = padReadout();
  const gd = await plot("va-pad", padTraces(catalog), layout, { displayModeBar: false });
  gd.dataset.mode = pad.mode;
}

function setPadMode(mode) {
  state.pad.mode = mode;
  for (const button of document.querySelectorAll("#pad-mode [data-mode]")) {
    button.classList.toggle("active", button.dataset.mode === mode);
  }
  return drawPad();
}

function commonFilters() {
  const body = { limit: numberInput("rec-limit", 1, 100), diversity: Number($("diversity").value) };
  const labels = chosenLabels();
  if (labels.length) body.labels = labels;
  return body;
}

async function runRecommend() {
  const errorTarget = $("recommend-error");
  clearError(errorTarget);
  const seeds = parseIds($("seed-input").value);
  const body = commonFilters();
  let endpoint;
  let caption;
  if (seeds.length) {
    endpoint = `${API}/recommend/seeds`;
    body.seeds = seeds;
    const negatives = parseIds($("negative-seed-input").value);
    if (negatives.length) body.negative_seeds = negatives;
    body.va_weight = Number($("va-weight").value);
    caption = `Like ${seeds.join(", ")}${negatives.length ? `, less like ${negatives.join(", ")}` : ""}`;
  } else {
    endpoint = `${API}/recommend/mood`;
    const { target } = state.pad;
    Object.assign(body, { target_valence: target.valence, target_arousal: target.arousal, tolerance: Number($("tolerance").value) });
    caption = `Mood target ${vaText(target)} ± ${fmt(body.tolerance)}`;
  }
  const items = await rankingQuery(endpoint, body, "rec-results", errorTarget);
  $("rec-caption").textContent = caption + (body.labels ? ` · labels: ${body.labels.map(labelName).join(", ")}` : "");
  $("rec-count").textContent = String(items.length);
  renderTrackList("rec-results", items, { score: true, empty: "No track matches these filters." });
  setExport("recommend", "recommendations", items.map((t) => t.track_id));
  state.pad.results = items;
  if (state.pad.mode === "target") await drawPad();
}

async function runPath() {
  const errorTarget = $("recommend-error");
  clearError(errorTarget);
  const { start, end } = state.pad;
  if (!start || !end) {
    reportError("Mood path: switch the pad to “Mood path” and click a start and an end point.", errorTarget);
    return;
  }
  const body = { start, end, steps: numberInput("path-steps", 2, 100) };
  const labels = chosenLabels();
  if (labels.length) body.labels = labels;
  const items = await rankingQuery(`${API}/path`, body, "path-results", errorTarget);
  state.pad.path = items;
  $("path-caption").textContent = `From ${vaText(start)} to ${vaText(end)} in ${body.steps} steps`;
  $("path-count").textContent = String(items.length);
  renderTrackList("path-results", items, { numbered: true, empty: "No path found." });
  setExport("path", "mood-path", items.map((t) => t.track_id));
  await drawPad();
}

/**
 * POST a recommendation or path query and return its items. A catalog without valence/arousal
 * answers a mood query with 409 and says why and what to configure: that text replaces the
 * list (not an empty list); other errors go to `errorTarget`.
 */
async function rankingQuery(endpoint, body, listId, errorTarget) {
  try {
    return (await api(endpoint, { method: "POST", json: body, quiet: true })).items;
  } catch (err) {
    if (err.status === 409) {
      renderTrackList(listId, [], { empty: err.message });
    } else {
      reportError(err.message, errorTarget);
    }
    throw err;
  }
}

const suggestTracks = debounce(async (input) => {
  const parts = input.value.split(",");
  const query = parts.pop().trim();
  if (query.length < 2) return;
  const prefix = parts.map((p) => p.trim()).filter(Boolean);
  const { items } = await api(`${API}/tracks?q=${encodeURIComponent(query)}&limit=10`, { quiet: true }).catch(() => ({ items: [] }));
  $("track-suggestions").replaceChildren(...items.map((t) => el("option",
    { value: [...prefix, t.track_id].join(", ") },
    [t.title ? trackName(t) : "", labelName(t.label), asTagList(t.tags).join(", ")].filter(Boolean).join(" · "))));
}, 250);

/* ---------- Analyze ---------- */

/** Nothing to fetch until a file is chosen; after a rename, the last analysis is redrawn. */
async function renderAnalyze() {
  if (state.analysis) await renderAnalysis(state.analysis);
}

async function analyzeFile(file) {
  if (!file) return;
  const errorTarget = $("analyze-error");
  clearError(errorTarget);
  const status = $("analyze-status");
  status.textContent = `analysing ${file.name} (${(file.size / 1e6).toFixed(1)} MB)…`;
  status.dataset.state = "busy";
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const result = await api(`${API}/analyze`, { method: "POST", body: form, errorTarget });
    await renderAnalysis(result);
    status.textContent = `${result.filename}: ${fmt(result.duration, 1)} s analysed`;
    status.dataset.state = "done";
  } catch (err) {
    status.textContent = "";
    status.dataset.state = "error";
    $("analyze-results").hidden = true;
    throw err;
  }
}

async function renderAnalysis(result) {
  state.analysis = result;
  $("analyze-results").hidden = false;
  $("analyze-summary").replaceChildren(
    el("span", { class: "stat" }, el("span", { class: "stat-name" }, "predicted label"), labelChip(result.label)),
    stat("probability", fmt(result.probability, 3)), stat("valence", fmt(result.valence)),
    stat("arousal", fmt(result.arousal)), stat("duration", `${fmt(result.duration, 1)} s`), stat("file", result.filename));
  renderTrackList("analyze-nearest", result.nearest || [], { score: true, empty: "No nearest tracks." });
  const features = Object.entries(result.features || {});
  $("analyze-features").replaceChildren(features.length
    ? table(["feature", "value"], features.map(([name, value]) => [name, typeof value === "number" ? fmt(value, 4) : String(value)]))
    : el("p", { class: "muted" }, "No features reported."));
  await Promise.all([plotProbabilities(result), plotAnalysisVa(result), plotTimeline(result)]);
}

function plotProbabilities(result) {
  const entries = Object.entries(result.probabilities || {}).sort((a, b) => b[1] - a[1]);
  return plot("analyze-probs", [{
    type: "bar", orientation: "h", x: entries.map(([, p]) => p), y: entries.map(([label]) => plotName(label)),
    marker: { color: entries.map(([label]) => labelColor(label)) },
    text: entries.map(([, p]) => fmt(p, 3)), textposition: "outside", cliponaxis: false,
    hovertemplate: "%{y}: %{x:.3f}<extra></extra>",
  }], {
    xaxis: { range: [0, 1.1], title: { text: "probability" } },
    yaxis: { autorange: "reversed", automargin: true },
    margin: { l: 8, r: 16, t: 8, b: 40 },
  }, { displayModeBar: false });
}

async function plotAnalysisVa(result) {
  const traces = [];
  const catalog = await loadMap().catch(() => null);
  if (catalog) {
    traces.push({ type: catalog.track_id.length > SCATTERGL_THRESHOLD ? "scattergl" : "scatter", mode: "markers",
      name: "catalogue", x: catalog.valence, y: catalog.arousal, marker: { color: MUTED, size: 4 }, hoverinfo: "skip" });
  }
  const timeline = (result.timeline || []).filter((s) => s.valence !== null && s.arousal !== null);
  if (timeline.length) {
    traces.push({ type: "scatter", mode: "lines+markers", name: "segments", x: timeline.map((s) => s.valence),
      y: timeline.map((s) => s.arousal), line: { color: "#9aa5b1", width: 1 }, marker: { size: 5, color: "#52606d" },
      hovertemplate: timeline.map((s) => `${fmt(s.start, 1)}–${fmt(s.end, 1)} s<extra></extra>`) });
  }
  if (result.valence !== null && result.arousal !== null) {
    const name = escapeHtml(result.filename);
    traces.push({ type: "scatter", mode: "markers", name, x: [result.valence], y: [result.arousal], text: [name],
      marker: { symbol: "star", size: 18, color: labelColor(result.label), line: { color: "#1f2933", width: 1 } },
      hovertemplate: "%{text}<br>valence %{x:.2f}<br>arousal %{y:.2f}<extra></extra>" });
  }
  return plot("analyze-va", traces, vaLayout({ showlegend: false, margin: { l: 52, r: 12, t: 8, b: 44 } }), { displayModeBar: false });
}

function plotTimeline(result) {
  const timeline = result.timeline || [];
  if (!timeline.length) {
    clearPlot("analyze-timeline", "Timeline: not available for this file.");
    return null;
  }
  const t = timeline.map((s) => (s.start + s.end) / 2);
  const segmentText = timeline.map((s) => `${fmt(s.start, 1)}–${fmt(s.end, 1)} s · ${plotName(s.label)} (${fmt(s.probability)})`);
  const line = (key, color) => ({
    type: "scatter", mode: "lines+markers", name: key, x: t, y: timeline.map((s) => s[key]),
    line: { color, width: 2, shape: "spline" }, text: segmentText,
    hovertemplate: `${key} %{y:.2f}<br>%{text}<extra></extra>`,
  });
  return plot("analyze-timeline", [line("valence", PALETTE[0]), line("arousal", PALETTE[2])], {
    xaxis: { title: { text: "time (s)" }, rangemode: "tozero" },
    yaxis: { title: { text: "score" }, range: [0, 1] },
    legend: { orientation: "h", y: 1.15 },
    margin: { l: 48, r: 12, t: 32, b: 40 },
  }, { displayModeBar: false });
}

function setupDropZone() {
  const zone = $("drop-zone");
  const input = $("analyze-file");
  input.addEventListener("change", () => guarded(analyzeFile)(input.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    guarded(analyzeFile)(event.dataTransfer.files[0]);
  });
}

/* ---------- start-up ---------- */

function bindSlider(id, onInput) {
  const input = $(id);
  const show = () => {
    $(`${id}-value`).textContent = input.value;
    if (onInput) onInput();
  };
  input.addEventListener("input", show);
  show();
}

function bindUi() {
  $("error-close").addEventListener("click", () => { $("error-banner").hidden = true; });
  for (const button of document.querySelectorAll("#tabs [data-tab]")) {
    button.addEventListener("click", guarded(() => showTab(button.dataset.tab)));
  }
  for (const button of document.querySelectorAll("#projection-method [data-method]")) {
    button.addEventListener("click", guarded(() => setProjectionMethod(button.dataset.method)));
  }
  $("embedding-color").addEventListener("change", guarded((event) => {
    state.colorBy = event.target.value;
    return renderEmbedding();
  }));
  for (const button of document.querySelectorAll("#pad-mode [data-mode]")) {
    button.addEventListener("click", guarded(() => setPadMode(button.dataset.mode)));
  }
  bindSlider("tolerance", () => state.rendered.has("recommend") && guarded(drawPad)());
  bindSlider("diversity");
  bindSlider("va-weight");
  $("recommend-button").addEventListener("click", guarded(runRecommend));
  $("path-button").addEventListener("click", guarded(runPath));
  for (const id of ["seed-input", "negative-seed-input"]) $(id).addEventListener("input", (event) => suggestTracks(event.target));
  setupExportRows();
  setupDropZone();
}

async function loadSummary() {
  const ready = await api("/api/v1/ready", { quiet: true }).catch(() => null);
  const count = (value) => (Array.isArray(value) ? value.length : value);
  $("catalog-summary").textContent = ready
    ? `${count(ready.tracks)} tracks · ${count(ready.labels)} labels${ready.valence_arousal ? "" : " · no valence/arousal"}`
    : `${state.labels.length} labels`;
}

async function init() {
  bindUi();
  await loadLabels();
  await loadSummary();
  const initial = location.hash.slice(1);
  await showTab(Object.hasOwn(SECTIONS, initial) ? initial : "map");
  document.body.dataset.ready = "true";
}

guarded(init)();
