// idr console: small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // Live parts of a page (a running run's progress, the active runs panel): the server renders
  // the fragment; we fetch it again until it says the work is done, then reload once so the
  // whole page shows the outcome.
  function poll(el) {
    var url = el.getAttribute("data-poll");
    var timer = setInterval(function () {
      fetch(url, { credentials: "same-origin", headers: { "X-Idr-Fragment": "1" } })
        .then(function (r) {
          if (r.status === 401) { clearInterval(timer); window.location.reload(); return null; }
          var done = r.headers.get("X-Idr-Done") === "1";
          return r.text().then(function (html) { return { html: html, done: done, ok: r.ok }; });
        })
        .then(function (res) {
          if (!res || !res.ok) { return; }
          el.innerHTML = res.html;
          if (res.done) { clearInterval(timer); window.location.reload(); }
        })
        .catch(function () { /* the next tick tries again */ });
    }, 1000);
  }

  // Forms that destroy something ask first.
  function confirmSubmit(form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  }

  // Link graph: clicking (or Enter/Space on) two records fills "why are these two linked?".
  function graphPicker(svg) {
    var from = document.getElementById("from"), to = document.getElementById("to");
    if (!from || !to) { return; }
    var next = from;  // the first click picks "from", the second "to" (then the form is sent)
    function pick(node) {
      var key = node.getAttribute("data-key");
      next.value = key;
      node.classList.add("picked");
      if (next === to) { to.form.submit(); } else { next = to; to.value = ""; to.focus(); }
    }
    svg.querySelectorAll(".node").forEach(function (node) {
      node.addEventListener("click", function () { pick(node); });
      node.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(node); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("form[data-confirm]").forEach(confirmSubmit);
    document.querySelectorAll("svg.graph").forEach(graphPicker);
  });
})();
