/* Digits: what the page's two teaching panels share (inside.js: "Look inside", compare.js: "Compare models").
 *
 * Loaded (defer) after i18n.js and app.js and before the panels; it defines one global, window.digitsPanels:
 * messages in the page's language (i18n.js's t), small DOM helpers, colour maps, the server's models and
 * templates (each fetched once), a /predict call that re-sends a request app.js made, and the open/closed state
 * of a panel (remembered).
 * app.js tells the panels what it shows with events on document (see the top of app.js).
 */
"use strict";

window.digitsPanels = (() => {
  const PREDICT_URL = document.body.dataset.predictUrl || "/predict";
  const MODELS_URL = document.body.dataset.modelsUrl || "/v1/models";
  const PANELS_KEY = "digits.panels"; // which panels are open, remembered
  const COURSE = ["softmax", "mlp", "cnn"]; // architectures in the order the course teaches them

  const $ = (id) => document.getElementById(id);
  const lang = window.i18n.locale; // numbers as the page's language writes them
  const number = (x, digits = 1) => new Intl.NumberFormat(lang, { maximumFractionDigits: digits }).format(x);
  const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 });

  // messages in the page's language: i18n.js (loaded before app.js)
  const { t } = window.i18n;
  const errorText = (data, response) => window.i18n.errorText(data, response.status);

  function make(tag, className = "", text = "") {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text) el.textContent = text;
    return el;
  }

  /* A digit's label: the digit, or "?" where the model says it is not a digit. */
  const label = (d) => (d.digit === null || d.digit === undefined ? "?" : String(d.digit));

  // ---- panels: the button in a panel's heading shows or hides its body; the choice is remembered ----

  function savedPanels() {
    try {
      return JSON.parse(window.localStorage.getItem(PANELS_KEY) || "{}") || {};
    } catch {
      return {}; // storage unavailable (private mode) or garbled: the defaults
    }
  }

  /* A disclosure: `button` (aria-expanded, aria-controls) in the panel's heading; onToggle(open) after each change.
   * Starts as last chosen on this browser. */
  function disclosure(name, button, onToggle) {
    const isOpen = () => button.getAttribute("aria-expanded") === "true";
    const set = (open) => {
      button.setAttribute("aria-expanded", String(open));
      $(button.getAttribute("aria-controls")).hidden = !open;
    };
    button.addEventListener("click", () => {
      set(!isOpen());
      try {
        window.localStorage.setItem(PANELS_KEY, JSON.stringify({ ...savedPanels(), [name]: isOpen() }));
      } catch {
        // not remembered: fine
      }
      onToggle(isOpen());
    });
    const saved = savedPanels()[name];
    if (typeof saved === "boolean") set(saved);
    return isOpen;
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

  function courseRank(model) {
    const rank = COURSE.indexOf(model.architecture);
    return rank < 0 ? COURSE.length : rank;
  }

  /* The models the server has, in the course's order: [{ name, version, architecture, parameters, ... }]. */
  function loadModels() {
    modelsPromise ||= getJson(MODELS_URL)
      .then(({ response, data }) => (response.ok && data && Array.isArray(data.models) ? data.models : []))
      .catch(() => [])
      .then((models) => models.slice().sort((a, b) => courseRank(a) - courseRank(b)));
    return modelsPromise;
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

  /* POST /predict for `model` with a request app.js sent (its body and headers), asking for `include`. */
  function predict(request, model, include, signal) {
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

  // ---- softmax regression's templates: ten 28x28 canvases, one per digit, on one diverging scale ----

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

  /* The scale of all the templates' colours: the 99th percentile of |weight| (a few large weights at the
   * edges, where MNIST has no ink, would otherwise wash every picture out). */
  function templateScale(templates) {
    const sizes = templates.flatMap((tpl) => tpl.weights.flat().map(Math.abs)).sort((a, b) => a - b);
    return sizes[Math.floor(0.99 * (sizes.length - 1))] || largest(sizes) || 1;
  }

  /* One <li> per digit: its template as a canvas (role img) and the digit as its label. */
  function templateItems(templates) {
    const scale = templateScale(templates);
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

  return {
    $,
    t,
    errorText,
    make,
    label,
    number,
    percent,
    disclosure,
    litColour,
    rgb,
    largest,
    loadModels,
    loadTemplates,
    predict,
    answerDigits,
    templateItems,
  };
})();
