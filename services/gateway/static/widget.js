/*! Trial Balloon consultation widget embed. Usage:
 * <script src="https://HOST/widget.js" data-site="SITE_KEY" data-policy="POLICY_ID" async></script>
 * or, instead of data-policy, data-article-url="URL" (default: this page's canonical URL) to show the
 * consultations confirmed as linked to this article. Optional: data-lang="zh-CN|en", data-title="…".
 * No dependencies, no cookies. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || script.getAttribute("data-tb-loaded")) { return; }
  script.setAttribute("data-tb-loaded", "1");
  var base;
  try { base = new URL(script.src, window.location.href).origin; } catch (e) { return; }
  var data = script.dataset || {};

  function language() {
    var asked = (data.lang || "").toLowerCase();
    if (asked.indexOf("en") === 0) { return "en"; }
    if (asked.indexOf("zh") === 0) { return "zh-CN"; }
    var browser = ((navigator.languages && navigator.languages[0]) || navigator.language || "").toLowerCase();
    return browser.indexOf("en") === 0 ? "en" : "zh-CN";
  }

  function pageUrl() {
    var url = window.location.href.split("#")[0];
    return url;
  }

  function articleUrl() {
    if (data.articleUrl) { return data.articleUrl; }
    var canonical = document.querySelector('link[rel="canonical"]');
    return (canonical && canonical.href) || pageUrl();
  }

  var lang = language();
  var query = ["site=" + encodeURIComponent(data.site || ""), "lang=" + lang];
  if (data.policy) { query.push("policy=" + encodeURIComponent(data.policy)); }
  else { query.push("article_url=" + encodeURIComponent(articleUrl())); }
  query.push("src=" + encodeURIComponent(pageUrl()));

  var frame = document.createElement("iframe");
  frame.src = base + "/widget/frame?" + query.join("&");
  frame.title = data.title || (lang === "en" ? "Public consultation" : "公开征求意见");
  frame.setAttribute("loading", "lazy");
  frame.setAttribute("referrerpolicy", "strict-origin-when-cross-origin");
  frame.style.cssText = "display:block;width:100%;min-width:0;max-width:100%;height:480px;border:0;overflow:hidden;";
  frame.setAttribute("scrolling", "no");
  frame.className = "tb-consultation-frame";

  var holder = document.createElement("div");
  holder.className = "tb-consultation";
  holder.appendChild(frame);
  script.parentNode.insertBefore(holder, script.nextSibling);

  /* Only messages from our own iframe, from the widget's origin, are believed; they carry a number, no more. */
  window.addEventListener("message", function (event) {
    if (event.origin !== base || event.source !== frame.contentWindow) { return; }
    var message = event.data;
    if (!message || typeof message !== "object") { return; }
    if (message.type === "tb-widget:resize") {
      var height = Number(message.height);
      if (isFinite(height) && height > 0) {
        frame.style.height = Math.min(Math.max(Math.ceil(height), 120), 100000) + "px";
      }
    } else if (message.type === "tb-widget:scroll") {
      var top = frame.getBoundingClientRect().top;
      if (top < 0) { frame.scrollIntoView({block: "start"}); }
    }
  });
})();
