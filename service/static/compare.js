/* Digits: the "Compare models" panel of the drawing page: the same drawing read by every model the server has.
 *
 * The course moves from softmax regression to a perceptron to a convolutional network: one card per model, in
 * that order (GET /v1/models gives names, architectures, weights and test accuracy), each with the number it reads
 * and the chosen digit's probabilities. Each model gets the very request app.js sent (its body and headers, from
 * digits:result; see the top of app.js) at POST /predict?model=<name>: only while the panel is open, once a live
 * drawing pauses, and not again for the same drawing. Below the cards, softmax regression's ten weight templates.
 * Shared helpers: panels.js.
 */
"use strict";

(() => {
  const { $, t, errorText, make, label, number, percent, disclosure } = window.digitsPanels;
  const { loadModels, loadTemplates, predict, answerDigits, templateItems } = window.digitsPanels;
  const COMPARE_DELAY_MS = 300; // a live drawing is compared once it pauses

  let result = null; // digits:result's detail: what the page shows

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
    // the classifier's own weights, which the card describes (a "not a digit" detector's are not counted)
    const weights = model.classifier_parameters ?? model.parameters;
    if (weights) facts.push(t("compare.weights", { count: number(weights, 0) }));
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
    list.setAttribute("aria-label", t("probabilities"));
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
    // the model answering in the result card above: outlined, and "current" to a screen reader
    const current = Boolean(result && result.model && result.model.name === card.dataset.model);
    card.classList.toggle("is-current", current);
    if (current) card.setAttribute("aria-current", "true");
    else card.removeAttribute("aria-current");
    if (!outcome) {
      answer.textContent = result ? "…" : ""; // on its way, or nothing drawn
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
        : t("confident", { percent: pct });
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
    if (!result || !result.request || !isOpen()) return;
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
    if (isOpen()) compareTimer = setTimeout(runCompare, COMPARE_DELAY_MS);
  }

  function clearCompare() {
    clearTimeout(compareTimer);
    if (compareController) compareController.abort();
    compareController = null;
    compared = null;
    if (isOpen()) renderCompare();
  }

  // ---- softmax regression's templates ----

  async function showTemplates() {
    const models = await loadModels();
    const model = models.find((m) => m.architecture === "softmax");
    const templates = model && (await loadTemplates(model.name));
    $("templates").hidden = !templates;
    if (templates) $("template-list").replaceChildren(...templateItems(templates));
  }

  // ---- wiring ----

  function opened() {
    showTemplates();
    if (result) runCompare();
    else renderCompare();
  }

  const isOpen = disclosure("compare", $("compare-toggle"), (open) => open && opened());

  document.addEventListener("digits:result", (event) => {
    result = event.detail;
    scheduleCompare();
  });
  document.addEventListener("digits:select", (event) => {
    if (!result) return;
    result = { ...result, selected: event.detail.selected };
    if (isOpen()) renderCompare();
  });
  document.addEventListener("digits:clear", () => {
    result = null;
    clearCompare();
  });
  if (isOpen()) opened();
})();
