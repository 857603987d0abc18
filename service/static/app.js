/* Digits: the drawing page.
 *
 * Draw with Pointer Events on a canvas; strokes are kept as point lists (so Undo can redraw
 * without the last one) in coordinates relative to the canvas (0..1), so a resize or a
 * devicePixelRatio change redraws them crisply at the new size. The full canvas is posted to
 * /predict as a PNG: the server does all the preprocessing (crop, scale, centre, polarity).
 *
 * Live prediction: at most one request in flight, at most one every THROTTLE_MS while
 * drawing, one at each stroke's end; only the newest request's response is ever shown.
 * No inline code anywhere: the page's CSP allows only this file.
 */
"use strict";

(() => {
  const THROTTLE_MS = 250;
  const REF_SIZE = 280; // brush sizes are pixels on a 280-px-wide canvas; they scale with it
  const INK = "#111111";
  const PAPER = "#ffffff";
  const MIN_STEP = 0.002; // ignore pointer moves shorter than this (fraction of the canvas)
  const HINT = "Draw a digit from 0 to 9, or upload a picture of one.";
  const BRUSH_KEY = "digits.brush";

  const $ = (id) => document.getElementById(id);
  const canvas = $("pad");
  const ctx = canvas.getContext("2d");
  const wrap = canvas.parentElement;
  const brush = $("brush");
  const brushValue = $("brush-value");
  const undoButton = $("undo");
  const clearButton = $("clear");
  const upload = $("upload");
  const verdict = $("verdict");
  const prediction = $("prediction");
  const confidence = $("confidence");
  const statusLine = $("status");
  const modelInput = $("model-input");
  const modelName = $("model-name");
  const badge = $("pad-badge");
  const badgeDigit = $("pad-badge-digit");
  const badgeConf = $("pad-badge-conf");
  const modelPicker = $("model-picker");
  const modelSelect = $("model");
  const bars = Array.from({ length: 10 }, (_, d) => document.querySelector(`[data-testid="prob-${d}"]`));

  const PREDICT_URL = document.body.dataset.predictUrl || "/predict";
  const MODELS_URL = document.body.dataset.modelsUrl || "/v1/models";
  const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

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
  const strokes = []; // [{ size, points: [{ x, y }] }], x and y in 0..1 of the canvas
  let active = null; // { id: pointerId, stroke } while a stroke is being drawn
  let frame = 0; // pending requestAnimationFrame id
  let defaultModel = "";

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

  function drawStroke(stroke, width, height) {
    const pts = stroke.points.map((p) => [p.x * width, p.y * height]);
    const lineWidth = (stroke.size / REF_SIZE) * width;
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

  function redraw() {
    if (frame) {
      cancelAnimationFrame(frame);
      frame = 0;
    }
    const { width, height } = canvas;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = PAPER; // white paper, so the PNG is a plain dark-on-light drawing
    ctx.fillRect(0, 0, width, height);
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const stroke of strokes) drawStroke(stroke, width, height);
    wrap.classList.toggle("has-ink", strokes.length > 0);
  }

  function requestRedraw() {
    if (!frame) frame = requestAnimationFrame(redraw);
  }

  // ---- pointer input ----

  function toCanvas(event) {
    // client coordinates -> 0..1 of the canvas's content box, correct under CSS scaling
    const rect = canvas.getBoundingClientRect();
    const scale = canvas.offsetWidth ? rect.width / canvas.offsetWidth : 1;
    const x = (event.clientX - rect.left - canvas.clientLeft * scale) / (canvas.clientWidth * scale || 1);
    const y = (event.clientY - rect.top - canvas.clientTop * scale) / (canvas.clientHeight * scale || 1);
    return { x, y };
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
    if (live.state.source === "upload") startOver(); // drawing replaces an upload's result
    const stroke = { size: Number(brush.value), points: [toCanvas(event)] };
    strokes.push(stroke);
    active = { id: event.pointerId, stroke };
    requestRedraw();
    // the first prediction goes out when the stroke moves, or when it ends
    live.update({ source: "drawing", unsent: true });
  }

  function onPointerMove(event) {
    if (!active || event.pointerId !== active.id) return;
    event.preventDefault();
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    let moved = false;
    for (const e of events.length ? events : [event]) moved = addPoint(active.stroke, toCanvas(e)) || moved;
    if (!moved) return;
    requestRedraw();
    live.throttle({ unsent: true });
  }

  function onPointerEnd(event) {
    if (!active || event.pointerId !== active.id) return;
    const moved = event.type === "pointerup" && addPoint(active.stroke, toCanvas(event));
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
    return { body: JSON.stringify({ image }), headers: { "Content-Type": "application/json" } };
  }

  function predictUrl() {
    const url = new URL(PREDICT_URL, document.baseURI);
    url.searchParams.set("include", "input");
    const model = modelSelect.value;
    if (model && model !== defaultModel) url.searchParams.set("model", model);
    return url.pathname + url.search;
  }

  async function post({ body, headers }, signal) {
    const response = await fetch(predictUrl(), {
      method: "POST",
      headers: { Accept: "application/json", ...headers },
      body,
      signal,
      cache: "no-store",
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => null);
    return { response, data };
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
    prediction.textContent = "";
    confidence.textContent = "";
    setBars(null, -1);
    modelInput.hidden = true;
    modelInput.removeAttribute("src");
    modelName.textContent = "";
    badge.hidden = true;
    setStatus(hint, isError);
  }

  function showResult(data, kind) {
    prediction.textContent = String(data.digit);
    confidence.textContent = `${percent.format(data.confidence)} confident`;
    setBars(data.probabilities, data.digit);
    badgeDigit.textContent = String(data.digit);
    badgeConf.textContent = percent.format(data.confidence);
    badge.hidden = false;
    if (typeof data.input === "string" && data.input.startsWith("data:image/")) {
      modelInput.src = data.input;
      modelInput.hidden = false;
    } else {
      modelInput.hidden = true;
    }
    modelName.textContent = data.model ? `Model: ${data.model.name} v${data.model.version}` : "";
    let note = "";
    const file = live.state.file;
    if (kind === "upload" && file) note = `Prediction for “${file.name}”.`;
    if (data.confidence < 0.5) note = `${note} Not sure: try writing the digit larger and clearer.`.trim();
    setStatus(note);
  }

  function apply({ response, data, error }, kind) {
    if (error) {
      if (error.name === "AbortError") return;
      showEmpty("Could not reach the server. Check your connection and try again.", true);
      return;
    }
    if (response.ok && data && typeof data.digit === "number") {
      showResult(data, kind);
      return;
    }
    const code = data && data.error ? data.error.code : "";
    if (code === "no_digit") {
      // not an error: nothing recognisable yet
      showEmpty(
        kind === "upload"
          ? "No digit found in that image. Try a clearer picture of a single digit."
          : "No digit yet: draw one digit, large and centred.",
      );
      return;
    }
    const message = data && data.error && data.error.message ? data.error.message : `HTTP ${response.status}`;
    const what = kind === "upload" ? "That image could not be read" : "Prediction failed";
    showEmpty(`${what}: ${message}`, true);
  }

  // ---- actions ----

  function startOver() {
    strokes.length = 0;
    active = null;
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

  function uploadFile(file) {
    if (!file) return;
    startOver();
    showEmpty("");
    if (file.type && !file.type.startsWith("image/")) {
      setStatus(`“${file.name}” is not an image. Choose a PNG, JPEG or other picture.`, true);
      return;
    }
    const form = new FormData();
    form.append("image", file, file.name);
    live.send({ body: form, headers: {} }, "upload", { source: "upload", file });
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
