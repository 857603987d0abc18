/* Digits: the drawing page.
 *
 * Draw with Pointer Events on a canvas; strokes are kept as point lists (so Undo can redraw
 * without the last one) in units of the canvas's height (y in 0..1, x in 0..width/height), so a
 * resize or a devicePixelRatio change redraws them crisply at the new size, never stretched. The
 * full canvas is posted to /predict as a PNG: the server does all the preprocessing and finds the
 * digits (crop, scale, centre, polarity, left to right).
 *
 * The answer reads a number: `digits`, left to right, each with its probabilities and its box in
 * the submitted image's pixels. Each box is drawn over the canvas (as a fraction of the image, so
 * it follows the canvas's CSS size); choosing a digit (its box's tag, or its character in the
 * number, a radio group) shows its probabilities and its 28x28 model input. An answer without
 * `digits` (a server from before numbers) is read as one digit whose box is the whole image.
 *
 * Live prediction: at most one request in flight, at most one every THROTTLE_MS while
 * drawing, one at each stroke's end; only the newest request's response is ever shown.
 * No inline code anywhere: the page's CSP allows only its own script files.
 *
 * Every message shown comes from the page, in its language: t(key, params) of i18n.js (loaded first) looks it
 * up in the messages the server translated (service/messages.py) and fills in its {name}s.
 *
 * The "Look inside" and "Compare models" panels live in inside.js and compare.js (helpers: panels.js); the
 * interface between them and this file:
 *   - app.js dispatches on document `digits:result` (detail: { answer, digits, selected, model, request,
 *     kind, refused }: the answer shown and the request it answered, to send again), `digits:select`
 *     (detail: { selected }) when another digit of the number is chosen, and `digits:clear`;
 *   - inside.js sets <body data-include="activations,saliency"> while its panel wants them: every
 *     /predict request then asks for them too, beside `input`.
 */
"use strict";

(() => {
  const THROTTLE_MS = 250;
  const REF_SIZE = 280; // brush sizes are pixels on a 280-px-high canvas; they scale with its height
  const INK = "#111111";
  const PAPER = "#ffffff";
  const MIN_STEP = 0.002; // ignore pointer moves shorter than this (in canvas heights)
  const TAG_ROOM = 30; // CSS px above a box for its tag; less room and the tag goes inside the box
  const BRUSH_KEY = "digits.brush";

  const $ = (id) => document.getElementById(id);
  const { t, errorText } = window.i18n;
  const HINT = t("hint");
  const canvas = $("pad");
  const ctx = canvas.getContext("2d");
  const wrap = canvas.parentElement;
  const overlay = $("boxes");
  const brush = $("brush");
  const brushValue = $("brush-value");
  const undoButton = $("undo");
  const clearButton = $("clear");
  const upload = $("upload");
  const verdict = $("verdict");
  const prediction = $("prediction");
  const confidence = $("confidence");
  const statusLine = $("status");
  const probsTitle = $("probs-title");
  const modelInput = $("model-input");
  const modelName = $("model-name");
  const readout = $("pad-readout");
  const readoutNumber = $("readout-number");
  const readoutNote = $("readout-note");
  const modelPicker = $("model-picker");
  const modelSelect = $("model");
  const probsPanel = $("probs-title").parentElement;
  const bars = Array.from({ length: 10 }, (_, d) => document.querySelector(`[data-testid="prob-${d}"]`));
  const correctBar = $("correct");
  const correctPrompt = $("correct-prompt");
  const correctStatus = $("correct-status");
  const correctButtons = Array.from(correctBar.querySelectorAll("[data-label]"));

  const PREDICT_URL = document.body.dataset.predictUrl || "/predict";
  const MODELS_URL = document.body.dataset.modelsUrl || "/v1/models";
  const unsureBelow = new Map(); // model name -> the confidence below which the page says "not sure"
  const CORRECTIONS_URL = document.body.dataset.correctionsUrl || "/v1/corrections";
  // numbers as the page's language writes them
  const percent = new Intl.NumberFormat(window.i18n.locale, { style: "percent", maximumFractionDigits: 1 });

  // ---- live prediction scheduling ----

  /* One object owns the scheduling state, and every change to it goes through update(), which
   * recomputes the busy flag and hands it to render(): nothing derived can be forgotten.
   * The drawing itself stays with the page, read through hasInk() and isDrawing(); the page
   * calls update() (or an action below) after each change to it.
   *   throttle(): a stroke moved: send if none is in flight and THROTTLE_MS have passed, else later
   *   flush():    a stroke ended: send at once, or as soon as the request in flight is back
   *   cancel():   forget every pending or running request (their responses are stale)
   *   send():     post a request now (uploads); only the newest request's response is shown
   */
  function createScheduler({ throttleMs, hasInk, isDrawing, capture, post, show, render }) {
    const state = {
      inFlight: null, // AbortController of the one request in flight; replaced or cleared = stale
      timer: 0, // throttle timer
      lastSent: -Infinity, // performance.now() when the last request went out
      unsent: true, // the drawing changed (or its request was cancelled) since the last drawing request
      source: "none", // what the shown result is for: "none", "drawing" or "upload"
      file: null, // the uploaded file, re-sent when the model changes
    };
    const dirty = () => hasInk() && state.unsent; // the drawing on screen has not been sent yet

    function update(changes = {}) {
      Object.assign(state, changes);
      render(Boolean(isDrawing() || state.inFlight || state.timer || dirty()));
    }

    function throttle(changes = {}) {
      update(changes);
      if (!dirty() || state.inFlight || state.timer) return;
      const wait = state.lastSent + throttleMs - performance.now();
      if (wait <= 0) {
        sendDrawing();
        return;
      }
      const timer = setTimeout(() => {
        update({ timer: 0 });
        if (dirty() && !state.inFlight) sendDrawing();
      }, wait);
      update({ timer });
    }

    function flush(changes = {}) {
      update(changes);
      if (dirty() && !state.inFlight) sendDrawing();
    }

    function cancel(changes = {}) {
      if (state.inFlight) state.inFlight.abort();
      clearTimeout(state.timer);
      update({ ...changes, inFlight: null, timer: 0, unsent: true });
    }

    function sendDrawing() {
      send(capture(), "drawing", { unsent: false });
    }

    async function send(request, kind, changes = {}) {
      if (state.inFlight) state.inFlight.abort();
      clearTimeout(state.timer);
      const controller = new AbortController();
      update({ ...changes, inFlight: controller, timer: 0, lastSent: performance.now() });
      let outcome;
      try {
        outcome = await post(request, controller.signal);
      } catch (error) {
        outcome = { error };
      }
      if (state.inFlight === controller) {
        // still the newest request: nothing was sent or cancelled since
        show(outcome, kind);
        update({ inFlight: null });
      }
      if (dirty() && !state.inFlight) {
        // the drawing changed while this one was out: a finished stroke goes at once
        if (isDrawing()) throttle();
        else flush();
      }
    }

    return {
      get state() {
        return Object.freeze({ ...state }); // a read-only copy: changes go through update()
      },
      update,
      throttle,
      flush,
      cancel,
      send,
    };
  }

  // ---- drawing state ----
  // strokes: [{ size, aspect, points: [{ x, y }] }]; x and y in canvas heights, aspect = the drawing's
  // width / height when the stroke was drawn (the width its points may span)
  const strokes = [];
  let active = null; // { id: pointerId, stroke, fit } while a stroke is being drawn (fit: strokeFit() at its start)
  let picture = null; // an uploaded image shown on the canvas: { bitmap, width, height }
  let frame = 0; // pending requestAnimationFrame id
  let defaultModel = "";
  // the result on screen: { digits: [{ digit, confidence, probabilities, box, input }], source, size, selected }
  // size: the submitted image's { width, height } in pixels (a drawing's; an upload's is the picture's)
  let shown = null;

  const live = createScheduler({
    throttleMs: THROTTLE_MS,
    hasInk: () => strokes.length > 0,
    isDrawing: () => Boolean(active),
    capture,
    post,
    show: apply,
    render,
  });

  // ---- canvas size: backing store = CSS size x devicePixelRatio, for crisp strokes ----

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(canvas.clientWidth * dpr);
    const height = Math.round(canvas.clientHeight * dpr);
    if (width < 1 || height < 1) return; // not laid out (hidden)
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    redraw();
    renderBoxes();
    const size = shown && shown.source === "drawing" ? shown.size : null;
    if (size && strokes.length && !active && Math.abs(size.width / size.height - width / height) > 0.01) {
      resend(); // the canvas changed shape: the drawing was fitted anew, so its boxes are read again
    }
  }

  function watchPixelRatio() {
    // fires when the page moves to a screen with another pixel ratio, or on browser zoom
    const query = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    query.addEventListener(
      "change",
      () => {
        resize();
        watchPixelRatio();
      },
      { once: true },
    );
  }

  // ---- rendering ----

  /* Where the strokes go on a canvas of this aspect (width / height): a point (x, y) in canvas heights is
   * drawn at (x * scale, y * scale + dy) canvas heights. A canvas narrower than the one the strokes were
   * drawn on (a phone turned upright, a window made narrower) shrinks them all alike, centred vertically. */
  function strokeFit(aspect) {
    const drawn = strokes.reduce((widest, s) => Math.max(widest, s.aspect), aspect);
    const scale = aspect / drawn > 0.99 ? 1 : aspect / drawn; // rounding of the backing store's size is no change
    return { scale, dy: (1 - scale) / 2 };
  }

  function drawStroke(stroke, fit, height) {
    const k = fit.scale * height; // canvas heights -> backing-store pixels
    const pts = stroke.points.map((p) => [p.x * k, (p.y * fit.scale + fit.dy) * height]);
    const lineWidth = (stroke.size / REF_SIZE) * k;
    if (pts.length === 1) {
      ctx.beginPath();
      ctx.arc(pts[0][0], pts[0][1], lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.lineWidth = lineWidth;
    ctx.beginPath();
    ctx.moveTo(pts[0][0], pts[0][1]);
    // quadratic smoothing: curve through each point towards the midpoint of the next segment
    for (let i = 1; i < pts.length - 1; i++) {
      const [x, y] = pts[i];
      const [nx, ny] = pts[i + 1];
      ctx.quadraticCurveTo(x, y, (x + nx) / 2, (y + ny) / 2);
    }
    const [lx, ly] = pts[pts.length - 1];
    ctx.lineTo(lx, ly);
    ctx.stroke();
  }

  /* Where an uploaded picture lies on the canvas, as fractions of the canvas: contained and centred. */
  function pictureFrame() {
    const s = Math.min(canvas.width / picture.width, canvas.height / picture.height);
    const width = (s * picture.width) / canvas.width;
    const height = (s * picture.height) / canvas.height;
    return { left: (1 - width) / 2, top: (1 - height) / 2, width, height };
  }

  function redraw() {
    if (frame) {
      cancelAnimationFrame(frame);
      frame = 0;
    }
    const { width, height } = canvas;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = PAPER; // white paper, so the PNG is a plain dark-on-light drawing
    ctx.fillRect(0, 0, width, height);
    if (picture) {
      const f = pictureFrame();
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(picture.bitmap, f.left * width, f.top * height, f.width * width, f.height * height);
    }
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    const fit = strokeFit(width / height);
    for (const stroke of strokes) drawStroke(stroke, fit, height);
    wrap.classList.toggle("has-ink", strokes.length > 0 || Boolean(picture));
  }

  function requestRedraw() {
    if (!frame) frame = requestAnimationFrame(redraw);
  }

  // ---- pointer input ----

  function toCanvas(event, fit) {
    // client coordinates -> canvas heights of the drawing (correct under CSS scaling and a fitted drawing)
    const rect = canvas.getBoundingClientRect();
    const scale = canvas.offsetWidth ? rect.width / canvas.offsetWidth : 1;
    const height = canvas.clientHeight * scale || 1;
    const x = (event.clientX - rect.left - canvas.clientLeft * scale) / height;
    const y = (event.clientY - rect.top - canvas.clientTop * scale) / height;
    return { x: x / fit.scale, y: (y - fit.dy) / fit.scale };
  }

  function aspect() {
    return canvas.width / canvas.height; // the backing store's, as redraw() fits the strokes to it
  }

  function addPoint(stroke, point) {
    const last = stroke.points[stroke.points.length - 1];
    if (last && Math.hypot(point.x - last.x, point.y - last.y) < MIN_STEP) return false;
    stroke.points.push(point);
    return true;
  }

  function onPointerDown(event) {
    if (active || !event.isPrimary) return; // one stroke at a time; ignore a second finger
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    if (live.state.source === "upload") {
      startOver(); // drawing replaces an upload and its result
      showEmpty("");
    }
    const fit = strokeFit(aspect());
    // in the drawing's fitted frame: the stroke may span the same width as the drawing it joins
    const stroke = { size: Number(brush.value), aspect: aspect() / fit.scale, points: [toCanvas(event, fit)] };
    strokes.push(stroke);
    active = { id: event.pointerId, stroke, fit };
    requestRedraw();
    // the first prediction goes out when the stroke moves, or when it ends
    live.update({ source: "drawing", unsent: true });
  }

  function onPointerMove(event) {
    if (!active || event.pointerId !== active.id) return;
    event.preventDefault();
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    let moved = false;
    for (const e of events.length ? events : [event]) moved = addPoint(active.stroke, toCanvas(e, active.fit)) || moved;
    if (!moved) return;
    requestRedraw();
    live.throttle({ unsent: true });
  }

  function onPointerEnd(event) {
    if (!active || event.pointerId !== active.id) return;
    const moved = event.type === "pointerup" && addPoint(active.stroke, toCanvas(event, active.fit));
    active = null;
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    redraw();
    live.flush(moved ? { unsent: true } : {});
  }

  // ---- prediction requests ----

  function render(busy) {
    // aria-busy also makes screen readers wait for the final result instead of every live update
    verdict.setAttribute("aria-busy", String(busy));
    undoButton.disabled = strokes.length === 0 || Boolean(active);
  }

  function capture() {
    if (frame) redraw(); // the PNG must hold every point drawn so far
    const image = canvas.toDataURL("image/png"); // the full canvas: no downscaling here
    return {
      body: JSON.stringify({ image }),
      headers: { "Content-Type": "application/json" },
      size: { width: canvas.width, height: canvas.height }, // the answer's boxes are in these pixels
      image, // kept with the answer: a correction of a one-digit answer sends the very drawing that was read
    };
  }

  function predictUrl() {
    const url = new URL(PREDICT_URL, document.baseURI);
    const extra = document.body.dataset.include; // what inside.js's panels want (see the top of this file)
    url.searchParams.set("include", extra ? `input,${extra}` : "input");
    const model = modelSelect.value;
    if (model && model !== defaultModel) url.searchParams.set("model", model);
    return url.pathname + url.search;
  }

  async function post(request, signal) {
    const { body, headers, size = null } = request;
    const response = await fetch(predictUrl(), {
      method: "POST",
      headers: { Accept: "application/json", ...headers },
      body,
      signal,
      cache: "no-store",
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => null);
    return { response, data, size, request };
  }

  // ---- showing results ----

  function setStatus(text, isError = false) {
    statusLine.textContent = text;
    statusLine.classList.toggle("is-error", isError);
  }

  function setBars(probabilities, top) {
    bars.forEach((bar, d) => {
      const p = probabilities ? Number(probabilities[d]) || 0 : 0;
      bar.dataset.value = String(Math.round(p * 10000) / 10000);
      bar.style.setProperty("--p", String(Math.min(1, Math.max(0, p))));
      bar.querySelector(".prob-pct").textContent = percent.format(p);
      bar.classList.toggle("is-top", d === top);
    });
  }

  function showEmpty(hint, isError = false) {
    shown = null;
    prediction.replaceChildren();
    prediction.style.setProperty("--n", "1");
    delete prediction.dataset.count;
    confidence.textContent = "";
    probsTitle.textContent = t("probabilities");
    setBars(null, -1);
    modelInput.hidden = true;
    modelInput.removeAttribute("src");
    modelName.textContent = "";
    readout.classList.remove("is-shown");
    readoutNumber.textContent = "";
    readoutNote.textContent = "";
    correctBar.hidden = true;
    renderBoxes();
    setStatus(hint, isError);
    document.dispatchEvent(new CustomEvent("digits:clear"));
  }

  /* The answer's digits, left to right; today's one-digit answer (no `digits`) is one digit boxed by the
   * whole image (box null). */
  /* A digit's label: the digit, or "?" where the model says it is not a digit. */
  function label(d) {
    return d.digit === null ? "?" : String(d.digit);
  }

  function bestGuess(d) {
    const p = Array.from(d.probabilities || [], Number);
    return p.length ? p.indexOf(Math.max(...p)) : "?";
  }

  function readDigits(data) {
    if (Array.isArray(data.digits) && data.digits.length) return data.digits;
    const { digit, confidence: conf, probabilities, input } = data;
    return [{ digit, confidence: conf, probabilities, box: null, input }];
  }

  /* The submitted image's size in pixels: the canvas's when it was captured, or the uploaded picture's. */
  function imageSize() {
    if (shown.source !== "upload") return shown.size;
    return picture ? { width: picture.width, height: picture.height } : null;
  }

  /* Each digit's box over the canvas, positioned in % of the canvas so it follows the canvas's CSS size. */
  function renderBoxes() {
    overlay.replaceChildren();
    const size = shown && imageSize();
    if (!size) return; // nothing shown, or an upload the browser could not draw
    const f = shown.source === "upload" ? pictureFrame() : { left: 0, top: 0, width: 1, height: 1 };
    const pct = (v) => `${(v * 100).toFixed(3)}%`;
    shown.digits.forEach((d, i) => {
      const box = d.box || { x: 0, y: 0, width: size.width, height: size.height };
      const top = f.top + (f.height * box.y) / size.height;
      const el = document.createElement("div");
      el.className = "box";
      el.dataset.testid = "digit-box";
      el.dataset.index = String(i);
      el.style.left = pct(f.left + (f.width * box.x) / size.width);
      el.style.top = pct(top);
      el.style.width = pct((f.width * box.width) / size.width);
      el.style.height = pct((f.height * box.height) / size.height);
      el.classList.toggle("tag-inside", top * canvas.clientHeight < TAG_ROOM);
      el.classList.toggle("is-selected", i === shown.selected);
      const tag = document.createElement("span");
      tag.className = "box-tag";
      tag.dataset.testid = "digit-tag";
      tag.dataset.index = String(i);
      tag.textContent = label(d);
      el.classList.toggle("is-refused", d.digit === null);
      el.append(tag);
      overlay.append(el);
    });
  }

  /* The number, one radio button per digit; the buttons are reused so that focus survives live updates. */
  function renderNumber() {
    const n = shown.digits.length;
    prediction.style.setProperty("--n", String(n));
    prediction.dataset.count = String(n);
    while (prediction.children.length > n) prediction.lastElementChild.remove();
    while (prediction.children.length < n) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "num-digit";
      button.setAttribute("role", "radio");
      prediction.append(button);
    }
    Array.from(prediction.children).forEach((button, i) => {
      button.textContent = label(shown.digits[i]);
      button.classList.toggle("is-refused", shown.digits[i].digit === null);
      button.dataset.index = String(i);
      button.setAttribute("aria-checked", String(i === shown.selected));
      button.tabIndex = i === shown.selected ? 0 : -1; // roving tab stop: arrows move within the number
    });
  }

  /* The selected digit's confidence, probabilities and model input. */
  function showSelected() {
    const n = shown.digits.length;
    const i = shown.selected;
    const d = shown.digits[i];
    renderNumber();
    for (const box of overlay.children) box.classList.toggle("is-selected", Number(box.dataset.index) === i);
    const pct = percent.format(d.confidence);
    const conf =
      d.digit === null ? t("notADigitGuess", { digit: bestGuess(d), percent: pct }) : t("confident", { percent: pct });
    confidence.textContent = n > 1 ? t("digitOf", { index: i + 1, count: n, confidence: conf }) : conf;
    probsTitle.textContent = n > 1 ? t("probabilitiesOf", { index: i + 1 }) : t("probabilities");
    // a position the model refuses keeps its guesses on screen, greyed
    probsPanel.classList.toggle("is-refused", d.digit === null);
    setBars(d.probabilities, d.digit === null ? -1 : d.digit);
    if (typeof d.input === "string" && d.input.startsWith("data:image/")) {
      modelInput.src = d.input;
      modelInput.hidden = false;
    } else {
      modelInput.hidden = true;
    }
    renderCorrection();
  }

  function select(index, focus = false) {
    if (!shown || !(index >= 0 && index < shown.digits.length)) return;
    shown.selected = index;
    showSelected();
    document.dispatchEvent(new CustomEvent("digits:select", { detail: { selected: index } }));
    if (focus) prediction.children[index].focus();
  }

  function showResult(data, kind, size, request, refused = false) {
    const digits = readDigits(data);
    // a live update of the same drawing keeps the digit chosen; anything else starts at the first
    const keep = shown && kind === "drawing" && shown.source === "drawing" && shown.selected < digits.length;
    // sent: index -> the label sent for that digit of this answer; key: this answer's Idempotency-Key prefix
    const selected = keep ? shown.selected : 0;
    shown = { digits, source: kind, size, selected, model: data.model, sent: {}, key: randomKey() };
    if (kind === "drawing" && request && request.image) shown.image = request.image;
    const number = digits.map(label).join("");
    readout.classList.toggle("is-refused", refused);
    showSelected();
    renderBoxes();
    readoutNumber.textContent = number;
    const count = digits.length;
    readoutNote.textContent = count > 1 ? t("digitCount", { count }) : percent.format(digits[0].confidence);
    readout.classList.add("is-shown");
    modelName.textContent = data.model ? t("modelName", data.model) : "";
    const notes = [];
    const file = live.state.file;
    if (kind === "upload" && file) notes.push(t("predictionFor", { file: file.name }));
    if (count > 1) notes.push(t("chooseDigit", { count }));
    const odd = digits.findIndex((d) => d.digit === null);
    if (refused) notes.push(t("refused"));
    else if (odd >= 0) notes.push(t("digitRefused", { index: odd + 1 }));
    // "not sure" below the threshold in the model's metadata (its calibrated confidence)
    const below = (data.model && unsureBelow.get(data.model.name)) || 0.5;
    const unsure = refused || odd >= 0 ? -1 : digits.findIndex((d) => d.confidence < below);
    if (unsure >= 0) notes.push(count > 1 ? t("unsureOf", { index: unsure + 1 }) : t("unsure"));
    setStatus(notes.join(" "));
    const detail = { answer: data, digits, selected, model: data.model || null, request, kind, refused };
    document.dispatchEvent(new CustomEvent("digits:result", { detail }));
  }

  function apply({ response, data, error, size, request }, kind) {
    if (error) {
      if (error.name === "AbortError") return;
      showEmpty(t("offline"), true);
      return;
    }
    // an answer: digits (some may be null: not a digit), or one digit from a server that reads one
    if (response.ok && data && (Array.isArray(data.digits) || typeof data.digit === "number")) {
      showResult(data, kind, size, request);
      return;
    }
    const code = data && data.error ? data.error.code : "";
    const details = data && data.error ? data.error.details : null;
    if (code === "not_a_digit" && details && Array.isArray(details.digits)) {
      showResult({ digits: details.digits, model: null }, kind, size, request, true);
      return;
    }
    if (code === "no_digit") {
      // not an error: nothing recognisable yet
      showEmpty(t(kind === "upload" ? "noDigitUpload" : "noDigitYet"));
      return;
    }
    const message = errorText(data, response.status);
    if (code === "too_many_digits") {
      showEmpty(t("tooManyDigits", { message }), true);
      return;
    }
    showEmpty(t(kind === "upload" ? "uploadFailed" : "predictionFailed", { message }), true);
  }

  // ---- corrections: "Wrong? It was: 0 ... 9 / not a digit" ----

  function randomKey() {
    // crypto.getRandomValues works on plain http too (randomUUID needs a secure context)
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function correctionText(index) {
    const label = shown.sent[index];
    if (label === undefined) return "";
    const what = label === "not_a_digit" ? t("notADigit") : t("quoted", { label });
    return t("thanks", { label: what });
  }

  function renderCorrection() {
    const size = imageSize();
    correctBar.hidden = !size; // an upload the browser could not draw: nothing to crop the digit from
    if (!size) return;
    const n = shown.digits.length;
    correctPrompt.textContent = n > 1 ? t("wrongDigit", { index: shown.selected + 1 }) : t("wrong");
    const done = shown.sent[shown.selected] !== undefined;
    for (const button of correctButtons) button.disabled = done;
    correctStatus.textContent = correctionText(shown.selected);
    correctStatus.classList.remove("is-error");
  }

  /* What a correction of digit d sends, as a PNG data URL: the drawing that was read, when it was read as one
   * digit (the server kept that reading, so the correction costs its commit: service/recent.py); else d's part of
   * the canvas (its box and a margin). */
  function digitImage(d) {
    if (shown.image && shown.digits.length === 1) return shown.image;
    if (frame) redraw();
    const size = imageSize();
    const f = shown.source === "upload" ? pictureFrame() : { left: 0, top: 0, width: 1, height: 1 };
    const box = d.box || { x: 0, y: 0, width: size.width, height: size.height };
    const margin = 0.15 * Math.max(box.width, box.height);
    const x0 = Math.max(0, box.x - margin);
    const y0 = Math.max(0, box.y - margin);
    const x1 = Math.min(size.width, box.x + box.width + margin);
    const y1 = Math.min(size.height, box.y + box.height + margin);
    const sx = (f.left + (f.width * x0) / size.width) * canvas.width;
    const sy = (f.top + (f.height * y0) / size.height) * canvas.height;
    const sw = ((f.width * (x1 - x0)) / size.width) * canvas.width;
    const sh = ((f.height * (y1 - y0)) / size.height) * canvas.height;
    const out = document.createElement("canvas");
    out.width = Math.max(1, Math.round(sw));
    out.height = Math.max(1, Math.round(sh));
    out.getContext("2d").drawImage(canvas, sx, sy, sw, sh, 0, 0, out.width, out.height);
    return out.toDataURL("image/png");
  }

  async function sendCorrection(label) {
    if (!shown || shown.sent[shown.selected] !== undefined) return;
    const target = shown;
    const index = shown.selected;
    const d = shown.digits[index];
    const body = { image: digitImage(d), label: label === "not_a_digit" ? label : Number(label), predicted: d.digit };
    if (shown.model && shown.model.name) body.model = shown.model.name;
    for (const button of correctButtons) button.disabled = true;
    correctStatus.textContent = t("sending");
    let failure = "";
    try {
      const response = await fetch(CORRECTIONS_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": `${target.key}-${index}` },
        body: JSON.stringify(body),
        cache: "no-store",
        credentials: "same-origin",
      });
      const data = await response.json().catch(() => null);
      if (response.ok) target.sent[index] = String(label);
      else failure = errorText(data, response.status);
    } catch {
      failure = t("unreachable");
    }
    if (shown !== target || shown.selected !== index) return; // the page moved on: nothing to tell here
    renderCorrection();
    if (failure) {
      correctStatus.textContent = t("notSaved", { reason: failure });
      correctStatus.classList.add("is-error");
    }
  }

  // ---- actions ----

  function startOver() {
    strokes.length = 0;
    active = null;
    if (picture) picture.bitmap.close();
    picture = null;
    live.cancel({ source: "none", file: null });
    redraw();
  }

  function clearAll() {
    startOver();
    showEmpty(HINT);
  }

  function undo() {
    if (active || !strokes.length) return;
    strokes.pop();
    live.cancel(); // a response for the drawing before the undo must not be shown
    redraw();
    if (strokes.length) {
      live.flush();
    } else {
      live.update({ source: "none" });
      showEmpty(HINT);
    }
  }

  /* Show the uploaded image on the canvas, so that its digits' boxes can be drawn over it. */
  async function showPicture(file) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file); // turned by its EXIF orientation, as the server turns it
    } catch {
      return; // a format this browser cannot draw (the server may still read it): no picture, no boxes
    }
    if (live.state.file !== file) {
      bitmap.close(); // another upload, or a drawing, came first
      return;
    }
    picture = { bitmap, width: bitmap.width, height: bitmap.height };
    redraw();
    renderBoxes();
  }

  function uploadFile(file) {
    if (!file) return;
    startOver();
    showEmpty("");
    if (file.type && !file.type.startsWith("image/")) {
      setStatus(t("notAnImage", { file: file.name }), true);
      return;
    }
    const form = new FormData();
    form.append("image", file, file.name);
    live.send({ body: form, headers: {} }, "upload", { source: "upload", file });
    showPicture(file);
  }

  function resend() {
    const { source, file } = live.state;
    if (source === "upload" && file) {
      uploadFile(file);
    } else if (strokes.length) {
      live.cancel();
      live.flush();
    }
  }

  async function loadModels() {
    try {
      const response = await fetch(MODELS_URL, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const data = await response.json();
      const models = Array.isArray(data.models) ? data.models : [];
      for (const model of models) {
        const below = model.rejection && Number(model.rejection.unsure_below);
        if (below > 0) unsureBelow.set(model.name, below);
      }
      if (models.length < 2) return; // nothing to choose from
      defaultModel = data.default || "";
      for (const model of models) {
        const option = document.createElement("option");
        option.value = model.name;
        const accuracy =
          typeof model.test_accuracy === "number" ? ` (${percent.format(model.test_accuracy)})` : "";
        option.textContent = `${model.name}${accuracy}`;
        option.selected = model.name === defaultModel;
        modelSelect.append(option);
      }
      modelPicker.hidden = false;
    } catch {
      // the selector is optional: without it the default model answers
    }
  }

  // ---- wiring ----

  canvas.addEventListener("pointerdown", onPointerDown);
  canvas.addEventListener("pointermove", onPointerMove);
  canvas.addEventListener("pointerup", onPointerEnd);
  canvas.addEventListener("pointercancel", onPointerEnd);
  canvas.addEventListener("lostpointercapture", onPointerEnd);
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());

  // choosing a digit: its tag over the drawing, or its character in the number (arrows move as in any radio group)
  // (on pointerdown: Chromium makes no click from a tap on an element whose parent lets pointers through)
  overlay.addEventListener("pointerdown", (event) => {
    const tag = event.target.closest(".box-tag");
    if (!tag || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    select(Number(tag.dataset.index));
  });
  prediction.addEventListener("click", (event) => {
    const button = event.target.closest(".num-digit");
    if (button) select(Number(button.dataset.index));
  });
  prediction.addEventListener("keydown", (event) => {
    if (!shown || event.altKey || event.ctrlKey || event.metaKey) return;
    const n = shown.digits.length;
    const steps = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 };
    let index;
    if (event.key in steps) index = (shown.selected + steps[event.key] + n) % n;
    else if (event.key === "Home") index = 0;
    else if (event.key === "End") index = n - 1;
    else return;
    event.preventDefault();
    select(index, true);
  });

  correctBar.addEventListener("click", (event) => {
    const button = event.target.closest("[data-label]");
    if (button && !button.disabled) sendCorrection(button.dataset.label);
  });

  undoButton.addEventListener("click", undo);
  clearButton.addEventListener("click", clearAll);
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement && target.type === "text") return;
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    }
  });

  try {
    const saved = window.localStorage.getItem(BRUSH_KEY);
    if (saved && Number(saved) >= Number(brush.min) && Number(saved) <= Number(brush.max)) brush.value = saved;
  } catch {
    // storage may be unavailable (private mode): keep the default
  }
  brushValue.textContent = brush.value;
  brush.addEventListener("input", () => {
    brushValue.textContent = brush.value;
    try {
      window.localStorage.setItem(BRUSH_KEY, brush.value);
    } catch {
      // ignore
    }
  });

  upload.addEventListener("change", () => {
    const file = upload.files && upload.files[0];
    upload.value = ""; // choosing the same file again must fire "change" again
    uploadFile(file);
  });

  wrap.addEventListener("dragover", (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
    event.preventDefault();
    wrap.classList.add("dragover");
  });
  wrap.addEventListener("dragleave", () => wrap.classList.remove("dragover"));
  wrap.addEventListener("drop", (event) => {
    event.preventDefault();
    wrap.classList.remove("dragover");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) uploadFile(file);
  });

  modelSelect.addEventListener("change", resend);

  new ResizeObserver(resize).observe(canvas);
  watchPixelRatio();
  resize();
  showEmpty(HINT);
  live.update();
  loadModels();
  document.body.dataset.ready = "true"; // the page is wired up (a hook for tests)
})();
