/* Digits: the "Look inside" and "Compare models" panels of the drawing page.
 *
 * app.js owns the drawing and the prediction; this file listens to it (see the top of app.js):
 *   digits:result  an answer is shown: { answer, digits, selected, model, request, kind, refused }
 *   digits:select  another digit of the number is chosen: { selected }
 *   digits:clear   nothing is shown any more
 * and sets <body data-include> to "activations,saliency" while the "Look inside" panel is open, so the
 * page's own /predict requests carry the layers (a collapsed panel costs the server nothing).
 *
 * Look inside: the chosen digit's model input and its occlusion saliency (28x28), then each layer of the
 * model as a column: dense layers as cells lit by their activation (a <canvas>, with a text summary),
 * convolutional layers as their feature maps (one PNG atlas from the API), the output as ten labelled cells.
 * Compare: the same request sent to every model the server lists, in the course's order (softmax regression,
 * perceptron, convolutional network), with softmax regression's ten weight templates.
 * No inline code or style attributes: styles set here go through the CSSOM, which the CSP allows.
 */
"use strict";

(() => {
  const PREDICT_URL = document.body.dataset.predictUrl || "/predict";
  const MODELS_URL = document.body.dataset.modelsUrl || "/v1/models";
  const INCLUDE = "activations,saliency";
  const PANELS_KEY = "digits.panels"; // which panels are open, remembered
  const COMPARE_DELAY_MS = 300; // a live drawing is compared once it pauses
  const COURSE = ["softmax", "mlp", "cnn"]; // architectures in the order the course teaches them
  const PITCH = 7; // a dense unit's cell on its canvas: 6 px and a 1 px gap
  const ATLAS_WIDTH = 240; // CSS px a feature-map atlas is scaled up to (whole multiples only)

  const $ = (id) => document.getElementById(id);
  const lang = document.documentElement.lang || undefined;
  const number = (x, digits = 1) => new Intl.NumberFormat(lang, { maximumFractionDigits: digits }).format(x);
  const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 });

  const MESSAGES = readMessages();

  /* The page's messages in its language (service/messages.py), a JSON data block the CSP never executes. */
  function readMessages() {
    try {
      return JSON.parse($("messages").textContent) || {};
    } catch {
      return {};
    }
  }

  /* The message `key` with each {name} replaced by params[name]; the key itself if the page has no such message. */
  function t(key, params = {}) {
    const text = Object.hasOwn(MESSAGES, key) ? MESSAGES[key] : key;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (Object.hasOwn(params, name) ? String(params[name]) : whole));
  }

  function make(tag, className = "", text = "") {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text) el.textContent = text;
    return el;
  }

  // ---- panels: the button in a panel's heading shows or hides its body; the choice is remembered ----

  const panels = { network: $("network-toggle"), compare: $("compare-toggle") };

  function savedPanels() {
    try {
      return JSON.parse(window.localStorage.getItem(PANELS_KEY) || "{}") || {};
    } catch {
      return {}; // storage unavailable (private mode) or garbled: the defaults
    }
  }

  function isOpen(name) {
    return panels[name].getAttribute("aria-expanded") === "true";
  }

  function setOpen(name, open) {
    const button = panels[name];
    button.setAttribute("aria-expanded", String(open));
    $(button.getAttribute("aria-controls")).hidden = !open;
    try {
      window.localStorage.setItem(PANELS_KEY, JSON.stringify({ ...savedPanels(), [name]: open }));
    } catch {
      // not remembered: fine
    }
  }

  // ---- colour maps ----

  // dark to bright through purple, orange and yellow (like "inferno"): a neuron lighting up
  const LIT = [
    [0, [22, 24, 40]],
    [0.35, [120, 40, 130]],
    [0.7, [240, 110, 40]],
    [1, [255, 240, 130]],
  ];

  function ramp(stops, x) {
    const v = Math.min(1, Math.max(0, x));
    for (let i = 1; i < stops.length; i++) {
      const [x1, c1] = stops[i];
      const [x0, c0] = stops[i - 1];
      if (v <= x1) return c0.map((c, k) => Math.round(c + ((c1[k] - c) * (v - x0)) / (x1 - x0)));
    }
    return stops[stops.length - 1][1];
  }

  /* An activation scaled to -1..1 -> [r, g, b]: lit for positive, blue for negative (tanh layers). */
  function litColour(x) {
    if (x >= 0) return ramp(LIT, x);
    return ramp([[0, [22, 24, 40]], [1, [90, 170, 255]]], -x);
  }

  /* A weight scaled to -1..1 -> [r, g, b]: blue, white at 0, red. */
  function divergingColour(x) {
    if (x >= 0) return ramp([[0, [255, 255, 255]], [1, [200, 30, 40]]], x);
    return ramp([[0, [255, 255, 255]], [1, [30, 80, 200]]], -x);
  }

  const rgb = (c) => `rgb(${c[0]} ${c[1]} ${c[2]})`;
  const largest = (values) => values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

  // ---- data from the server ----

  let modelsPromise = null; // GET /v1/models, once
  const templatesPromises = new Map(); // model name -> GET /v1/models/<name>/templates, once

  async function getJson(url, options = {}) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, ...options });
    const data = await response.json().catch(() => null);
    return { response, data };
  }

  /* The models the server has, in the course's order: [{ name, version, architecture, parameters, ... }]. */
  function loadModels() {
    modelsPromise ||= getJson(MODELS_URL)
      .then(({ response, data }) => (response.ok && data && Array.isArray(data.models) ? data.models : []))
      .catch(() => [])
      .then((models) => models.slice().sort((a, b) => courseRank(a) - courseRank(b)));
    return modelsPromise;
  }

  function courseRank(model) {
    const rank = COURSE.indexOf(model.architecture);
    return rank < 0 ? COURSE.length : rank;
  }

  /* A softmax regression's ten templates ([{ digit, weights: 28x28, bias }]), or null for other models. */
  function loadTemplates(name) {
    if (!templatesPromises.has(name)) {
      const url = `${MODELS_URL.replace(/\/$/, "")}/${encodeURIComponent(name)}/templates`;
      const promise = getJson(url)
        .then(({ response, data }) => (response.ok && data && Array.isArray(data.templates) ? data.templates : null))
        .catch(() => null);
      templatesPromises.set(name, promise);
    }
    return templatesPromises.get(name);
  }

  async function softmaxModel() {
    const models = await loadModels();
    return models.find((m) => m.architecture === "softmax") || null;
  }

  /* POST /predict for `model` with a request app.js sent (its body and headers), asking for `include`. */
  async function predict(request, model, include, signal) {
    const url = new URL(PREDICT_URL, document.baseURI);
    url.searchParams.set("model", model);
    if (include) url.searchParams.set("include", include);
    return getJson(url.pathname + url.search, {
      method: "POST",
      headers: { Accept: "application/json", ...request.headers },
      body: request.body,
      signal,
      cache: "no-store",
      credentials: "same-origin",
    });
  }

  /* The digits of an answer, or of a "not a digit" refusal (its details carry them), or null. */
  function answerDigits(data) {
    if (data && Array.isArray(data.digits)) return data.digits;
    const details = data && data.error && data.error.details;
    return details && Array.isArray(details.digits) ? details.digits : null;
  }

  /* An API error in the page's language where the page has its code's message, else the API's own. */
  function errorText(data, response) {
    const error = data && data.error;
    if (!error) return `HTTP ${response.status}`;
    const key = `error.${error.code}`;
    return Object.hasOwn(MESSAGES, key) ? t(key) : error.message || `HTTP ${response.status}`;
  }

  const label = (d) => (d.digit === null || d.digit === undefined ? "?" : String(d.digit));

  // the shown result (digits:result's detail, its digits replaced by fuller ones when fetched here)
  let result = null;

  // ---- templates: ten 28x28 canvases, one per digit, on one diverging scale ----

  function drawTemplate(canvas, weights, scale) {
    canvas.width = 28;
    canvas.height = 28;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(28, 28);
    weights.flat().forEach((w, i) => {
      const c = divergingColour(w / scale);
      image.data.set([c[0], c[1], c[2], 255], 4 * i);
    });
    ctx.putImageData(image, 0, 0);
  }

  /* One <li> per digit: its template as a canvas (role img) and the digit as its label. */
  function templateItems(templates) {
    const scale = largest(templates.flatMap((tpl) => tpl.weights.flat())) || 1;
    return templates.map((tpl) => {
      const item = make("li", "template");
      const canvas = make("canvas", "template-canvas");
      canvas.dataset.testid = "template";
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", t("inside.templateOf", { digit: tpl.digit }));
      drawTemplate(canvas, tpl.weights, scale);
      item.append(canvas, make("span", "template-digit", String(tpl.digit)));
      return item;
    });
  }

  async function showTemplates() {
    const model = await softmaxModel();
    const templates = model && (await loadTemplates(model.name));
    $("templates").hidden = !templates;
    if (templates) $("template-list").replaceChildren(...templateItems(templates));
  }

  // ---- look inside: the chosen digit's way through the selected model ----

  const network = $("network");
  const networkLayers = $("network-layers");
  const networkStatus = $("network-status");
  let insideController = null; // the request for the layers made here (the panel opened after an answer)

  function column(kind, title, summary) {
    const item = make("li", `net-col net-${kind}`);
    item.dataset.testid = "layer";
    item.dataset.kind = kind;
    const figure = make("figure", "net-figure");
    const stage = make("div", "net-stage");
    const caption = make("figcaption", "net-caption");
    caption.append(make("span", "net-name", title), make("span", "net-summary", summary));
    figure.append(stage, caption);
    item.append(figure);
    return { item, stage };
  }

  /* The model input, and the saliency over it: red where blanking a patch lowered the answer's probability. */
  function inputColumn(d) {
    const { item, stage } = column("input", t("inside.input"), t("inside.inputSize"));
    item.dataset.name = "input";
    const img = make("img", "net-input-img");
    img.alt = t("inside.inputAlt");
    img.width = 28;
    img.height = 28;
    img.src = d.input;
    img.dataset.testid = "network-input";
    stage.append(img);
    if (d.saliency && Array.isArray(d.saliency.values)) {
      const canvas = make("canvas", "net-saliency");
      canvas.dataset.testid = "saliency";
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", saliencySummary(d.saliency));
      stage.append(canvas);
      drawSaliency(canvas, img, d.saliency.values);
      item.querySelector(".net-summary").textContent = saliencySummary(d.saliency);
    }
    return item;
  }

  function saliencySummary(s) {
    const top = s.values.flat().reduce((m, v) => Math.max(m, v), 0);
    return t("inside.saliency", { patch: s.patch, digit: s.digit, drop: percent.format(top) });
  }

  /* The input dimmed to grey, with each pixel's saliency over it (red: supported the answer, blue: against). */
  async function drawSaliency(canvas, img, values) {
    canvas.width = 28;
    canvas.height = 28;
    const ctx = canvas.getContext("2d");
    try {
      await img.decode();
    } catch {
      return; // the image was replaced before it loaded
    }
    ctx.drawImage(img, 0, 0, 28, 28);
    const image = ctx.getImageData(0, 0, 28, 28);
    const flat = values.flat();
    const scale = largest(flat) || 1;
    flat.forEach((v, i) => {
      const grey = 0.35 * image.data[4 * i];
      const a = Math.min(1, Math.abs(v) / scale);
      const heat = v >= 0 ? [255, 70, 40] : [60, 130, 255];
      image.data.set(heat.map((c) => Math.round(grey + (c - grey) * a)), 4 * i);
    });
    ctx.putImageData(image, 0, 0);
  }

  function denseSummary(layer) {
    const values = layer.values.map(Number);
    const active = values.filter((v) => v > 0).length;
    return t("inside.dense", {
      name: layer.name,
      units: layer.units,
      active,
      top: number(largest(values), 2),
    });
  }

  /* A dense layer: its units as cells in a column twice as high as wide, lit by value / the strongest. */
  function denseColumn(layer) {
    const values = layer.values.map(Number);
    const { item, stage } = column("dense", layer.name, t("inside.units", { units: layer.units }));
    item.dataset.name = layer.name;
    const summary = denseSummary(layer);
    const canvas = make("canvas", "net-units");
    canvas.dataset.testid = "units";
    canvas.dataset.units = String(values.length);
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", summary);
    const cols = Math.max(1, Math.ceil(Math.sqrt(values.length / 2)));
    const rows = Math.ceil(values.length / cols);
    canvas.width = cols * PITCH - 1;
    canvas.height = rows * PITCH - 1;
    const ctx = canvas.getContext("2d");
    const scale = largest(values) || 1;
    values.forEach((v, i) => {
      ctx.fillStyle = rgb(litColour(v / scale));
      ctx.fillRect((i % cols) * PITCH, Math.floor(i / cols) * PITCH, PITCH - 1, PITCH - 1);
    });
    stage.append(canvas);
    item.querySelector(".net-summary").textContent = summary;
    return item;
  }

  /* A convolutional layer: all its feature maps, one grayscale atlas PNG scaled up by a whole factor. */
  function convColumn(layer) {
    const [h, w, maps] = layer.shape;
    const summary = t("inside.conv", {
      name: layer.name,
      maps,
      h,
      w,
      top: number(layer.max, 2),
    });
    const { item, stage } = column("conv", layer.name, summary);
    item.dataset.name = layer.name;
    const img = make("img", "net-atlas");
    img.dataset.testid = "feature-maps";
    img.alt = summary;
    const [rows, cols] = layer.grid;
    const scale = Math.max(1, Math.floor(ATLAS_WIDTH / (cols * w)));
    img.width = cols * w * scale;
    img.height = rows * h * scale;
    img.src = layer.atlas;
    stage.append(img);
    return item;
  }

  /* The output layer: ten labelled cells lit by probability, the answer marked. */
  function outputColumn(layer, d) {
    const values = layer.values.map(Number);
    const summary = t("inside.answer", { digit: label(d), percent: percent.format(d.confidence) });
    const { item, stage } = column("output", t("inside.output"), summary);
    item.dataset.name = layer.name;
    const list = make("ol", "net-out");
    list.setAttribute("aria-label", t("inside.outputs"));
    values.forEach((p, digit) => {
      const cell = make("li", "net-out-unit");
      cell.dataset.testid = "output-unit";
      cell.style.backgroundColor = rgb(litColour(p));
      cell.classList.toggle("is-bright", p > 0.6);
      cell.classList.toggle("is-answer", digit === d.digit);
      cell.append(make("span", "net-out-digit", String(digit)), make("span", "net-out-p", percent.format(p)));
      list.append(cell);
    });
    stage.append(list);
    return item;
  }

  /* Softmax regression has no hidden layer: between input and output sit its ten templates. */
  function templatesColumn(templates) {
    const { item, stage } = column("weights", t("inside.weights"), t("inside.templates"));
    item.dataset.name = "weights";
    const list = make("ol", "template-list net-templates");
    list.append(...templateItems(templates));
    stage.append(list);
    return item;
  }

  function layerColumn(layer, d) {
    if (layer.kind === "conv") return convColumn(layer);
    if (layer.name === "output") return outputColumn(layer, d);
    return denseColumn(layer);
  }

  async function renderNetwork() {
    const d = result && result.digits[result.selected];
    const sub = $("network-sub");
    if (!d || !Array.isArray(d.activations)) {
      networkLayers.replaceChildren();
      sub.textContent = "";
      if (!result) networkStatus.textContent = "";
      else if (result.refused) networkStatus.textContent = t("inside.refused");
      else networkStatus.textContent = t("inside.noLayers");
      return;
    }
    networkStatus.textContent = "";
    const model = result.model ? `${result.model.name} v${result.model.version}` : "";
    const n = result.digits.length;
    sub.textContent =
      n > 1 ? t("inside.modelDigit", { model, index: result.selected + 1, count: n }) : model;
    const columns = [inputColumn(d), ...d.activations.map((layer) => layerColumn(layer, d))];
    const shown = result;
    networkLayers.replaceChildren(...columns);
    const templates = await softmaxTemplatesFor(d);
    if (templates && result === shown) columns[columns.length - 1].before(templatesColumn(templates));
  }

  /* The templates when the model answering is a softmax regression (its only layer is the output). */
  async function softmaxTemplatesFor(d) {
    if (d.activations.length !== 1 || !result.model) return null;
    const models = await loadModels();
    const model = models.find((m) => m.name === result.model.name);
    return model && model.architecture === "softmax" ? loadTemplates(model.name) : null;
  }

  /* The panel opened after an answer without layers: ask for them, with the same request and model. */
  async function fetchInside() {
    if (!result || result.refused || !result.model || !result.request) return;
    if (insideController) insideController.abort();
    const controller = new AbortController();
    insideController = controller;
    const target = result;
    networkStatus.textContent = t("inside.loading");
    try {
      const { response, data } = await predict(target.request, target.model.name, `input,${INCLUDE}`, controller.signal);
      if (result !== target) return;
      const digits = response.ok ? answerDigits(data) : null;
      if (digits && digits.length === target.digits.length) target.digits = digits;
      else networkStatus.textContent = t("inside.failed");
    } catch (error) {
      if (error.name === "AbortError" || result !== target) return;
      networkStatus.textContent = t("inside.failed");
    }
    if (result === target) renderNetwork();
  }

  /* Show the panel for the result; `fetch`: the user opened it, so an answer without layers asks for them. */
  function showNetwork(fetch = false) {
    network.hidden = !result;
    if (!result || !isOpen("network")) return;
    const d = result.digits[result.selected];
    if (fetch && d && !Array.isArray(d.activations) && !result.refused) fetchInside();
    else renderNetwork();
  }

  // ---- compare: the same request to every model ----

  const compareModels = $("compare-models");
  const compareStatus = $("compare-status");
  let compareTimer = 0;
  let compareController = null;
  let compared = null; // { request, answers: Map(model name -> { digits } or { error }) }

  const WHAT = {
    softmax: () => t("compare.softmaxWhat"),
    mlp: () => t("compare.mlpWhat"),
    cnn: () => t("compare.cnnWhat"),
  };
  const TITLE = {
    softmax: () => t("compare.softmax"),
    mlp: () => t("compare.mlp"),
    cnn: () => t("compare.cnn"),
  };

  function modelCard(model) {
    const card = make("article", "model-card");
    card.dataset.testid = "compare-model";
    card.dataset.model = model.name;
    const title = make("h3", "model-title", (TITLE[model.architecture] || (() => model.name))());
    title.id = `compare-${model.name}`;
    card.setAttribute("aria-labelledby", title.id);
    const facts = [`${model.name} v${model.version}`];
    if (model.parameters) facts.push(t("compare.weights", { count: number(model.parameters, 0) }));
    if (typeof model.test_accuracy === "number") {
      facts.push(t("compare.accuracy", { percent: percent.format(model.test_accuracy) }));
    }
    const what = WHAT[model.architecture];
    card.append(title, make("p", "model-facts", facts.join(" · ")));
    if (what) card.append(make("p", "model-what", what()));
    const answer = make("p", "model-answer");
    answer.dataset.testid = "compare-answer";
    card.append(answer, make("p", "model-confidence"), make("ol", "mini-probs"));
    return card;
  }

  function miniBars(list, probabilities, top) {
    list.setAttribute("aria-label", t("compare.probabilities"));
    list.replaceChildren(
      ...probabilities.map((p, digit) => {
        const item = make("li", "mini-prob");
        item.classList.toggle("is-top", digit === top);
        const track = make("span", "mini-track");
        track.setAttribute("aria-hidden", "true");
        const fill = make("span", "mini-fill");
        fill.style.setProperty("--p", String(Math.min(1, Math.max(0, Number(p) || 0))));
        track.append(fill);
        item.append(make("span", "mini-digit", String(digit)), track, make("span", "mini-pct", percent.format(p)));
        return item;
      }),
    );
  }

  /* One model's card from its answer: the number read and the chosen digit's probabilities. */
  function fillCard(card, outcome) {
    const answer = card.querySelector(".model-answer");
    const confidence = card.querySelector(".model-confidence");
    const bars = card.querySelector(".mini-probs");
    card.classList.toggle("is-current", Boolean(result && result.model && result.model.name === card.dataset.model));
    if (!outcome) {
      answer.textContent = "…";
      confidence.textContent = "";
      bars.replaceChildren();
      return;
    }
    if (!outcome.digits || !outcome.digits.length) {
      answer.textContent = "–";
      confidence.textContent = outcome.error || t("compare.noAnswer");
      bars.replaceChildren();
      return;
    }
    const i = Math.min(result ? result.selected : 0, outcome.digits.length - 1);
    const d = outcome.digits[i];
    answer.textContent = outcome.digits.map(label).join("");
    const pct = percent.format(d.confidence);
    confidence.textContent =
      outcome.digits.length > 1
        ? t("compare.confidentOf", { index: i + 1, percent: pct })
        : t("compare.confident", { percent: pct });
    miniBars(bars, Array.from(d.probabilities, Number), d.digit === null ? -1 : d.digit);
  }

  async function renderCompare() {
    const models = await loadModels();
    if (compareModels.children.length !== models.length) compareModels.replaceChildren(...models.map(modelCard));
    for (const card of compareModels.children) {
      fillCard(card, compared && compared.answers.get(card.dataset.model));
    }
    compareStatus.textContent = result ? "" : t("compare.empty");
  }

  async function compareOne(request, model, signal, target) {
    let outcome;
    try {
      const { response, data } = await predict(request, model.name, "", signal);
      const digits = answerDigits(data);
      outcome = digits ? { digits } : { error: errorText(data, response) };
    } catch (error) {
      if (error.name === "AbortError") return;
      outcome = { error: t("compare.offline") };
    }
    if (compared !== target) return;
    target.answers.set(model.name, outcome);
    renderCompare();
  }

  async function runCompare() {
    compareTimer = 0;
    if (!result || !result.request || !isOpen("compare")) return;
    if (compared && sameRequest(compared.request, result.request)) return renderCompare(); // the same drawing
    if (compareController) compareController.abort();
    const controller = new AbortController();
    compareController = controller;
    compared = { request: result.request, answers: new Map() };
    const target = compared;
    await renderCompare();
    const models = await loadModels();
    await Promise.all(models.map((m) => compareOne(target.request, m, controller.signal, target)));
  }

  function sameRequest(a, b) {
    return a === b || (typeof a.body === "string" && a.body === b.body);
  }

  function scheduleCompare() {
    clearTimeout(compareTimer);
    if (isOpen("compare")) compareTimer = setTimeout(runCompare, COMPARE_DELAY_MS);
  }

  function clearCompare() {
    clearTimeout(compareTimer);
    if (compareController) compareController.abort();
    compareController = null;
    compared = null;
    if (isOpen("compare")) renderCompare();
  }

  // ---- wiring ----

  function wantInclude() {
    if (isOpen("network")) document.body.dataset.include = INCLUDE;
    else delete document.body.dataset.include;
  }

  function toggle(name) {
    setOpen(name, !isOpen(name));
    wantInclude();
    if (name === "network") showNetwork(true);
    if (name === "compare" && isOpen("compare")) {
      showTemplates();
      if (result) runCompare();
      else renderCompare();
    }
  }

  document.addEventListener("digits:result", (event) => {
    const detail = event.detail;
    if (insideController) insideController.abort();
    result = { ...detail, digits: Array.from(detail.digits) };
    showNetwork();
    scheduleCompare();
  });
  document.addEventListener("digits:select", (event) => {
    if (!result) return;
    result.selected = event.detail.selected;
    showNetwork();
    if (isOpen("compare")) renderCompare();
  });
  document.addEventListener("digits:clear", () => {
    if (insideController) insideController.abort();
    result = null;
    networkLayers.replaceChildren();
    network.hidden = true;
    clearCompare();
  });
  for (const [name, button] of Object.entries(panels)) button.addEventListener("click", () => toggle(name));

  const saved = savedPanels();
  for (const name of Object.keys(panels)) {
    if (typeof saved[name] === "boolean" && saved[name] !== isOpen(name)) toggle(name);
  }
  wantInclude();
})();
