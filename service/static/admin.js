/* Digits: the corrections review page. The token the reviewer types is kept in sessionStorage (this tab
 * only) and sent as `Authorization: Bearer` with every request; images are fetched the same way and shown
 * as blob URLs, since an <img src> cannot carry the header. No inline code: the CSP allows only this file.
 * Its messages, in the page's language, come from i18n.js (loaded first): t(key, params). */
"use strict";

(() => {
  const PAGE = 50;
  const TOKEN_KEY = "digits.admin-token";
  const $ = (id) => document.getElementById(id);
  const { t, errorText } = window.i18n;
  const form = $("login");
  const tokenInput = $("token");
  const filter = $("status-filter");
  const list = $("review-list");
  const statusLine = $("review-status");
  const more = $("more");
  const LIST_URL = document.body.dataset.listUrl || "/v1/corrections";
  let offset = 0;

  const token = () => tokenInput.value.trim();
  const headers = () => ({ Authorization: `Bearer ${token()}`, Accept: "application/json" });

  function setStatus(text, isError = false) {
    statusLine.textContent = text;
    statusLine.classList.toggle("is-error", isError);
  }

  async function request(url, options = {}) {
    const response = await fetch(url, { cache: "no-store", ...options, headers: { ...headers(), ...options.headers } });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new Error(errorText(data, response.status));
    }
    return response;
  }

  async function thumbnail(url, alt, className) {
    const img = document.createElement("img");
    img.alt = alt;
    img.className = className;
    try {
      img.src = URL.createObjectURL(await (await request(url)).blob());
    } catch {
      img.alt = t("unavailable", { alt });
    }
    return img;
  }

  function text(className, value) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = value;
    return span;
  }

  async function review(item, correction, status) {
    try {
      const response = await request(`${LIST_URL}/${correction.id}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ status }),
      });
      const updated = await response.json();
      item.dataset.status = updated.status;
      const state = t(`status.${updated.status}`);
      item.querySelector(".review-state").textContent = state;
      setStatus(t("reviewed", { id: correction.id, status: state }));
    } catch (error) {
      setStatus(t("notReviewed", { id: correction.id, reason: error.message }), true);
    }
  }

  function button(label, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  async function entry(correction) {
    const item = document.createElement("li");
    item.className = "review-item";
    item.dataset.testid = "correction";
    item.dataset.id = String(correction.id);
    item.dataset.status = correction.status;
    const base = `${LIST_URL}/${correction.id}`;
    const label = correction.label === "not_a_digit" ? t("notADigit") : correction.label;
    const said = correction.predicted === null ? t("noDigit") : `${correction.predicted}`;
    const { name, version } = correction.model;
    item.append(
      await thumbnail(`${base}/image`, t("asDrawn", { id: correction.id }), "review-image"),
      correction.predicted === null ? text("review-none", "") : await thumbnail(`${base}/input`, t("modelSaw"), "review-input"),
      text("review-label", t("itWas", { label })),
      text("review-said", t("modelSaid", { said, name, version })),
      text("review-state", t(`status.${correction.status}`)),
      button(t("accept"), () => review(item, correction, "accepted")),
      button(t("reject"), () => review(item, correction, "rejected")),
    );
    return item;
  }

  async function load(reset) {
    if (reset) {
      offset = 0;
      list.replaceChildren();
    }
    const url = new URL(LIST_URL, document.baseURI);
    url.searchParams.set("limit", String(PAGE));
    url.searchParams.set("offset", String(offset));
    if (filter.value) url.searchParams.set("status", filter.value);
    try {
      const data = await (await request(url.pathname + url.search)).json();
      for (const correction of data.corrections) list.append(await entry(correction));
      offset += data.corrections.length;
      more.hidden = offset >= data.count;
      setStatus(t(`count.${filter.value || "all"}`, { count: data.count, shown: offset }));
    } catch (error) {
      setStatus(t("notLoaded", { reason: error.message }), true);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      window.sessionStorage.setItem(TOKEN_KEY, token());
    } catch {
      // storage unavailable: the token stays in the field
    }
    load(true);
  });
  filter.addEventListener("change", () => token() && load(true));
  more.addEventListener("click", () => load(false));
  try {
    tokenInput.value = window.sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    // ignore
  }
  if (token()) load(true);
  document.body.dataset.ready = "true";
})();
