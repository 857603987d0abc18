/* Digits: the "Look inside" panel of the drawing page: the chosen digit's way through the selected model.
 *
 * Each layer of the model is a column, input to answer: the model's 28x28 input and its occlusion saliency (red
 * where hiding the pixels makes the model less sure of its answer), dense layers as cells lit by their
 * activation (a <canvas>, with a text summary), convolutional layers as their feature maps (the API's PNG atlas,
 * scaled up by a whole factor, pixelated), the output as ten labelled cells; a softmax regression shows its ten
 * weight templates between input and output.
 *
 * app.js tells it what the page shows (digits:result, digits:select, digits:clear on document; see the top of
 * app.js); while the panel is open, <body data-include="activations,saliency"> makes app.js's own /predict
 * requests carry the layers, so a collapsed panel costs the server nothing. Opened after an answer without
 * them, it asks for them itself, with the same request and model. Shared helpers: panels.js.
 */
"use strict";

(() => {
  const { $, t, make, label, number, percent, litColour, rgb, largest } = window.digitsPanels;
  const { disclosure, loadModels, loadTemplates, predict, answerDigits, templateItems } = window.digitsPanels;
  const INCLUDE = "activations,saliency";
  const PITCH = 7; // a dense unit's cell on its canvas: 6 px and a 1 px gap
  const ATLAS_WIDTH = 240; // CSS px a feature-map atlas is scaled up to (whole multiples only)

  // the shown result (digits:result's detail, its digits replaced by fuller ones when fetched here)
  let result = null;

  // ---- look inside: the chosen digit's way through the selected model ----

  const network = $("network");
  const networkLayers = $("network-layers");
  const networkStatus = $("network-status");
  let insideController = null; // the request for the layers made here (the panel opened after an answer)

  /* A layer's <li>: a figure whose dark stage the caller fills, its caption a title (optional) and a summary. */
  function column(kind, title, summary) {
    const item = make("li", `net-col net-${kind}`);
    item.dataset.testid = "layer";
    item.dataset.kind = kind;
    const figure = make("figure", "net-figure");
    const stage = make("div", "net-stage");
    const caption = make("figcaption", "net-caption");
    if (title) caption.append(make("span", "net-name", title));
    caption.append(make("span", "net-summary", summary));
    figure.append(stage, caption);
    item.append(figure);
    return { item, stage };
  }

  /* The model input, and the saliency over it: red where hiding the pixels makes the model less sure of its answer. */
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
    return t("inside.saliency", { patch: s.patch, digit: s.digit });
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
    const summary = denseSummary(layer);
    const { item, stage } = column("dense", "", summary);
    item.dataset.name = layer.name;
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
    const { item, stage } = column("conv", "", summary);
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

  /* A layer's column; null for a layer this page cannot draw (a kind from a newer server). */
  function layerColumn(layer, d) {
    if (layer.kind === "conv" && typeof layer.atlas === "string") return convColumn(layer);
    if (layer.kind !== "dense" || !Array.isArray(layer.values)) return null;
    return layer.name === "output" ? outputColumn(layer, d) : denseColumn(layer);
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
    sub.textContent = n > 1 ? t("inside.modelDigit", { model, index: result.selected + 1, count: n }) : model;
    const columns = [inputColumn(d), ...d.activations.map((layer) => layerColumn(layer, d)).filter(Boolean)];
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
    if (!result || !isOpen()) return;
    const d = result.digits[result.selected];
    if (fetch && d && !Array.isArray(d.activations) && !result.refused) fetchInside();
    else renderNetwork();
  }

  // ---- wiring ----

  function wantInclude() {
    if (isOpen()) document.body.dataset.include = INCLUDE;
    else delete document.body.dataset.include;
  }

  const isOpen = disclosure("network", $("network-toggle"), () => {
    wantInclude();
    showNetwork(true);
  });

  document.addEventListener("digits:result", (event) => {
    if (insideController) insideController.abort();
    result = { ...event.detail, digits: Array.from(event.detail.digits) };
    showNetwork();
  });
  document.addEventListener("digits:select", (event) => {
    if (!result) return;
    result.selected = event.detail.selected;
    showNetwork();
  });
  document.addEventListener("digits:clear", () => {
    if (insideController) insideController.abort();
    result = null;
    networkLayers.replaceChildren();
    network.hidden = true;
  });
  wantInclude();
})();
