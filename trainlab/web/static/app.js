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
  "model.hidden": [8, 8], "model.activation": "tanh", "model.init": "default",
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
  $("upload").closest("label").classList.toggle("active", state["data.name"] === "csv");
  renderFeatureChips();
}

function setKey(key, value) {
  state[key] = value;
  if (key === "data.name") {
    if (value === "plane") state["data.task"] = "regression";
    else if (value !== "gaussian" && value !== "csv") state["data.task"] = "classification";
  }
  if (key === "data.task" && value === "regression" && !REGRESSION_DATA.includes(state["data.name"]))
    state["data.name"] = "plane";
  if (key === "data.task" && value === "classification" && state["data.name"] === "plane") state["data.name"] = "moons";
  // Regression noise is the target's noise, on another scale than the generators' noise.
  if (key === "data.name" || key === "data.task") state["data.noise"] = state["data.task"] === "regression" ? 0.05 : 0.25;
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
  if (!r.ok) return showError(body.error);
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
function setup() { hideError(); settingUp = true; send({ type: "setup", ...requestBody() }); }

function handle(m) {
  switch (m.type) {
    case "ready": return onReady(m);
    case "update": return onUpdate(m);
    case "reset": curves = emptyHistory(); gradHistory = []; return setPlaying(false);
    case "paused": return setPlaying(false);
    case "error":
      setPlaying(false);
      if (settingUp) ["train", "step", "reset"].forEach((id) => ($(id).disabled = true));
      return showError(m.message);
    case "compare_start": return onCompareStart(m);
    case "compare_result": return onCompareResult(m);
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

function onUpdate(m) {
  last = m;
  for (const k of Object.keys(curves)) curves[k].push(...m.history[k]);
  gradHistory.push(...m.layer_grad_norms);
  $("epoch").textContent = m.epoch;
  const done = m.status !== "training";
  $("status").textContent = done && m.epoch > 0 ? { ok: "finished", diverged: "diverged", early_stopped: "stopped early" }[m.status] : "";
  $("status").className = "status " + (m.status === "diverged" ? "bad" : "");
  if (done) setPlaying(false);
  onUpdateRedraw();
  metrics();
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

function mapImage(values, colour, confidence) {
  const n = Math.round(Math.sqrt(values.length));
  const c = document.createElement("canvas");
  c.width = c.height = n;
  const ctx = c.getContext("2d"), img = ctx.createImageData(n, n);
  for (let i = 0; i < values.length; i++) {
    const rgb = colour(values[i], confidence ? confidence[i] : 255);
    img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

function outputColour(output, discretize) {
  if (output.kind === "classes") {
    return (cls, conf) => mix(WHITE, CLASS_COLORS[cls % CLASS_COLORS.length], discretize ? 0.55 : 0.7 * Math.max(0, (conf / 255 - 0.3) / 0.7));
  }
  return (v) => {
    let t = v / 255;
    if (discretize) t = output.kind === "value" ? Math.round(t * 8) / 8 : (t > 0.5 ? 0.8 : 0.2);
    return mix(WHITE, diverging(t), 0.8);
  };
}

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
    const map = hovered.layer === 0 ? net.inputs[hovered.unit] : last.neurons[hovered.layer - 1][hovered.unit];
    image = mapImage(bytes(map), outputColour({ kind: "value" }, discretize));
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
  const [x0, x1, y0, y1] = net.extent;
  const px = (x) => ((x - x0) / (x1 - x0)) * w, py = (y) => ((y1 - y) / (y1 - y0)) * h;
  const pointColour = (y) => net.task === "regression"
    ? diverging(Math.max(0, Math.min(1, (y / net.target_scale + 1) / 2)))
    : CLASS_COLORS[y % CLASS_COLORS.length];
  const splits = [["train", "#fff"]];
  if ($("show-test").checked) splits.push(["val", "#222"]);
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
  box.querySelectorAll(".node, .layer-label").forEach((e) => e.remove());
  const svg = $("links");
  svg.innerHTML = "";
  const hidden = net.sizes.slice(1, -1);
  box.style.height = `${Math.max(440, 40 + 14 * Math.max(FEATURES.length, ...hidden))}px`; // wide layers get room
  const W = box.clientWidth, H = box.clientHeight;
  const columns = [FEATURES.length, ...hidden, 1];
  const colX = (i) => 34 + (i * (W - 68)) / (columns.length - 1);
  const layout = columns.map((n, i) => {
    const spacing = Math.min(52, (H - 40) / n), size = Math.max(8, Math.min(38, spacing - 6));
    const top = 28 + (H - 28 - spacing * n) / 2;
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
    if (k >= 0) { net.inputPositions[k] = p; paint(node, net.inputs[k]); }
  });
  net.nodes.push(net.inputPositions.map((p) => ({ p })));
  hidden.forEach((n, l) => {
    net.nodes.push(layout[l + 1].map((p, j) => ({ p, el: makeNode(p, { layer: l + 1, unit: j }) })));
    labelLayer(colX(l + 1), n, l);
  });
  const outP = layout[layout.length - 1][0];
  const out = makeNode({ ...outP, size: 44 }, null, "");
  out.classList.add("output");
  out.title = "the network's output (shown big on the right)";
  net.nodes.push([{ p: { ...outP, size: 44 }, el: out }]);
  addLabel(colX(columns.length - 1), 12, "output");
  addLabel(colX(0), 12, "inputs");
  // links from every unit to every unit of the next layer
  net.links = [];
  for (let l = 0; l < net.nodes.length - 1; l++) {
    const group = [];
    for (const [j, b] of net.nodes[l + 1].entries()) {
      for (const [i, a] of net.nodes[l].entries()) {
        const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
        const x0 = a.p.x + a.p.size / 2, x1 = b.p.x - b.p.size / 2, mx = (x0 + x1) / 2;
        path.setAttribute("d", `M${x0},${a.p.y} C${mx},${a.p.y} ${mx},${b.p.y} ${x1},${b.p.y}`);
        path.setAttribute("stroke", "#d0d5dd");
        svg.appendChild(path);
        group.push({ path, i, j });
      }
    }
    net.links.push(group);
  }
}

function makeNode(p, which, label) {
  const node = document.createElement("div");
  node.className = "node";
  Object.assign(node.style, { left: `${p.x - p.size / 2}px`, top: `${p.y - p.size / 2}px`, width: `${p.size}px`, height: `${p.size}px` });
  const c = document.createElement("canvas");
  c.width = c.height = 24;
  node.appendChild(c);
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
}

function addLabel(x, y, text) {
  const el = document.createElement("div");
  el.className = "layer-label caption";
  el.style.left = `${x - 40}px`;
  el.textContent = text;
  $("net").appendChild(el);
}

function paint(node, b64, colour) {
  const c = node.querySelector("canvas"), values = bytes(b64), n = Math.round(Math.sqrt(values.length));
  if (c.width !== n) c.width = c.height = n;
  const ctx = c.getContext("2d"), img = ctx.createImageData(n, n), col = colour || ((v) => mix(WHITE, diverging(v / 255), 0.85));
  for (let i = 0; i < values.length; i++) {
    const rgb = col(values[i]);
    img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

function updateNetwork() {
  if (!net.links) return;
  net.nodes.slice(1, -1).forEach((layer, l) => layer.forEach((n, j) => paint(n.el, last.neurons[l][j])));
  const out = last.output, outNode = net.nodes[net.nodes.length - 1][0].el;
  const c = outNode.querySelector("canvas");
  const img = mapImage(bytes(out.map), outputColour(out, false), out.confidence ? bytes(out.confidence) : null);
  c.width = c.height = 32;
  c.getContext("2d").drawImage(img, 0, 0, 32, 32);
  const all = last.weights.flatMap((l) => l.w.flat().map(Math.abs));
  const scale = Math.max(1e-6, ...all);
  last.weights.forEach((layer, l) => {
    for (const { path, i, j } of net.links[l]) {
      // the output column is one node standing for all output units: draw the strongest weight
      const w = l === last.weights.length - 1 ? layer.w.reduce((m, row) => (Math.abs(row[i]) > Math.abs(m) ? row[i] : m), 0) : layer.w[j][i];
      const t = Math.abs(w) / scale;
      path.setAttribute("stroke", w >= 0 ? "rgb(8,119,189)" : "rgb(245,147,34)");
      path.setAttribute("stroke-width", (0.6 + 5 * t).toFixed(2));
      path.setAttribute("stroke-opacity", (0.35 + 0.65 * t).toFixed(2));
      path.setAttribute("data-w", w);
    }
  });
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
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const X = (i) => pad.l + (i / Math.max(1, n - 1)) * (w - pad.l - pad.r);
  const Y = (v) => { const u = opts.log ? Math.log10(v) : v; return pad.t + (1 - (u - lo) / (hi - lo)) * (h - pad.t - pad.b); };
  ctx.strokeStyle = "#e4e7ec"; ctx.fillStyle = "#667085"; ctx.font = "10px system-ui, sans-serif"; ctx.lineWidth = 1;
  for (let k = 0; k <= 3; k++) {
    const u = lo + ((hi - lo) * k) / 3, y = pad.t + (1 - k / 3) * (h - pad.t - pad.b);
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
    const label = opts.log ? Number((10 ** u).toPrecision(2)).toString() : opts.percent ? `${Math.round(u * 100)}%` : Math.abs(u) < 10 ? u.toFixed(2) : u.toFixed(0);
    ctx.fillText(label, 2, y + 3);
  }
  const epochs = `${n} epoch${n === 1 ? "" : "s"}`;
  ctx.fillText(epochs, w - pad.r - ctx.measureText(epochs).width, h - 3);
  for (const s of series) {
    if (s.std) {
      ctx.fillStyle = s.color + "33";
      ctx.beginPath();
      let started = false;
      for (let i = 0; i < s.mean.length; i++) if (finite(s.mean[i])) { const p = [X(i), Y(s.mean[i] + (s.std[i] || 0))]; started ? ctx.lineTo(...p) : ctx.moveTo(...p); started = true; }
      for (let i = s.mean.length - 1; i >= 0; i--) if (finite(s.mean[i])) ctx.lineTo(X(i), Y(Math.max(s.mean[i] - (s.std[i] || 0), opts.log ? 1e-12 : -Infinity)));
      ctx.fill();
    }
    ctx.strokeStyle = s.color; ctx.lineWidth = 1.6; ctx.setLineDash(s.dash ? [4, 3] : []);
    ctx.beginPath();
    let started = false;
    for (let i = 0; i < s.mean.length; i++) {
      if (!finite(s.mean[i])) { started = false; continue; }
      started ? ctx.lineTo(X(i), Y(s.mean[i])) : ctx.moveTo(X(i), Y(s.mean[i]));
      started = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

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

function runCompare() {
  hideError();
  send({ type: "compare", ...compareBody() });
}

function onCompareStart(m) {
  compareRuns = m.settings.map((label) => ({ label, pending: true }));
  renderCompare();
}

function onCompareResult(m) {
  for (const s of m.settings) {
    const i = compareRuns.findIndex((r) => r.label === s.label);
    if (i >= 0) compareRuns[i] = s;
  }
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
      ? `<h3>${s.label}</h3><div class="thumb pending">training…</div>`
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
  if (playing) send({ type: "pause" });
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

async function loadChoices() {
  const options = await (await fetch("/api/options")).json();
  REGRESSION_DATA = options.regression_datasets;
  for (const [key, list] of Object.entries(CHOICES))
    $(key).replaceChildren(...options[list].map(v => new Option(CHOICE_LABELS[v] || v, v)));
}

async function start() {
  await loadChoices();
  readHash();
  bindControls();
  syncControls();
  $("train").onclick = () => {
    if (last && last.status !== "training" && last.epoch > 0) send({ type: "reset" });
    send({ type: "play" }); setPlaying(true);
  };
  $("pause").onclick = () => send({ type: "pause" });
  $("step").onclick = () => send({ type: "step" });
  $("reset").onclick = () => send({ type: "reset" });
  $("tab-play").onclick = () => setMode("play");
  $("tab-compare").onclick = () => setMode("compare");
  $("compare-run").onclick = runCompare;
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
