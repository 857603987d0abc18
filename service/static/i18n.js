/* Digits: the pages' messages in the page's language, for their scripts (loaded first, deferred like them).
 *
 * The server translates every message a script shows (service/messages.py) and puts them, as JSON, in the page's
 * <body data-messages>: data, not code, so the CSP needs no inline script. The scripts hold no text of their own:
 *   i18n.t(key, params)          the message `key`, each {name} in it replaced by params[name]
 *   i18n.errorText(data, status) what to show for an API error answer (its JSON `data`, its HTTP status)
 *   i18n.locale                  the page's language (<html lang>), for Intl's number formats
 */
"use strict";

window.i18n = (() => {
  const messages = (() => {
    try {
      return JSON.parse(document.body.dataset.messages || "{}");
    } catch {
      return {};
    }
  })();
  const own = (object, key) => Object.prototype.hasOwnProperty.call(object, key);
  const has = (key) => own(messages, key);

  /* The message `key` with each {name} filled in; the key itself if the page has no such message. */
  function t(key, params = {}) {
    const text = has(key) ? String(messages[key]) : key;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (params && own(params, name) ? String(params[name]) : whole));
  }

  /* An API error: its code's message in the page's language where the page has one (a Portuguese page; an English
   * page has none: the API's own message is English and more precise), else the API's message. */
  function errorText(data, status) {
    const error = data && data.error;
    if (!error) return `HTTP ${status}`;
    return has(`error.${error.code}`) ? t(`error.${error.code}`) : error.message || `HTTP ${status}`;
  }

  return Object.freeze({ t, errorText, locale: document.documentElement.lang || undefined });
})();
