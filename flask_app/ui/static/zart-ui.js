// zart dashboard: live updates by short polling, local times on hover, JSON checks in forms.
// Every page works without this script; it only adds to them.
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (!isNaN(moment)) {
        el.title = el.getAttribute("datetime") + " UTC — your time: " + moment.toLocaleString();
      }
    });
  }

  function openDetails(root) {
    var open = [];
    root.querySelectorAll("details[open]").forEach(function (d) {
      var row = d.closest("[id]");
      if (row) { open.push(row.id); }
    });
    return open;
  }

  function reopen(root, ids) {
    ids.forEach(function (id) {
      var row = root.querySelector("#" + CSS.escape(id));
      var details = row && row.querySelector("details");
      if (details) { details.open = true; }
    });
  }

  function live() {
    var region = document.getElementById("live");
    if (!region || !region.dataset.refresh || region.dataset.final === "1") { return; }
    var toggle = document.getElementById("live-toggle");
    var state = document.getElementById("live-state");
    var every = parseInt(region.dataset.every || "3000", 10);
    var timer = null;
    var failures = 0;

    function say(text) { if (state) { state.textContent = text; } }

    function schedule() { timer = window.setTimeout(refresh, every * Math.min(1 + failures, 10)); }

    function refresh() {
      timer = null;
      if (toggle && !toggle.checked) { return; }
      if (region.contains(document.activeElement) && document.activeElement !== document.body) {
        schedule();  // never pull the page from under a keyboard user's focus
        return;
      }
      fetch(region.dataset.refresh, { credentials: "same-origin", headers: { "X-Requested-With": "zart-ui" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          var open = openDetails(region);
          region.innerHTML = html;
          reopen(region, open);
          localTimes(region);
          failures = 0;
          say("");
          var finished = region.querySelector("[data-final='1']");
          if (finished) { say("Finished: live updates stopped."); return; }
          schedule();
        })
        .catch(function () {
          failures += 1;
          say("Live updates paused: the server did not answer. Retrying…");
          schedule();
        });
    }

    if (toggle) {
      toggle.addEventListener("change", function () {
        if (toggle.checked && timer === null) { refresh(); }
        say(toggle.checked ? "" : "Live updates off.");
      });
    }
    schedule();
  }

  function jsonChecks() {
    document.querySelectorAll("textarea[data-json]").forEach(function (area) {
      var note = document.getElementById(area.getAttribute("aria-describedby"));
      var wantObject = area.dataset.json === "object";
      function check() {
        var text = area.value.trim();
        var problem = "";
        if (text) {
          try {
            var value = JSON.parse(text);
            if (wantObject && (value === null || typeof value !== "object" || Array.isArray(value))) {
              problem = "Must be a JSON object, e.g. {\"key\": \"value\"}.";
            }
          } catch (error) {
            problem = "Not valid JSON: " + error.message;
          }
        }
        area.setAttribute("aria-invalid", problem ? "true" : "false");
        if (note) { note.textContent = problem || (text ? "Valid JSON." : ""); note.className = problem ? "check bad" : "check"; }
        return !problem;
      }
      area.addEventListener("input", check);
      area.form.addEventListener("submit", function (event) {
        if (!check()) { event.preventDefault(); area.focus(); }
      });
      check();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    live();
    jsonChecks();
  });
})();
