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

  // ---- drawing state ----
  const strokes = []; // [{ size, points: [{ x, y }] }], x and y in 0..1 of the canvas
  let active = null; // { id: pointerId, stroke } while a stroke is being drawn
  let frame = 0; // pending requestAnimationFrame id

  // ---- prediction state ----
  let seq = 0; // id of the newest request; a response with an older id is stale and dropped
  let inFlight = null; // AbortController of the one request in flight
  let version = 0; // bumped on every change to the drawing
  let sentVersion = -1; // the drawing version the last drawing request carried
  let timer = 0; // throttle timer
  let lastSent = -Infinity;
  let source = "none"; // what the shown result is for: "none", "drawing" or "upload"
  let lastFile = null; // the uploaded file, re-sent when the model changes
  let defaultModel = "";

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
    if (source === "upload") startOver(); // drawing replaces an upload's result
    const stroke = { size: Number(brush.value), points: [toCanvas(event)] };
    strokes.push(stroke);
    active = { id: event.pointerId, stroke };
    source = "drawing";
    version += 1;
    updateButtons();
    requestRedraw();
    updateBusy(); // the first prediction goes out when the stroke moves, or when it ends
  }

  function onPointerMove(event) {
    if (!active || event.pointerId !== active.id) return;
    event.preventDefault();
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    let moved = false;
    for (const e of events.length ? events : [event]) moved = addPoint(active.stroke, toCanvas(e)) || moved;
    if (!moved) return;
    version += 1;
    requestRedraw();
    schedulePredict();
  }

  function onPointerEnd(event) {
    if (!active || event.pointerId !== active.id) return;
    if (event.type === "pointerup" && addPoint(active.stroke, toCanvas(event))) version += 1;
    active = null;
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
    redraw();
    updateButtons();
    predictNow();
  }

  // ---- prediction scheduling ----

  function dirty() {
    // the drawing on screen has not been sent yet
    return strokes.length > 0 && version !== sentVersion;
  }

  function updateBusy() {
    // aria-busy also makes screen readers wait for the final result instead of every live update
    const busy = Boolean(active || inFlight || timer || dirty());
    verdict.setAttribute("aria-busy", String(busy));
  }

  function invalidate() {
    // forget every pending or running request: their responses are stale
    seq += 1;
    if (inFlight) inFlight.abort();
    inFlight = null;
    clearTimeout(timer);
    timer = 0;
    sentVersion = -1;
    updateBusy();
  }

  function schedulePredict() {
    // while drawing: at most one request in flight, and at most one every THROTTLE_MS
    if (dirty() && !inFlight && !timer) {
      const wait = lastSent + THROTTLE_MS - performance.now();
      if (wait <= 0) {
        sendDrawing();
      } else {
        timer = setTimeout(() => {
          timer = 0;
          if (dirty() && !inFlight) sendDrawing();
          updateBusy();
        }, wait);
      }
    }
    updateBusy();
  }

  function predictNow() {
    // a stroke ended: predict at once, or as soon as the request in flight is back
    if (dirty() && !inFlight) {
      clearTimeout(timer);
      timer = 0;
      sendDrawing();
    }
    updateBusy();
  }

  function sendDrawing() {
    if (!strokes.length) {
      showEmpty(HINT);
      updateBusy();
      return;
    }
    if (frame) redraw(); // the PNG must hold every point drawn so far
    sentVersion = version;
    const image = canvas.toDataURL("image/png"); // the full canvas: no downscaling here
    send(JSON.stringify({ image }), { "Content-Type": "application/json" }, "drawing");
  }

  function predictUrl() {
    const url = new URL(PREDICT_URL, document.baseURI);
    url.searchParams.set("include", "input");
    const model = modelSelect.value;
    if (model && model !== defaultModel) url.searchParams.set("model", model);
    return url.pathname + url.search;
  }

  async function send(body, headers, kind) {
    const id = ++seq;
    const controller = new AbortController();
    if (inFlight) inFlight.abort();
    inFlight = controller;
    lastSent = performance.now();
    updateBusy();
    let outcome;
    try {
      const response = await fetch(predictUrl(), {
        method: "POST",
        headers: { Accept: "application/json", ...headers },
        body,
        signal: controller.signal,
        cache: "no-store",
        credentials: "same-origin",
      });
      const data = await response.json().catch(() => null);
      outcome = { response, data };
    } catch (error) {
      outcome = { error };
    }
    if (inFlight === controller) inFlight = null;
    if (id === seq) apply(outcome, kind); // only the newest request's response is shown
    if (dirty() && !inFlight) {
      // the drawing changed while this one was out: a finished stroke goes at once
      if (active) schedulePredict();
      else predictNow();
    }
    updateBusy();
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
    if (kind === "upload" && lastFile) note = `Prediction for “${lastFile.name}”.`;
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

  function updateButtons() {
    undoButton.disabled = strokes.length === 0 || Boolean(active);
  }

  function startOver() {
    strokes.length = 0;
    version += 1;
    active = null;
    lastFile = null;
    source = "none";
    invalidate();
    redraw();
    updateButtons();
  }

  function clearAll() {
    startOver();
    showEmpty(HINT);
  }

  function undo() {
    if (active || !strokes.length) return;
    strokes.pop();
    version += 1;
    invalidate(); // a response for the drawing before the undo must not be shown
    redraw();
    updateButtons();
    if (strokes.length) {
      predictNow();
    } else {
      source = "none";
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
    lastFile = file;
    source = "upload";
    const form = new FormData();
    form.append("image", file, file.name);
    send(form, {}, "upload");
  }

  function resend() {
    if (source === "upload" && lastFile) {
      const file = lastFile;
      uploadFile(file);
    } else if (strokes.length) {
      invalidate();
      predictNow();
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
  updateButtons();
  updateBusy();
  loadModels();
  document.body.dataset.ready = "true"; // the page is wired up (a hook for tests)
})();
