// trainlab playground: the page's state lives in the URL hash; the server trains and streams over /ws.
"use strict";

const $ = (id) => document.getElementById(id);
const ORANGE = [245, 147, 34], BLUE = [8, 119, 189], WHITE = [250, 250, 250];
const CLASS_COLORS = [ORANGE, BLUE, [46, 160, 67], [162, 75, 201], [214, 39, 40], [23, 190, 207]];
const SERIES = ["#0877bd", "#f59322", "#2ea043", "#a24bc9", "#d62728", "#17becf"];
const FEATURES = [["x1", "x₁"], ["x2", "x₂"], ["x1^2", "x₁²"], ["x2^2", "x₂²"], ["x1*x2", "x₁x₂"],
                  ["sin(x1)", "sin x₁"], ["sin(x2)", "sin x₂"]];
const PRESETS = [
  ["sigmoid vs relu", "model.activation", "sigmoid | relu"],
  ["SGD vs momentum vs Adam", "optim.name", "sgd | momentum | adam"],
  ["He vs zeros init", "model.init", "he | zeros"],
  ["learning rates", "optim.lr", "0.003 | 0.03 | 0.3"],
  ["depth", "model.hidden", "[8] | [8, 8] | [8, 8, 8]"],
];

let REGRESSION_DATA = []; // config.REGRESSION_DATASETS, from /api/options
const DEFAULTS = {
  "data.name": "moons", "data.task": "classification", "data.noise": 0.25, "data.n_samples": 600,
  "data.split": [0.7, 0.3], "data.seed": 42, "data.features": ["x1", "x2"],
  "model.hidden": [8, 8], "model.activation": "tanh", "model.dropout": 0, "model.init": "default",
  "optim.name": "adam", "optim.lr": 0.01, "optim.schedule.name": "constant", "optim.weight_decay": 0, "optim.l1": 0,
  "train.epochs": 300, "train.batch_size": 32, "seed": 0,
};
const VIEW_DEFAULTS = { mode: "play", "vary.key": "model.activation", "vary.values": "sigmoid | relu", seeds: 5,
                        test: true, discretize: false };

let state = {};      // config keys (dotted) and seed
let view = {};       // mode and compare inputs: in the URL too
let upload = null;   // {upload, filename}: not shareable (the points stay on this machine)
let ws = null, wsReady = false, queue = [];
let net = null;      // what "ready" said: sizes, features, extent, points, task...
let last = null;     // the latest update
let curves = null, gradHistory = [];
let playing = false, hovered = null, compareRuns = [];

// ---------------------------------------------------------------------------- state <-> URL

function readHash() {
  state = { ...DEFAULTS };
  view = { ...VIEW_DEFAULTS };
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [k, v] of params) {
    let value;
    try { value = JSON.parse(v); } catch { value = v; }
    if (k in DEFAULTS) state[k] = value;
    else if (k in VIEW_DEFAULTS) view[k] = typeof VIEW_DEFAULTS[k] === "string" ? v : value;
  }
  // An upload is not in the link (writeHash leaves data.name = csv out): open generated data of the same task.
  const regression = state["data.task"] === "regression";
  if (state["data.name"] === "csv" || (regression && !REGRESSION_DATA.includes(state["data.name"])))
    state["data.name"] = regression ? "plane" : "moons";
}

function writeHash() {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (JSON.stringify(v) !== JSON.stringify(DEFAULTS[k]) && !(k === "data.name" && v === "csv"))
      params.set(k, JSON.stringify(v));
  }
  for (const [k, v] of Object.entries(view)) if (v !== VIEW_DEFAULTS[k]) params.set(k, v);
  history_replace("#" + params.toString());
}

function history_replace(hash) { window.history.replaceState(null, "", hash === "#" ? location.pathname : hash); }

function requestBody() {
  const config = { data: {}, model: {}, optim: { schedule: {} }, train: {} };
  for (const [k, v] of Object.entries(state)) {
    if (k === "seed") continue;
    const parts = k.split(".");
    let node = config;
    for (const p of parts.slice(0, -1)) node = node[p];
    node[parts[parts.length - 1]] = v;
  }
  if (config.optim.weight_decay === 0) delete config.optim.weight_decay; // adamw's default 0.01 otherwise
  return { config, seed: state.seed, upload: upload && upload.upload };
}

function compareBody() {
  const values = view["vary.values"].split("|").map((s) => s.trim()).filter(Boolean).map((s) => {
    try { return JSON.parse(s); } catch { return s; }
  });
  return { ...requestBody(), vary: { [view["vary.key"]]: values }, seeds: Number(view.seeds) };
}

// ---------------------------------------------------------------------------- controls

function syncControls() {
  for (const el of document.querySelectorAll("[data-key]")) {
    const v = state[el.dataset.key];
    el.value = v === null || v === undefined ? "" : v;
  }
  $("noise-out").textContent = Number(state["data.noise"]).toFixed(2);
  $("train-pct").value = Math.round(state["data.split"][0] * 100);
  $("vary-key").value = view["vary.key"];
  $("vary-values").value = view["vary.values"];
  $("compare-seeds").value = view.seeds;
  $("show-test").checked = view.test;
  $("discretize").checked = view.discretize;
  const n = state["model.hidden"].length;
  $("layer-count").textContent = `${n} hidden layer${n === 1 ? "" : "s"}`;
  // One activation or rate for all layers, or one per layer (the network panel's selectors, a link)
  if (Array.isArray(state["model.activation"])) $("model.activation").value = "";
  $("model.dropout").placeholder = Array.isArray(state["model.dropout"]) ? state["model.dropout"].join(", ") : "";
  document.querySelectorAll(".layer-activation select").forEach((el, l) => { el.value = perLayer("model.activation")[l]; });
  $("upload").closest("label").classList.toggle("active", state["data.name"] === "csv");
  $("data.name").value = state["data.name"];
  renderFeatureChips();
}

// model.activation and model.dropout: one value for every hidden layer, or a list with one per layer.
function perLayer(key) {
  const v = state[key], n = state["model.hidden"].length;
  return Array.isArray(v) ? v : Array(n).fill(v);
}

// A list of per-layer values as the config takes it: one value when they are all the same.
function perLayerValue(values, fallback) {
  if (!values.length) return fallback;
  return values.every((v) => v === values[0]) ? values[0] : values;
}

function setLayerActivation(l, name) {
  const names = [...perLayer("model.activation")];
  names[l] = name;
  setKey("model.activation", perLayerValue(names, name));
}

function setKey(key, value) {
  state[key] = value;
  if (key === "model.hidden") { // per-layer lists follow the layers: a new layer takes the last one's
    for (const k of ["model.activation", "model.dropout"]) {
      const v = state[k];
      if (!Array.isArray(v)) continue;
      const fitted = value.map((_, l) => v[Math.min(l, v.length - 1)]);
      state[k] = perLayerValue(fitted, v[v.length - 1]);
    }
  }
  if (key === "data.name") {
    if (value === "plane") state["data.task"] = "regression";
    else if (value !== "gaussian" && value !== "csv") state["data.task"] = "classification";
  }
  if (key === "data.task" && value === "regression" && !REGRESSION_DATA.includes(state["data.name"]))
    state["data.name"] = "plane";
  if (key === "data.task" && value === "classification" && state["data.name"] === "plane") state["data.name"] = "moons";
  // Each data set's own default noise (data.py); regression noise is the target's, on another scale.
  if (key === "data.name" || key === "data.task") {
    const noise = NOISE[state["data.task"]][state["data.name"]];
    if (noise !== undefined) state["data.noise"] = noise;
  }
  changed();
}

let setupTimer = null;
function changed() {
  writeHash();
  syncControls();
  clearTimeout(setupTimer);
  setupTimer = setTimeout(setup, 120);
}

function bindControls() {
  for (const el of document.querySelectorAll("[data-key]")) {
    el.addEventListener(el.type === "range" ? "input" : "change", () => {
      const key = el.dataset.key;
      let v = el.value;
      if (key === "data.name" && v === "csv" && !upload) { // the points first: until then the old data trains
        $("upload").closest("label").classList.add("active");
        return $("upload").click();
      }
      if (el.type === "number" || el.type === "range") v = v === "" ? DEFAULTS[key] : Number(v);
      setKey(key, v);
    });
  }
  $("train-pct").addEventListener("change", () => {
    const p = Math.min(90, Math.max(10, Number($("train-pct").value) || 70)) / 100;
    setKey("data.split", [p, Math.round((1 - p) * 100) / 100]);
  });
  $("regenerate").onclick = () => setKey("data.seed", Math.floor(Math.random() * 100000));
  $("layer-add").onclick = () => {
    const h = state["model.hidden"];
    if (h.length < 6) setKey("model.hidden", [...h, h.length ? h[h.length - 1] : 4]);
  };
  $("layer-remove").onclick = () => setKey("model.hidden", state["model.hidden"].slice(0, -1));
  $("upload").addEventListener("change", uploadCsv);
  $("upload").addEventListener("cancel", syncControls);
  $("show-test").onchange = () => { view.test = $("show-test").checked; writeHash(); drawOutput(); };
  $("discretize").onchange = () => { view.discretize = $("discretize").checked; writeHash(); drawOutput(); };
  $("vary-key").onchange = () => { view["vary.key"] = $("vary-key").value; writeHash(); };
  $("vary-values").onchange = () => { view["vary.values"] = $("vary-values").value; writeHash(); };
  $("compare-seeds").onchange = () => { view.seeds = Number($("compare-seeds").value) || 5; writeHash(); };
  for (const [label, key, values] of PRESETS) {
    const b = document.createElement("button");
    b.className = "small preset";
    b.textContent = label;
    b.onclick = () => {
      Object.assign(view, { "vary.key": key, "vary.values": values });
      writeHash(); syncControls(); runCompare();
    };
    $("presets").appendChild(b);
  }
}

function renderFeatureChips() {
  const box = $("features");
  box.innerHTML = "";
  for (const [name, label] of FEATURES) {
    const b = document.createElement("button");
    b.className = "chip" + (state["data.features"].includes(name) ? " on" : "");
    b.textContent = label;
    b.title = `input feature ${name}`;
    b.onclick = () => toggleFeature(name);
    box.appendChild(b);
  }
}

function toggleFeature(name) {
  const f = state["data.features"];
  const next = f.includes(name) ? f.filter((x) => x !== name) : FEATURES.map((x) => x[0]).filter((x) => x === name || f.includes(x));
  if (next.length) setKey("data.features", next);
}

async function uploadCsv() {
  const file = $("upload").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const r = await fetch("/api/upload", { method: "POST", body: form });
  const body = await r.json();
  $("upload").value = "";
  if (!r.ok) { syncControls(); return showError(body.error); } // back to the data still training
  upload = body;
  toast(`${body.filename}: ${body.rows} points`);
  setKey("data.name", "csv");
}

// ---------------------------------------------------------------------------- socket

function connect() {
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => { wsReady = true; queue.splice(0).forEach((m) => ws.send(m)); };
  ws.onmessage = (e) => handle(JSON.parse(e.data));
  ws.onclose = () => {
    wsReady = false; setPlaying(false);
    showError("Lost the connection to the trainlab server: is `trainlab serve` still running? Retrying…");
    setTimeout(() => { connect(); setup(); }, 2000);
  };
}

function send(message) {
  const text = JSON.stringify(message);
  if (wsReady) ws.send(text); else queue.push(text);
}

let settingUp = false; // a setup the server has not accepted yet: until it does, ▶ would train the old one
function setup() {
  hideError();
  settingUp = true;
  setPlaying(false);
  ["train", "step"].forEach((id) => ($(id).disabled = true)); // until "ready"
  send({ type: "setup", ...requestBody() });
}

function handle(m) {
  switch (m.type) {
    case "ready": return onReady(m);
    case "update": return onUpdate(m);
    case "reset": curves = emptyHistory(); gradHistory = []; showSeed(m.seed); return setPlaying(false);
    case "paused": return setPlaying(false);
    case "error":
      if (m.status === 429 || m.status === 500 || settingUp) setPlaying(false); // else it trains on
      if (comparing && m.message.startsWith("compare")) onCompareEnd("stopped");
      if (settingUp) ["train", "step", "reset"].forEach((id) => ($(id).disabled = true));
      return showError(m.message);
    case "compare_start": return onCompareStart(m);
    case "compare_progress": return onCompareProgress(m.done);
    case "compare_result": return onCompareResult(m);
    case "compare_cancelled": return onCompareEnd("cancelled");
  }
}

function emptyHistory() { return { train_loss: [], val_loss: [], train_acc: [], val_acc: [] }; }

function setPlaying(on) {
  playing = on;
  $("train").disabled = on;
  $("pause").disabled = !on;
  $("step").disabled = on;
}

// ---------------------------------------------------------------------------- training view

function onReady(m) {
  hideError();
  settingUp = false;
  $("reset").disabled = false;
  net = m;
  curves = emptyHistory();
  gradHistory = [];
  setPlaying(false);
  $("epochs-of").textContent = `of ${m.epochs}`;
  $("acc-figure").hidden = m.task === "regression";
  buildNetwork();
  legend();
}

// Updates are drawn once per animation frame, then acknowledged: the server sends no more than
// the page has drawn (a hidden tab draws nothing, so it is sent nothing while it trains).
let undrawn = 0, frameRequested = false;

function floats(b64) { return new Float32Array(bytes(b64).buffer); }

function onUpdate(m) {
  m.W = m.weights.map((layer) => ({ shape: layer.shape, w: floats(layer.w), b: floats(layer.b) }));
  m.N = m.neurons.map(bytes);
  last = m;
  for (const k of Object.keys(curves)) curves[k].push(...m.history[k]);
  gradHistory.push(...m.layer_grad_norms);
  showSeed(m.seed);
  $("epoch").textContent = m.epoch;
  const done = m.status !== "training";
  $("status").textContent = done && m.epoch > 0 ? { ok: "finished", diverged: "diverged", early_stopped: "stopped early" }[m.status] : "";
  $("status").className = "status " + (m.status === "diverged" ? "bad" : "");
  if (done) setPlaying(false);
  undrawn += 1;
  if (!frameRequested) { frameRequested = true; requestAnimationFrame(drawFrame); }
}

function drawFrame() {
  frameRequested = false;
  if (view.mode === "play") onUpdateRedraw();
  metrics();
  for (; undrawn > 0; undrawn--) send({ type: "drawn" });
}

// The seed of the weights being trained (Reset advances it): in the field and so in the share link.
function showSeed(seed) {
  if (seed === undefined || seed === state.seed) return;
  state.seed = seed;
  $("seed").value = seed;
  writeHash();
}

function metrics() {
  const n = curves.train_loss.length;
  if (!n) return metricsPlaceholder();
  const f = (v) => (v === null ? "–" : v.toFixed(4));
  const lossName = net.task === "regression" ? "MSE" : "loss";
  let html = `<span>Train ${lossName} <b>${f(curves.train_loss[n - 1])}</b></span><span>Val ${lossName} <b>${f(curves.val_loss[n - 1])}</b></span>`;
  if (net.task !== "regression") {
    const a = curves.val_acc[n - 1];
    html += `<span>Val accuracy <b>${a === null ? "–" : (100 * a).toFixed(1) + "%"}</b></span>`;
  }
  const s = last && last.scores; // the current model on the val split (views.scores)
  if (s && net.task === "regression") {
    html += `<span>Val RMSE <b>${f(s.rmse)}</b></span><span>MAE <b>${f(s.mae)}</b></span><span>R² <b>${f(s.r2)}</b></span>`;
  } else if (s) {
    const rows = s.confusion.map((row, i) => `<tr><th>${i}</th>${row.map((c, j) => `<td${i === j ? ' class="hit"' : ""}>${c}</td>`).join("")}</tr>`);
    html += `<span>Val macro F1 <b>${f(s.macro_f1)}</b></span>
      <table class="confusion" data-testid="confusion" title="val points of each true class (rows) by predicted class (columns)">
      <tr><th></th>${s.confusion.map((_, j) => `<th>${j}</th>`).join("")}</tr>${rows.join("")}</table>`;
  }
  $("metrics").innerHTML = html;
}

// ---------------------------------------------------------------------------- colour maps

function mix(a, b, t) { return [0, 1, 2].map((i) => a[i] + (b[i] - a[i]) * t); }

function diverging(t) { // 0 → orange, 0.5 → white, 1 → blue
  return t < 0.5 ? mix(ORANGE, WHITE, t * 2) : mix(WHITE, BLUE, (t - 0.5) * 2);
}

function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// A colour map as a table: 256 values (or, for classes, 256 confidences per class) → RGBA.
const tables = new Map();
function table(key, colour) {
  if (!tables.has(key)) {
    const classes = key.startsWith("classes") ? CLASS_COLORS.length : 1, t = new Uint8ClampedArray(classes * 256 * 4);
    for (let k = 0; k < classes; k++) {
      for (let v = 0; v < 256; v++) t.set([...colour(classes > 1 ? k : v, v), 255], 4 * (k * 256 + v));
    }
    tables.set(key, t);
  }
  return tables.get(key);
}

// `values` (bytes, a square grid) through the colour table into `img` (an ImageData), from `offset`.
function fill(img, values, lut, confidence, offset = 0) {
  const out = img.data, n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const k = confidence ? 4 * ((values[offset + i] % CLASS_COLORS.length) * 256 + confidence[i]) : 4 * values[offset + i];
    out[4 * i] = lut[k]; out[4 * i + 1] = lut[k + 1]; out[4 * i + 2] = lut[k + 2]; out[4 * i + 3] = 255;
  }
  return img;
}

function mapImage(values, colour, confidence, offset = 0, size = 0) {
  const n = size || Math.round(Math.sqrt(values.length));
  const c = document.createElement("canvas");
  c.width = c.height = n;
  const ctx = c.getContext("2d");
  ctx.putImageData(fill(ctx.createImageData(n, n), values, colour, confidence, offset), 0, 0);
  return c;
}

// The colour table of an output map (see `fill`).
function outputColour(output, discretize) {
  const key = `${output.kind}:${discretize}`;
  if (output.kind === "classes") {
    return table(key, (cls, conf) => mix(WHITE, CLASS_COLORS[cls], discretize ? 0.55 : 0.7 * Math.max(0, (conf / 255 - 0.3) / 0.7)));
  }
  return table(key, (v) => {
    let t = v / 255;
    if (discretize) t = output.kind === "value" ? Math.round(t * 8) / 8 : (t > 0.5 ? 0.8 : 0.2);
    return mix(WHITE, diverging(t), 0.8);
  });
}

const NEURON_COLOURS = () => table("neuron", (v) => mix(WHITE, diverging(v / 255), 0.85));

// ---------------------------------------------------------------------------- the big plot

function fitCanvas(canvas, height) {
  const ratio = window.devicePixelRatio || 1, w = canvas.clientWidth, h = height || canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return [ctx, w, h];
}

function drawOutput() {
  if (!net || !last) return;
  const canvas = $("boundary");
  const [ctx, w, h] = fitCanvas(canvas);
  const discretize = $("discretize").checked;
  let image, title = "Output";
  if (hovered) {
    const g = net.neuron_grid;
    image = hovered.layer === 0 ? mapImage(bytes(net.inputs[hovered.unit]), outputColour({ kind: "value" }, discretize))
      : mapImage(last.N[hovered.layer - 1], outputColour({ kind: "value" }, discretize), null, hovered.unit * g * g, g);
    title = hovered.layer === 0 ? `Input ${net.features[hovered.unit]}` : `Layer ${hovered.layer}, neuron ${hovered.unit + 1}`;
  } else {
    const out = last.output;
    image = mapImage(bytes(out.map), outputColour(out, discretize), out.confidence ? bytes(out.confidence) : null);
    title = net.task === "regression" ? "Output: prediction" : net.n_classes === 2 ? "Output: P(class 1)" : "Output: predicted class";
  }
  $("output-title").textContent = title;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(image, 0, 0, w, h);
  ctx.drawImage(pointsLayer(w, h), 0, 0, w, h);
}

// The data points and axes, drawn once per data set, size and "test data" setting (5,000 points
// are ~5 ms to draw: too much to redraw at every update).
function pointsLayer(w, h) {
  const ratio = window.devicePixelRatio || 1, showTest = $("show-test").checked, key = `${w}x${h}x${ratio}:${showTest}`;
  if (net.pointsKey === key) return net.pointsCanvas;
  const c = document.createElement("canvas");
  c.width = Math.round(w * ratio); c.height = Math.round(h * ratio);
  const ctx = c.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const [x0, x1, y0, y1] = net.extent;
  const px = (x) => ((x - x0) / (x1 - x0)) * w, py = (y) => ((y1 - y) / (y1 - y0)) * h;
  const pointColour = (y) => net.task === "regression"
    ? diverging(Math.max(0, Math.min(1, (y / net.target_scale + 1) / 2)))
    : CLASS_COLORS[y % CLASS_COLORS.length];
  const splits = [["train", "#fff"]];
  if (showTest) splits.push(["val", "#222"]);
  for (const [split, stroke] of splits) {
    const pts = net.points[split];
    ctx.lineWidth = 1;
    ctx.strokeStyle = stroke;
    for (let i = 0; i < pts.x.length; i++) {
      const [r, g, b] = pointColour(pts.y[i]);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.beginPath();
      ctx.arc(px(pts.x[i][0]), py(pts.x[i][1]), 3.2, 0, 2 * Math.PI);
      ctx.fill(); ctx.stroke();
    }
  }
  axes(ctx, w, h, net.extent);
  net.pointsKey = key;
  net.pointsCanvas = c;
  return c;
}

function axes(ctx, w, h, [x0, x1, y0, y1]) {
  const span = x1 - x0, step = [0.25, 0.5, 1, 2, 5, 10, 20].find((s) => span / s <= 8) || 50;
  ctx.fillStyle = "rgba(0,0,0,0.55)";
  ctx.font = "10px system-ui, sans-serif";
  for (let v = Math.ceil(x0 / step) * step; v <= x1; v += step) {
    const x = ((v - x0) / span) * w;
    ctx.fillRect(x, h - 4, 1, 4);
    ctx.fillText(+v.toFixed(2), x + 2, h - 5);
  }
  for (let v = Math.ceil(y0 / step) * step; v <= y1; v += step) {
    const y = ((y1 - v) / (y1 - y0)) * h;
    ctx.fillRect(0, y, 4, 1);
    ctx.fillText(+v.toFixed(2), 6, y - 2);
  }
}

function legend() {
  let html;
  if (net.task === "regression") html = `<span class="grad reg"></span><span>prediction: low → high (points: targets)</span>`;
  else if (net.n_classes === 2) html = `<span class="dot" style="background:rgb(${ORANGE})"></span>class 0 <span class="grad"></span> <span class="dot" style="background:rgb(${BLUE})"></span>class 1`;
  else html = CLASS_COLORS.slice(0, net.n_classes).map((c, i) => `<span class="dot" style="background:rgb(${c})"></span>class ${i}`).join(" ");
  $("legend").innerHTML = html + `<span class="sep"></span><span class="ring white"></span>train <span class="ring dark"></span>test (val)`;
}

// ---------------------------------------------------------------------------- the network

function buildNetwork() {
  const box = $("net");
  box.querySelectorAll(".node, .layer-label").forEach((e) => e.remove()); // and the layers' selectors
  $("link-editor").hidden = true;
  const hidden = net.sizes.slice(1, -1);
  box.style.height = `${Math.max(440, 40 + 9 * Math.max(FEATURES.length, ...hidden))}px`; // wide layers get room
  const W = box.clientWidth, H = box.clientHeight;
  const columns = [FEATURES.length, ...hidden, 1];
  const colX = (i) => 34 + (i * (W - 68)) / (columns.length - 1);
  const layout = columns.map((n, i) => { // room above for each layer's width, below for its activation
    const spacing = Math.min(52, (H - 64) / n), size = Math.max(8, Math.min(38, spacing - 6));
    const top = 28 + (H - 52 - spacing * n) / 2;
    return Array.from({ length: n }, (_, j) => ({ x: colX(i), y: top + spacing * j + spacing / 2, size }));
  });
  net.nodes = [];
  // inputs: every candidate feature; the used ones are bright and linked
  const used = FEATURES.map(([f]) => net.features.indexOf(f));
  net.inputPositions = [];
  FEATURES.forEach(([f, label], j) => {
    const p = layout[0][j], k = used[j];
    const node = makeNode(p, k >= 0 ? { layer: 0, unit: k } : null, label);
    node.classList.add("input", k >= 0 ? "on" : "off");
    node.title = k >= 0 ? `${f}: click to stop using it` : `${f}: click to use it as an input`;
    node.onclick = () => toggleFeature(f);
    if (k >= 0) { net.inputPositions[k] = p; paint(node, bytes(net.inputs[k])); }
  });
  net.nodes.push(net.inputPositions.map((p) => ({ p })));
  hidden.forEach((n, l) => {
    net.nodes.push(layout[l + 1].map((p, j) => ({ p, el: makeNode(p, { layer: l + 1, unit: j }, undefined, false) })));
    labelLayer(colX(l + 1), n, l);
  });
  const outP = layout[layout.length - 1][0];
  const out = makeNode({ ...outP, size: 44 }, null, "");
  out.classList.add("output");
  out.title = "the network's output (shown big on the right)";
  net.nodes.push([{ p: { ...outP, size: 44 }, el: out }]);
  addLabel(colX(columns.length - 1), 12, "output");
  addLabel(colX(0), 12, "inputs");
  // links from every unit to every unit of the next layer, drawn on one canvas (updateNetwork)
  net.links = [];
  for (let l = 0; l < net.nodes.length - 1; l++) {
    const group = [];
    for (const [j, b] of net.nodes[l + 1].entries()) {
      for (const [i, a] of net.nodes[l].entries()) {
        group.push({ i, j, x0: a.p.x + a.p.size / 2, y0: a.p.y, x1: b.p.x - b.p.size / 2, y1: b.p.y });
      }
    }
    net.links.push(group);
  }
  const canvas = $("links");
  canvas.onmousemove = (e) => hoverLink(e);
  canvas.onmouseleave = () => { $("link-tip").hidden = true; };
  canvas.onclick = (e) => editLink(e);
}

// A node: its border and hover; its picture on a canvas of its own, or (hidden units, up to 384 of
// them) drawn with the others on the shared #thumbs canvas under it.
function makeNode(p, which, label, ownCanvas = true) {
  const node = document.createElement("div");
  node.className = ownCanvas ? "node" : "node unit";
  Object.assign(node.style, { left: `${p.x - p.size / 2}px`, top: `${p.y - p.size / 2}px`, width: `${p.size}px`, height: `${p.size}px` });
  if (ownCanvas) {
    const c = document.createElement("canvas");
    c.width = c.height = 24;
    node.appendChild(c);
  }
  if (label) { const s = document.createElement("span"); s.textContent = label; node.appendChild(s); }
  if (which) {
    node.onmouseenter = () => { hovered = which; drawOutput(); };
    node.onmouseleave = () => { hovered = null; drawOutput(); };
  }
  $("net").appendChild(node);
  return node;
}

function labelLayer(x, n, l) {
  const el = document.createElement("div");
  el.className = "layer-label";
  el.style.left = `${x - 40}px`;
  el.innerHTML = `<button class="tiny" title="Remove a neuron">&minus;</button><span>${n}</span><button class="tiny" title="Add a neuron">+</button>`;
  const [minus, , plus] = el.children;
  const resize = (d) => {
    const h = [...state["model.hidden"]];
    h[l] = Math.max(1, Math.min(64, h[l] + d));
    setKey("model.hidden", h);
  };
  minus.onclick = () => resize(-1);
  plus.onclick = () => resize(1);
  $("net").appendChild(el);
  const act = document.createElement("div"); // the layer's own activation
  act.className = "layer-label layer-activation";
  act.style.left = `${x - 40}px`;
  const select = document.createElement("select");
  select.dataset.testid = `layer-activation-${l + 1}`;
  select.title = `Activation of hidden layer ${l + 1}`;
  select.replaceChildren(...ACTIVATION_NAMES.map((v) => new Option(v, v)));
  select.value = perLayer("model.activation")[l];
  select.onchange = () => setLayerActivation(l, select.value);
  act.appendChild(select);
  $("net").appendChild(act);
}

function addLabel(x, y, text) {
  const el = document.createElement("div");
  el.className = "layer-label caption";
  el.style.left = `${x - 40}px`;
  el.textContent = text;
  $("net").appendChild(el);
}

// An input node's thumbnail (a square grid of `values`).
function paint(node, values) {
  const c = node.querySelector("canvas"), n = Math.round(Math.sqrt(values.length));
  if (c.width !== n) c.width = c.height = n;
  const ctx = c.getContext("2d");
  ctx.putImageData(fill(ctx.createImageData(n, n), values, NEURON_COLOURS()), 0, 0);
}

// Every hidden unit's picture: each layer's maps (unit after unit) as one image, cut onto #thumbs.
function drawUnits() {
  const [ctx, w, h] = fitCanvas($("thumbs"));
  ctx.clearRect(0, 0, w, h);
  ctx.imageSmoothingEnabled = true;
  const g = net.neuron_grid;
  net.atlases ||= [];
  net.nodes.slice(1, -1).forEach((layer, l) => {
    if (!net.atlases[l]) { // made once per network, reused at every frame
      const canvas = document.createElement("canvas");
      canvas.width = g; canvas.height = g * layer.length;
      const actx = canvas.getContext("2d");
      net.atlases[l] = { canvas, actx, image: actx.createImageData(g, g * layer.length) };
    }
    const { canvas, actx, image } = net.atlases[l];
    actx.putImageData(fill(image, last.N[l], NEURON_COLOURS()), 0, 0);
    layer.forEach(({ p }, j) => ctx.drawImage(canvas, 0, j * g, g, g, p.x - p.size / 2, p.y - p.size / 2, p.size, p.size));
  });
}

const MAX_LINKS = 300; // drawn per frame, about TF Playground's most (6×8): beyond that, the strongest (6×64 has 21,000)

function updateNetwork() {
  if (!net.links) return;
  drawUnits();
  const out = last.output, outNode = net.nodes[net.nodes.length - 1][0].el;
  const c = outNode.querySelector("canvas");
  const img = mapImage(bytes(out.map), outputColour(out, false), out.confidence ? bytes(out.confidence) : null);
  c.width = c.height = 32;
  c.getContext("2d").drawImage(img, 0, 0, 32, 32);
  drawLinks();
}

// The weight a link stands for: the output column is one node for all output units, so its links
// show the strongest weight into any of them.
function linkWeight(l, { i, j }) {
  const { w, shape } = last.W[l], outs = shape[0], ins = shape[1];
  if (l < last.W.length - 1) return w[j * ins + i];
  let m = 0;
  for (let o = 0; o < outs; o++) if (Math.abs(w[o * ins + i]) > Math.abs(m)) m = w[o * ins + i];
  return m;
}

function drawLinks() {
  const canvas = $("links");
  const [ctx, w, h] = fitCanvas(canvas);
  ctx.clearRect(0, 0, w, h);
  // a layer's links run row by row of its weight matrix, as the weights do
  const weights = net.links.map((group, l) => l < net.links.length - 1 ? last.W[l].w : Float32Array.from(group, (link) => linkWeight(l, link)));
  let scale = 1e-6, count = 0;
  for (const ws of weights) for (const v of ws) scale = Math.max(scale, Math.abs(v));
  // Too many to draw: only the strongest MAX_LINKS, found from a histogram of |w| (no sort).
  let floor = 0;
  for (const ws of weights) count += ws.length;
  if (count > MAX_LINKS) {
    const BINS = 512, hist = new Uint32Array(BINS);
    for (const ws of weights) for (const v of ws) hist[Math.min(BINS - 1, Math.floor((Math.abs(v) / scale) * BINS))]++;
    let bin = BINS - 1;
    for (let kept = hist[bin]; bin > 0 && kept + hist[bin - 1] <= MAX_LINKS; kept += hist[--bin]);
    floor = (bin / BINS) * scale;
  }
  // one path per colour and width band: a few strokes however many links
  const BANDS = 6, paths = Array.from({ length: 2 * BANDS }, () => new Path2D());
  net.links.forEach((group, l) => {
    const ws = weights[l];
    for (let k = 0; k < group.length; k++) {
      const a = Math.abs(ws[k]);
      if (a < floor || (floor > 0 && a === 0)) continue;
      const link = group[k], band = Math.min(BANDS - 1, Math.floor((a / scale) * BANDS));
      const path = paths[(ws[k] >= 0 ? 0 : BANDS) + band], mx = (link.x0 + link.x1) / 2;
      path.moveTo(link.x0, link.y0);
      path.bezierCurveTo(mx, link.y0, mx, link.y1, link.x1, link.y1);
    }
  });
  const widest = floor > 0 ? 2.5 : 5; // many links: thinner (wide strokes are most of a frame's painting)
  paths.forEach((path, k) => {
    const t = ((k % BANDS) + 0.5) / BANDS;
    ctx.strokeStyle = k < BANDS ? "rgb(8,119,189)" : "rgb(245,147,34)";
    ctx.globalAlpha = 0.3 + 0.7 * t;
    ctx.lineWidth = 0.6 + widest * t;
    ctx.stroke(path);
  });
  ctx.globalAlpha = 1;
  net.linkFloor = floor;
}

// The drawn link nearest the mouse, within a few pixels: {l, link, w}.
function linkAt(e) {
  if (!net || !net.links || !last) return null;
  const r = $("links").getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
  let best = null, bestD = 5;
  net.links.forEach((group, l) => {
    if (!group.length || x < group[0].x0 || x > group[0].x1) return;
    for (const link of group) {
      const w = linkWeight(l, link);
      if (Math.abs(w) < net.linkFloor) continue;
      // the curve's height at x: the Bézier's x(t) is monotonic, so solve it by bisection
      let lo = 0, hi = 1;
      const mx = (link.x0 + link.x1) / 2, bx = (t) => (1 - t) ** 3 * link.x0 + 3 * (1 - t) * t * mx + t ** 3 * link.x1;
      for (let k = 0; k < 18; k++) { const t = (lo + hi) / 2; if (bx(t) < x) lo = t; else hi = t; }
      const t = (lo + hi) / 2, cy = (1 - t) ** 3 * link.y0 + 3 * (1 - t) ** 2 * t * link.y0 + 3 * (1 - t) * t ** 2 * link.y1 + t ** 3 * link.y1;
      const d = Math.abs(cy - y);
      if (d < bestD) { bestD = d; best = { l, link, w }; }
    }
  });
  return best;
}

function linkName({ l, link }) {
  const from = l === 0 ? net.features[link.i] : `L${l} #${link.i + 1}`;
  const to = l === net.links.length - 1 ? "output" : `L${l + 1} #${link.j + 1}`;
  return `${from} → ${to}`;
}

function hoverLink(e) {
  const hit = linkAt(e), tip = $("link-tip");
  $("links").style.cursor = hit ? "pointer" : "";
  if (!hit) { tip.hidden = true; return; }
  const box = $("net").getBoundingClientRect();
  tip.textContent = `${linkName(hit)}: weight ${hit.w.toFixed(4)}`;
  Object.assign(tip.style, { left: `${e.clientX - box.left + 12}px`, top: `${e.clientY - box.top + 12}px` });
  tip.hidden = false;
}

// Click a link: type its new weight (as in TensorFlow Playground); Enter sets it, Escape cancels.
function editLink(e) {
  const hit = linkAt(e);
  if (!hit) return;
  const outputs = last.W[hit.l].shape[0];
  if (hit.l === net.links.length - 1 && outputs > 1) return toast("The output node stands for every class: edit a hidden layer's link");
  const editor = $("link-editor"), input = editor.querySelector("input"), box = $("net").getBoundingClientRect();
  editor.querySelector("span").textContent = linkName(hit);
  Object.assign(editor.style, { left: `${e.clientX - box.left + 8}px`, top: `${e.clientY - box.top + 8}px` });
  editor.hidden = false;
  input.value = hit.w.toFixed(4);
  input.focus(); input.select();
  input.onkeydown = (k) => {
    if (k.key === "Escape") editor.hidden = true;
    if (k.key !== "Enter") return;
    const value = Number(input.value);
    if (input.value.trim() === "" || !Number.isFinite(value)) return showError(`weight: expected a number (got ${input.value})`);
    editor.hidden = true;
    send({ type: "set_weight", layer: hit.l, source: hit.link.i, target: hit.l === net.links.length - 1 ? 0 : hit.link.j, value });
  };
}

// ---------------------------------------------------------------------------- charts

function chart(canvas, series, opts = {}) {
  const [ctx, w, h] = fitCanvas(canvas);
  ctx.clearRect(0, 0, w, h);
  const pad = { l: 40, r: 8, t: 6, b: 16 };
  const finite = (v) => v !== null && Number.isFinite(v) && (!opts.log || v > 0);
  let lo = opts.min, hi = opts.max, n = 1;
  for (const s of series) {
    n = Math.max(n, s.mean.length);
    for (let i = 0; i < s.mean.length; i++) {
      if (!finite(s.mean[i])) continue;
      const sd = s.std && s.std[i] ? s.std[i] : 0;
      const a = opts.log ? s.mean[i] : s.mean[i] - sd, b = s.mean[i] + sd;
      if (opts.min === undefined) lo = lo === undefined ? a : Math.min(lo, a);
      if (opts.max === undefined) hi = hi === undefined ? b : Math.max(hi, b);
    }
  }
  if (lo === undefined || hi === undefined || (opts.log && !(lo > 0))) {
    ctx.fillStyle = "#98a2b3"; ctx.font = "12px system-ui, sans-serif";
    ctx.fillText("no epochs yet", w / 2 - 36, h / 2);
    return;
  }
  if (opts.log) { lo = Math.log10(lo); hi = Math.log10(hi); }
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) { // a constant: a small range around it
    const d = opts.log ? 0.5 : Math.max(Math.abs(hi) * 0.1, 1e-6);
    hi += d; lo -= d;
  }
  if (opts.percent) { lo = Math.max(lo, 0); hi = Math.min(hi, 1); }
  if (opts.min !== undefined) lo = Math.max(lo, opts.min);
  if (hi <= lo) hi = lo + (opts.percent ? 0.1 : 1e-6);
  const X = (i) => pad.l + (i / Math.max(1, n - 1)) * (w - pad.l - pad.r);
  const Y = (v) => { const u = opts.log ? Math.log10(v) : v; return pad.t + (1 - (u - lo) / (hi - lo)) * (h - pad.t - pad.b); };
  ctx.strokeStyle = "#e4e7ec"; ctx.fillStyle = "#667085"; ctx.font = "10px system-ui, sans-serif"; ctx.lineWidth = 1;
  for (let k = 0; k <= 3; k++) {
    const u = lo + ((hi - lo) * k) / 3, y = pad.t + (1 - k / 3) * (h - pad.t - pad.b);
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
    const label = opts.log ? Number((10 ** u).toPrecision(2)).toString() : opts.percent ? `${+(u * 100).toFixed(digits(100 * (hi - lo) / 3))}%` : u.toFixed(digits((hi - lo) / 3));
    ctx.fillText(label, 2, y + 3);
  }
  const epochs = `${n} epoch${n === 1 ? "" : "s"}`;
  ctx.fillText(epochs, w - pad.r - ctx.measureText(epochs).width, h - 3);
  // at most two points per pixel: 10,000 epochs draw as fast as 300
  const stride = Math.max(1, Math.floor(n / (2 * (w - pad.l - pad.r)))), at = (i, len) => Math.min(i, len - 1);
  for (const s of series) {
    if (s.std) {
      ctx.fillStyle = s.color + "33";
      ctx.beginPath();
      let started = false;
      for (let i = 0; i < s.mean.length; i += stride) if (finite(s.mean[i])) { const p = [X(i), Y(s.mean[i] + (s.std[i] || 0))]; started ? ctx.lineTo(...p) : ctx.moveTo(...p); started = true; }
      for (let i = s.mean.length - 1; i >= 0; i -= stride) if (finite(s.mean[i])) ctx.lineTo(X(i), Y(Math.max(s.mean[i] - (s.std[i] || 0), opts.log ? 1e-12 : -Infinity)));
      ctx.fill();
    }
    ctx.strokeStyle = s.color; ctx.lineWidth = 1.6; ctx.setLineDash(s.dash ? [4, 3] : []);
    ctx.beginPath();
    let started = false;
    for (let k = 0; k < s.mean.length + stride - 1; k += stride) {
      const i = at(k, s.mean.length); // the last epoch always
      if (!finite(s.mean[i])) { started = false; continue; }
      started ? ctx.lineTo(X(i), Y(s.mean[i])) : ctx.moveTo(X(i), Y(s.mean[i]));
      started = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

// Decimals that tell ticks `step` apart: 0.004 apart → 3, 0.3 → 1, 3 → 0.
function digits(step) { return Math.min(8, Math.max(0, Math.ceil(-Math.log10(step)))); }

function drawCharts() {
  chart($("chart-loss"), [{ mean: curves.train_loss, color: SERIES[0] }, { mean: curves.val_loss, color: SERIES[1], dash: true }], { min: 0 });
  if (net.task !== "regression")
    chart($("chart-acc"), [{ mean: curves.train_acc, color: SERIES[0] }, { mean: curves.val_acc, color: SERIES[1], dash: true }], { percent: true });
  const layers = net.sizes.length - 1;
  const series = Array.from({ length: layers }, (_, l) => ({ mean: gradHistory.map((g) => g[l]), color: SERIES[l % SERIES.length] }));
  chart($("chart-grad"), series, { log: true });
  $("grad-key").innerHTML = series.map((s, l) => `<i style="background:${s.color}"></i>${l === layers - 1 ? "out" : "L" + (l + 1)}`).join(" ");
}

// ---------------------------------------------------------------------------- compare mode

// A comparison trains on the server beside the playground's session: the page stays live, and
// Cancel (or closing the tab) stops it.
let comparing = false;

function runCompare() {
  hideError();
  send({ type: "compare", ...compareBody() });
}

function onCompareStart(m) {
  compareRuns = m.settings.map((label) => ({ label, pending: true }));
  comparing = true;
  $("compare-cancel").hidden = false;
  onCompareProgress(0);
  renderCompare();
}

function onCompareProgress(done) {
  $("compare-progress").hidden = false;
  $("compare-progress").value = done;
  for (const el of document.querySelectorAll(".thumb.pending")) el.textContent = `training… ${Math.floor(100 * done)}%`;
}

function onCompareResult(m) {
  for (const s of m.settings) {
    const i = compareRuns.findIndex((r) => r.label === s.label);
    if (i >= 0) compareRuns[i] = s;
  }
  renderCompare();
  if (compareRuns.every((s) => !s.pending)) onCompareEnd();
}

function onCompareEnd(why) {
  comparing = false;
  $("compare-cancel").hidden = $("compare-progress").hidden = true;
  if (why) for (const s of compareRuns) if (s.pending) s.cancelled = true;
  renderCompare();
}

function renderCompare() {
  const box = $("compare-cards");
  box.innerHTML = "";
  const regression = state["data.task"] === "regression";
  compareRuns.forEach((s, k) => {
    const card = document.createElement("div");
    card.className = "card";
    card.style.borderTopColor = SERIES[k % SERIES.length];
    const pm = (b, pct) => b.mean[0] === null ? "–" : pct ? `${(100 * b.mean[0]).toFixed(1)} ± ${(100 * b.std[0]).toFixed(1)}%` : `${b.mean[0].toFixed(4)} ± ${b.std[0].toFixed(4)}`;
    card.innerHTML = s.pending
      ? `<h3>${s.label}</h3><div class="thumb pending">${s.cancelled ? "cancelled" : `training… ${Math.floor(100 * $("compare-progress").value)}%`}</div>`
      : `<h3>${s.label}</h3><canvas class="thumb"></canvas>
         <dl><dt>val ${regression ? "MSE" : "loss"}</dt><dd>${pm(s.final.val_loss)}</dd>
         ${regression ? "" : `<dt>val acc</dt><dd>${pm(s.final.val_acc, true)}</dd>`}
         <dt>engine</dt><dd>${s.engine}, ${s.seeds} seeds</dd></dl>`;
    box.appendChild(card);
    if (!s.pending && s.output) {
      const c = card.querySelector("canvas");
      const img = mapImage(bytes(s.output.map), outputColour(s.output, false), s.output.confidence ? bytes(s.output.confidence) : null);
      c.width = c.height = 160;
      c.getContext("2d").drawImage(img, 0, 0, 160, 160);
    }
  });
  $("cmp-key").innerHTML = compareRuns.map((s, k) => `<span class="swatch" style="background:${SERIES[k % SERIES.length]}"></span>${s.label}`).join(" ");
  const done = compareRuns.filter((s) => !s.pending);
  const series = (col) => done.map((s) => ({ ...s.curves[col], color: SERIES[compareRuns.indexOf(s) % SERIES.length] }));
  chart($("cmp-train"), series("train_loss"), { min: 0 });
  chart($("cmp-val"), series("val_loss"), { min: 0 });
  $("cmp-acc-figure").hidden = regression;
  if (!regression) chart($("cmp-acc"), series("val_acc"), { percent: true });
}

function setMode(mode) {
  view.mode = mode;
  writeHash();
  $("play-view").hidden = mode !== "play";
  $("compare-view").hidden = mode !== "compare";
  $("tab-play").classList.toggle("active", mode === "play");
  $("tab-compare").classList.toggle("active", mode === "compare");
  document.querySelector(".transport").classList.toggle("muted", mode !== "play");
  if (playing) { send({ type: "pause" }); setPlaying(false); }
  redraw();
}

function onUpdateRedraw() { drawOutput(); updateNetwork(); drawCharts(); }

// The current mode's view from scratch (after a mode switch or a resize).
function redraw() {
  if (view.mode !== "play") renderCompare();
  else if (net) { buildNetwork(); if (last) onUpdateRedraw(); }
}

// ---------------------------------------------------------------------------- share, export, messages

async function exportAs(format) {
  const body = view.mode === "compare" ? compareBody() : requestBody();
  const r = await fetch(`/api/export?format=${format}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) return showError(JSON.parse(text).error);
  if (format === "toml") {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "application/toml" }));
    a.download = "playground.toml";
    a.click();
    URL.revokeObjectURL(a.href);
    toast("playground.toml downloaded: trainlab run playground.toml");
  } else {
    $("code").textContent = text;
    $("code-dialog").showModal();
  }
}

async function copy(text, message) {
  try { await navigator.clipboard.writeText(text); toast(message); } catch { toast("Copy it from the address bar"); }
}

function showError(message) { const e = $("error"); e.textContent = message; e.hidden = false; }
function hideError() { $("error").hidden = true; }
let toastTimer = null;
function toast(message) {
  const t = $("toast");
  t.textContent = message; t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 2500);
}

// ---------------------------------------------------------------------------- start

// The choices of these settings are the config's own (trainlab/config.py), served by /api/options,
// so a new activation or optimizer shows up here without touching the page.
const CHOICES = { "data.name": "datasets", "model.activation": "activations", "model.init": "inits",
                  "optim.name": "optimizers", "optim.schedule.name": "schedules" };
const CHOICE_LABELS = { blobs: "blobs (3 classes)", plane: "plane (regression)", csv: "uploaded CSV" };

let NOISE = { classification: {}, regression: {} }; // each data set's default noise, from /api/options
let ACTIVATION_NAMES = []; // from /api/options: each hidden layer's selector offers them

async function loadChoices() {
  const options = await (await fetch("/api/options")).json();
  REGRESSION_DATA = options.regression_datasets;
  NOISE = options.noise;
  for (const [key, list] of Object.entries(CHOICES))
    $(key).replaceChildren(...options[list].map(v => new Option(CHOICE_LABELS[v] || v, v)));
  ACTIVATION_NAMES = options.activations;
  const perLayerOption = new Option("per layer", ""); // shown while the layers differ
  perLayerOption.disabled = true;
  $("model.activation").appendChild(perLayerOption);
}

async function start() {
  await loadChoices();
  readHash();
  bindControls();
  syncControls();
  $("train").onclick = () => {
    if (last && last.status !== "training" && last.epoch > 0) send({ type: "reset", seed: state.seed }); // again
    send({ type: "play" }); setPlaying(true);
  };
  $("pause").onclick = () => { send({ type: "pause" }); setPlaying(false); };
  $("step").onclick = () => send({ type: "step" });
  // New initial weights: the next seed, shown in the seed field and the link, so a shared link reproduces them.
  $("reset").onclick = () => send({ type: "reset", seed: (Number(state.seed) + 1) % 2147483648 });
  $("tab-play").onclick = () => setMode("play");
  $("tab-compare").onclick = () => setMode("compare");
  $("compare-run").onclick = runCompare;
  $("compare-cancel").onclick = () => send({ type: "compare_cancel" });
  $("share").onclick = () => copy(location.href, "Link copied: it opens this exact setup");
  $("export-toml").onclick = () => exportAs("toml");
  $("export-code").onclick = () => exportAs("python");
  $("copy-code").onclick = () => copy($("code").textContent, "Code copied");
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(redraw, 150);
  });
  connect();
  setup();
  setMode(view.mode);
  metricsPlaceholder();
}

function metricsPlaceholder() { $("metrics").innerHTML = "<span>Press ▶ to train</span>"; }

start();
