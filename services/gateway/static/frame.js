/* Trial Balloon widget, inside the iframe: progressive enhancement of server-rendered forms. Everything works
   without this file; with it, forms post in place, the frame reports its height to the embedding page, the voter
   token survives reloads where the browser lets us store it, and the countdown stays current. */
(function () {
  "use strict";
  var doc = document, body = doc.body;
  var msgs = (doc.getElementById("tb-messages") || {dataset: {}}).dataset;
  var policyId = body.getAttribute("data-policy-id");

  function fmt(text, values) {
    return String(text || "").replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }

  /* Storage may be blocked (privacy settings, third-party storage rules): every access is guarded. */
  var store = {
    get: function (key) { try { return window.localStorage.getItem(key); } catch (e) { return null; } },
    set: function (key, value) { try { window.localStorage.setItem(key, value); return true; } catch (e) { return false; } }
  };

  function randomToken() {
    var bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  /* The voter token: kept in this origin's storage when allowed, else the per-page token the server rendered. */
  var pageInput = doc.querySelector("[data-voter-token]");
  var voterToken = store.get("tb-voter-token");
  if (!voterToken || !/^[A-Za-z0-9_-]{16,200}$/.test(voterToken)) {
    voterToken = pageInput ? pageInput.value : randomToken();
    store.set("tb-voter-token", voterToken);
  }
  Array.prototype.forEach.call(doc.querySelectorAll("[data-voter-token]"), function (el) { el.value = voterToken; });

  var params = new URLSearchParams(window.location.search);
  var sourceUrl = params.get("src");
  if (sourceUrl && /^https?:\/\//.test(sourceUrl)) {
    Array.prototype.forEach.call(doc.querySelectorAll("[data-source-url]"), function (el) { el.value = sourceUrl; });
  }

  /* Height for the embedding page; only a number is sent, so any target origin may read it. */
  var lastHeight = 0;
  function reportHeight() {
    var height = Math.ceil(doc.documentElement.getBoundingClientRect().height);
    if (height !== lastHeight && window.parent !== window) {
      lastHeight = height;
      window.parent.postMessage({type: "tb-widget:resize", height: height}, "*");
    }
  }
  if (window.ResizeObserver) { new ResizeObserver(reportHeight).observe(doc.documentElement); }
  window.addEventListener("load", reportHeight);
  doc.addEventListener("toggle", reportHeight, true);
  reportHeight();
  if (params.get("page") || params.get("order")) {
    window.parent.postMessage({type: "tb-widget:scroll"}, "*");
  }

  var status = doc.getElementById("tb-status"), alertBox = doc.getElementById("tb-alert");
  function say(box, text, extra) {
    if (!box) { return; }
    box.textContent = "";
    var p = doc.createElement("p");
    p.textContent = text;
    if (extra) { p.appendChild(extra); }
    box.appendChild(p);
  }
  function announce(ok, text, extra) {
    say(ok ? status : alertBox, text, extra);
    if (ok && alertBox) { alertBox.textContent = ""; }
    if (!ok && status) { status.textContent = ""; }
  }

  /* Votes: the reader's own vote is remembered so the results stay visible after a reload. */
  function plural(one, many, n) { return fmt(n === 1 ? one : many, {num: n}); }
  function showResults(tally, percent, container) {
    if (!container) { return; }
    var total = container.querySelector("[data-total]");
    if (total) { total.textContent = plural(msgs.vote, msgs.votes, tally.total); }
    ["support", "oppose", "neutral"].forEach(function (key) {
      var bar = container.querySelector('[data-fill="' + key + '"]');
      if (bar) { bar.value = percent[key]; }
      var p = container.querySelector('[data-percent-of="' + key + '"]');
      if (p) { p.textContent = percent[key]; }
      var c = container.querySelector('[data-count-of="' + key + '"]');
      if (c) { c.textContent = tally[key]; }
    });
  }
  function markVote(form, stance) {
    Array.prototype.forEach.call(form.querySelectorAll("button[name=stance]"), function (b) {
      b.setAttribute("aria-pressed", b.value === stance ? "true" : "false");
    });
  }
  var results = doc.querySelector("[data-results]"), hint = doc.querySelector("[data-results-hint]");
  var previous = store.get("tb-vote:" + policyId);
  if (previous && results) {
    results.hidden = false;
    if (hint) { hint.hidden = true; }
    var pollForm = doc.querySelector('.tb-vote-form');
    if (pollForm) { markVote(pollForm, previous); }
  }

  /* The character counter. */
  var textarea = doc.getElementById("tb-text"), counter = doc.querySelector("[data-counter]");
  function count() {
    if (!textarea || !counter) { return; }
    var max = +counter.getAttribute("data-max"), used = textarea.value.length;
    counter.textContent = fmt(msgs.countFormat, {used: used, max: max});
    counter.classList.toggle("tb-over", used > max);
  }
  if (textarea) { textarea.addEventListener("input", count); count(); }

  /* "Comment on this clause" picks the clause in the form and moves focus there. */
  var select = doc.getElementById("tb-clause");
  Array.prototype.forEach.call(doc.querySelectorAll("[data-comment-on]"), function (link) {
    link.addEventListener("click", function (event) {
      if (!select || !textarea) { return; }
      event.preventDefault();
      select.value = link.getAttribute("data-comment-on");
      var label = select.options[select.selectedIndex].text;
      say(status, fmt(msgs.commentingOn, {clause: label}));
      textarea.focus();
    });
  });

  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-error-for]"), function (el) { el.textContent = ""; });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (el) { el.removeAttribute("aria-invalid"); });
  }
  function showErrors(form, fields) {
    var first = null;
    Object.keys(fields || {}).forEach(function (name) {
      var slot = form.querySelector('[data-error-for="' + name + '"]');
      if (slot) { slot.textContent = fields[name]; }
      var input = form.querySelector('[name="' + name + '"]');
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    });
    if (first) { first.focus(); }
  }

  function handle(form, kind, data) {
    if (kind === "vote") {
      var clause = form.getAttribute("data-clause");
      markVote(form, data.stance);
      if (!clause) {
        store.set("tb-vote:" + policyId, data.stance);
        if (results) { results.hidden = false; showResults(data.tally, data.percent, results); }
        if (hint) { hint.hidden = true; }
      }
      announce(true, data.message);
    } else if (kind === "comment") {
      var extra = null;
      if (data.reference) {
        extra = doc.createElement("span");
        extra.className = "tb-reference";
        extra.appendChild(doc.createTextNode(" " + (msgs.reference || "") + " "));
        var strong = doc.createElement("strong");
        strong.setAttribute("data-reference", "");
        strong.textContent = data.reference;
        extra.appendChild(strong);
      }
      announce(true, data.message, extra);
      form.reset();
      form.querySelector("[data-submission-id]").value = randomToken();
      count();
      status.scrollIntoView({block: "nearest"});
      window.parent.postMessage({type: "tb-widget:scroll"}, "*");
    } else if (kind === "endorse") {
      var n = form.querySelector("[data-support-count]");
      if (n) { n.textContent = data.support_count; }
      var button = form.querySelector("button");
      button.setAttribute("aria-pressed", "true");
      store.set("tb-endorsed:" + data.comment_id, "1");
      announce(true, data.message);
    }
  }

  Array.prototype.forEach.call(doc.querySelectorAll("form[data-enhance]"), function (form) {
    var kind = form.getAttribute("data-enhance");
    if (kind === "endorse") {
      var id = form.querySelector("[name=comment_id]").value;
      if (store.get("tb-endorsed:" + id)) { form.querySelector("button").setAttribute("aria-pressed", "true"); }
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var submitter = event.submitter;
      var body = new URLSearchParams(new FormData(form));
      if (submitter && submitter.name) { body.set(submitter.name, submitter.value); }
      /* Busy, not disabled: disabling the focused button would throw keyboard focus back to the top. */
      if (form.getAttribute("aria-busy") === "true") { return; }
      form.setAttribute("aria-busy", "true");
      clearErrors(form);
      fetch(form.action, {method: "POST", body: body, credentials: "omit",
                          headers: {"X-Requested-With": "tb-widget", "Accept": "application/json"}})
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (data.ok) { handle(form, kind, data); }
          else { announce(false, data.message); showErrors(form, data.fields); }
        })
        .catch(function () { announce(false, msgs.network); })
        .then(function () { form.removeAttribute("aria-busy"); });
    });
  });

  /* The countdown, kept current while the page stays open. */
  var countdown = doc.querySelector("[data-countdown]"), closeAt = Date.parse(body.getAttribute("data-close-at") || "");
  function tick() {
    if (!countdown || isNaN(closeAt)) { return; }
    var minutes = Math.floor((closeAt - Date.now()) / 60000);
    if (minutes < 0) { countdown.textContent = ""; return; }
    var text = minutes >= 1440 ? plural(msgs.day, msgs.days, Math.floor(minutes / 1440))
      : minutes >= 60 ? plural(msgs.hour, msgs.hours, Math.floor(minutes / 60))
      : plural(msgs.minute, msgs.minutes, minutes);
    if (countdown.textContent !== text) { countdown.textContent = text; }
  }
  window.setInterval(tick, 60000);
})();
