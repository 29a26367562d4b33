// Staff console: progressive enhancement only. Every action also works without this script (plain forms).
(function () {
  "use strict";

  // Ask before destructive actions (forms or buttons with data-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });

  // Move focus to the error summary so screen-reader and keyboard users hear what went wrong.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // Bulk selection: "select all on this page".
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      document.querySelectorAll('input[name="comment_ids"]').forEach(function (box) { box.checked = selectAll.checked; });
    });
  }

  // Moderation queue keyboard shortcuts: j/n next, k/p previous, a approve, r reject (choose a reason, Enter),
  // x select, o open. Keys typed into a field are left alone.
  var items = Array.prototype.slice.call(document.querySelectorAll(".queue-item"));
  if (!items.length) { return; }
  var current = 0;

  function focusItem(index) {
    if (index < 0 || index >= items.length) { return; }
    items[current].classList.remove("current");
    current = index;
    items[current].classList.add("current");
    items[current].focus({ preventScroll: false });
    items[current].scrollIntoView({ block: "nearest" });
  }

  items.forEach(function (item, index) {
    item.addEventListener("click", function () { if (index !== current) { focusItem(index); } });
  });
  items[0].classList.add("current");
  if (!summary && !document.activeElement.closest("form")) { items[0].focus(); }

  function typing(target) {
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var target = event.target;
    if (target.classList && target.classList.contains("reason") && event.key === "Enter") {
      event.preventDefault();
      if (target.value) { target.form.requestSubmit(); }
      return;
    }
    if (target.classList && target.classList.contains("reason") && event.key === "Escape") {
      items[current].focus();
      return;
    }
    if (typing(target)) { return; }
    var item = items[current];
    switch (event.key) {
      case "j": case "n": event.preventDefault(); focusItem(current + 1); break;
      case "k": case "p": event.preventDefault(); focusItem(current - 1); break;
      case "a": {
        var approve = item.querySelector(".approve-form");
        if (approve) { event.preventDefault(); approve.requestSubmit(); }
        break;
      }
      case "r": {
        var reason = item.querySelector(".reject-form .reason");
        if (reason) { event.preventDefault(); reason.focus(); }
        break;
      }
      case "x": {
        var box = item.querySelector('input[name="comment_ids"]');
        if (box) { event.preventDefault(); box.checked = !box.checked; }
        break;
      }
      case "o": {
        var link = item.querySelector(".open-link");
        if (link) { event.preventDefault(); window.location.href = link.href; }
        break;
      }
      default: break;
    }
  });
}());

// Rich-text toolbar for explanation articles: wraps the selection in one of the tags the server keeps.
(function () {
  "use strict";
  document.querySelectorAll(".toolbar[data-for]").forEach(function (toolbar) {
    var area = document.getElementById(toolbar.getAttribute("data-for"));
    if (!area) { return; }
    toolbar.hidden = false;
    toolbar.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) { return; }
      var before = button.getAttribute("data-before") || "";
      var after = button.getAttribute("data-after") || "";
      var question = button.getAttribute("data-link");
      if (question !== null) {
        var address = window.prompt(question, "https://");
        if (!address || !/^https?:\/\//i.test(address)) { return; }
        before = '<a href="' + address.replace(/"/g, "%22") + '">';
        after = "</a>";
      }
      var start = area.selectionStart, end = area.selectionEnd, text = area.value;
      area.value = text.slice(0, start) + before + text.slice(start, end) + after + text.slice(end);
      area.focus();
      area.setSelectionRange(start + before.length, end + before.length);
    });
  });
}());
