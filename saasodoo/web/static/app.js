// Live status: elements with data-poll get their [data-field] children refreshed every 3 s.
// Forms with data-confirm (delete, restore) ask before posting. The tenant page reloads when
// its operation ends (new backups, new actions).
(function () {
  "use strict";
  function setField(root, name, value) {
    var el = root.querySelector('[data-field="' + name + '"]');
    if (!el || value === undefined || value === null) return;
    el.textContent = String(value);
    if (name === "status") el.className = "status status-" + value;
  }
  function jobText(job) { return job ? job.kind + ": " + job.state : ""; }
  function lastJobText(job) {
    if (!job) return "-";
    return jobText(job) + (job.error ? " (" + job.error.message + ")" : "");
  }
  function poll(el) {
    fetch(el.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        if (data.tenants) {
          Object.keys(data.tenants).forEach(function (id) {
            var row = el.querySelector('[data-tenant="' + id + '"]');
            if (row) { setField(row, "status", data.tenants[id].status); setField(row, "reason", data.tenants[id].reason); }
          });
        } else {
          setField(el, "status", data.status);
          setField(el, "reason", data.reason);
          setField(el, "revision", data.revision);
          setField(el, "job", jobText(data.job));
          setField(el, "last_job", lastJobText(data.last_job));
          if (el.dataset.jobShown === "yes" && !data.job && data.status !== "deleted") {
            window.location.reload();  // the operation ended: show its outcome
            return;
          }
          el.dataset.jobShown = data.job ? "yes" : "no";
          if (el.dataset.shown && el.dataset.shown !== data.status && data.status !== "creating") {
            // the page's actions depend on the status: reload once it settles
            if (!data.job) window.location.reload();
          }
          el.dataset.shown = data.status;
        }
      })
      .catch(function () {});
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(function (el) {
      poll(el);
      setInterval(function () { poll(el); }, 3000);
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
      });
    });
  });
})();
