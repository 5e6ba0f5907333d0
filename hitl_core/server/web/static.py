"""The stylesheet and the console's script, served from ``/web/static/`` (no build step).

Served from the server itself so the Content-Security-Policy can forbid inline script and
every other origin. The script only moves a selection, posts decisions with the CSRF token and
swaps in rows the server rendered (and escaped); it never builds HTML from task data.
"""

from __future__ import annotations

CSS = """
:root { color-scheme: light dark; --bg: #fff; --fg: #111; --mute: #666; --line: #ddd; --sel: #dbeafe; }
@media (prefers-color-scheme: dark) { :root { --bg: #111; --fg: #eee; --mute: #999; --line: #333; --sel: #1e3a5f; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
main { padding: 0.75rem; max-width: 70rem; margin: 0 auto; }
nav { display: flex; gap: 0.75rem; align-items: center; padding: 0.5rem 0.75rem; border-bottom: 1px solid var(--line); }
nav .who { margin-left: auto; color: var(--mute); }
h1 { font-size: 1.3rem; margin: 0.5rem 0; } h2 { font-size: 1.05rem; margin: 0.9rem 0 0.3rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
#tasks tbody tr.selected { background: var(--sel); outline: 2px solid #3b82f6; }
td.reason, .reason { white-space: pre-wrap; word-break: break-word; }
pre { background: rgba(127,127,127,0.12); padding: 0.5rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.sev { display: inline-block; padding: 0 0.4rem; border-radius: 0.3rem; font-weight: 600; font-size: 0.85em; }
.sev.critical { background: #b91c1c; color: #fff; } .sev.high { background: #ea580c; color: #fff; }
.sev.medium { background: #ca8a04; color: #000; } .sev.low { background: #64748b; color: #fff; }
.card { border: 1px solid var(--line); border-radius: 0.5rem; padding: 0.75rem; margin: 0.5rem 0; display: grid; gap: 0.5rem; max-width: 28rem; }
form.inline { display: inline; } label { display: grid; gap: 0.2rem; }
input { font: inherit; padding: 0.45rem; border: 1px solid var(--line); border-radius: 0.3rem; background: var(--bg); color: var(--fg); }
button { font: inherit; padding: 0.5rem 0.9rem; border-radius: 0.3rem; border: 1px solid var(--line); cursor: pointer; }
button.approve { background: #15803d; color: #fff; border: 0; } button.reject { background: #b91c1c; color: #fff; border: 0; }
.error, .problem { color: #b91c1c; font-weight: 600; } .note, .keys, small { color: var(--mute); }
#flash { min-height: 1.4em; font-weight: 600; }
.group ul, #decisions { list-style: none; padding: 0; margin: 0; } .group li, #decisions li { padding: 0.35rem 0; border-bottom: 1px solid var(--line); }
.deadline { float: right; font-variant-numeric: tabular-nums; }
@media (max-width: 40rem) { #tasks th:nth-child(3), #tasks td:nth-child(3), #tasks th:nth-child(7), #tasks td:nth-child(7) { display: none; } }
"""

JS = r"""
"use strict";
(() => {
  const csrf = document.body.dataset.csrf;
  const canDecide = document.body.dataset.canDecide === "1";
  const tbody = document.querySelector("#tasks tbody");
  const flash = document.getElementById("flash");
  const reasonForm = document.getElementById("reason-form");
  const reasonInput = document.getElementById("reason");
  let selected = null;

  const rows = () => Array.from(tbody.querySelectorAll("tr[data-task]"));
  const current = () => rows().find((tr) => tr.dataset.task === selected) || null;
  function paint() {
    let found = false;
    for (const tr of rows()) {
      const on = tr.dataset.task === selected;
      tr.classList.toggle("selected", on);
      found = found || on;
    }
    if (!found) {
      const first = rows()[0];
      selected = first ? first.dataset.task : null;
      if (first) first.classList.add("selected");
    }
  }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    const i = Math.max(0, all.findIndex((tr) => tr.dataset.task === selected));
    selected = all[Math.min(all.length - 1, Math.max(0, i + step))].dataset.task;
    paint();
  }
  let refreshing = null, again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = (async () => {
      do {
        again = false;
        const response = await fetch("/web/rows", { credentials: "same-origin", cache: "no-store" });
        if (response.status === 401) { location.href = "/web/login"; return; }
        tbody.innerHTML = await response.text();
        paint();
      } while (again);
    })();
    try { await refreshing; } finally { refreshing = null; }
  }
  async function decide(kind, reason) {
    const tr = current();
    if (!tr) return;
    const body = new URLSearchParams({ csrf, interrupt_id: tr.dataset.interrupt, args_fingerprint: tr.dataset.fingerprint });
    if (reason !== undefined) body.set("reason", reason);
    const response = await fetch(`/web/tasks/${encodeURIComponent(tr.dataset.task)}/${kind}`, {
      method: "POST", credentials: "same-origin", headers: { Accept: "application/json" }, body,
    });
    const answer = await response.json().catch(() => ({ message: `HTTP ${response.status}` }));
    flash.textContent = answer.message;
    flash.className = response.ok ? "ok" : "error";
    refresh();
  }
  reasonForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = reasonInput.value.trim();
    if (!reason) return;
    reasonForm.hidden = true;
    reasonInput.value = "";
    decide("reject", reason);
  });
  reasonInput.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { reasonForm.hidden = true; reasonInput.value = ""; }
  });
  tbody.addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-task]");
    if (tr) { selected = tr.dataset.task; paint(); }
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, button") || event.ctrlKey || event.metaKey || event.altKey) return;
    const tr = current();
    if (event.key === "j" || event.key === "ArrowDown") move(1);
    else if (event.key === "k" || event.key === "ArrowUp") move(-1);
    else if (event.key === "Enter" && tr) location.href = `/web/tasks/${encodeURIComponent(tr.dataset.task)}`;
    else if (!canDecide || !tr) return;
    else if (event.key === "a") decide("approve");
    else if (event.key === "r") { reasonForm.hidden = false; reasonInput.focus(); }
    else return;
    event.preventDefault();
  });
  paint();
  const stream = new EventSource("/web/stream");
  stream.addEventListener("change", refresh);
  stream.addEventListener("bye", () => { stream.close(); location.href = "/web/login"; });
})();
"""
