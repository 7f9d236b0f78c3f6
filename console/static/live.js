// Refreshes the live view every 5 s (the supervisor may pause it: RGAA 13.1).
(function () {
  "use strict";
  var box = document.getElementById("live-nodes");
  var toggle = document.getElementById("live-toggle");
  var state = document.getElementById("live-refresh-state");
  if (!box || !toggle) { return; }
  var running = true;
  var period = 5000;
  function refresh() {
    if (!running) { return; }
    box.setAttribute("aria-busy", "true");
    fetch("/supervision/direct", { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (reply) {
        if (reply.status === 401 || reply.redirected) { window.location.reload(); return null; }
        return reply.ok ? reply.text() : null;
      })
      .then(function (html) { if (html !== null && html !== undefined) { box.innerHTML = html; } })
      .catch(function () { /* the next tick tries again */ })
      .finally(function () { box.setAttribute("aria-busy", "false"); });
  }
  var timer = window.setInterval(refresh, period);
  toggle.addEventListener("click", function () {
    running = !running;
    toggle.textContent = running ? toggle.dataset.labelPause : toggle.dataset.labelResume;
    state.textContent = running ? "Mise à jour automatique toutes les 5 secondes."
                                : "Mise à jour automatique suspendue.";
    if (running) { refresh(); }
  });
  void timer;
})();
