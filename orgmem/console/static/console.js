// orgmem console: refresh the jobs table while the page is open, and the chat box.
// Everything else works without this file (plain links and forms).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// Re-fetch an element's HTML from its data-refresh URL every data-interval ms.
function autoRefresh(el) {
  const url = el.dataset.refresh;
  const every = Number(el.dataset.interval || 3000);
  let timer = null;
  async function tick() {
    if (document.hidden) { timer = setTimeout(tick, every); return; }
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (resp.status === 401 || resp.redirected) { return; }  // logged out: stop polling
      if (resp.ok) { el.innerHTML = await resp.text(); el.dataset.refreshedAt = String(Date.now()); }
    } catch (err) { /* the server restarting: try again next tick */ }
    timer = setTimeout(tick, every);
  }
  timer = setTimeout(tick, every);
  return () => clearTimeout(timer);
}

// Thumbs up / down and "correct it" under one assistant reply: POST .../feedback (the same
// ops function as /v1/feedback); a correction is pending until an admin approves it.
function feedbackButtons(li, endpoint, responseId) {
  const bar = document.createElement("span");
  bar.className = "feedback";
  const note = document.createElement("small");
  note.className = "muted";
  async function send(body) {
    try {
      const resp = await fetch(endpoint, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(Object.assign({ response_id: responseId }, body)),
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) { note.textContent = (data.error && data.error.message) || ("HTTP " + resp.status); return; }
      note.textContent = data.correction ? "correction " + data.correction.id + " is " + data.correction.status
        + (data.correction.conflicts_with_documents ? " (documents say otherwise)" : "") : "thanks: rated " + data.rating;
    } catch (err) { note.textContent = "feedback failed: " + err; }
  }
  [["👍", "up", "Good answer"], ["👎", "down", "Bad answer"]].forEach(([label, rating, title]) => {
    const b = document.createElement("button");
    b.type = "button"; b.className = "link"; b.textContent = label; b.title = title;
    b.dataset.rating = rating;
    b.addEventListener("click", () => send({ rating: rating }));
    bar.appendChild(b);
  });
  const fix = document.createElement("button");
  fix.type = "button"; fix.className = "link"; fix.textContent = "Correct it"; fix.dataset.rating = "correct";
  fix.addEventListener("click", () => {
    const text = window.prompt("The answer it should have given (an admin reviews it before the model learns it):");
    if (text && text.trim()) { send({ rating: "down", correction: text.trim() }); }
  });
  bar.appendChild(fix);
  bar.appendChild(note);
  li.appendChild(bar);
}

function chatBox(form) {
  const log = form.querySelector("#chat-log");
  const input = form.querySelector("#chat-input");
  const model = form.querySelector("#chat-model");
  const maxTokens = form.querySelector("#chat-max-tokens");
  const status = form.querySelector("#chat-status");
  const send = form.querySelector("#chat-send");
  let messages = [];

  function add(role, text, note) {
    const li = document.createElement("li");
    li.className = role;
    li.textContent = text;
    if (note) { const s = document.createElement("small"); s.className = "muted"; s.textContent = note; li.appendChild(s); }
    log.appendChild(li);
    return li;
  }
  function reset() { messages = []; log.textContent = ""; status.textContent = ""; }
  form.querySelector("#chat-clear").addEventListener("click", reset);
  model.addEventListener("change", reset);  // a conversation talks to one checkpoint

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) { return; }
    messages.push({ role: "user", content: text });
    add("user", text);
    input.value = "";
    send.disabled = true;
    status.textContent = "thinking…";
    try {
      const resp = await fetch(form.dataset.endpoint, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify({ model: model.value, messages: messages, max_tokens: Number(maxTokens.value) }),
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        messages.pop();
        add("error", (data.error && data.error.message) || ("HTTP " + resp.status));
      } else {
        messages.push({ role: "assistant", content: data.reply });
        const li = add("assistant", data.reply || "(empty reply)", "checkpoint " + (data.checkpoint || "none") +
            " · " + (data.usage ? data.usage.completion_tokens + " tokens" : "") + " · " + data.finish_reason);
        if (data.response_id) { feedbackButtons(li, form.dataset.endpoint.replace(/\/chat$/, "/feedback"), data.response_id); }
      }
    } catch (err) {
      messages.pop();
      add("error", "request failed: " + err);
    } finally {
      send.disabled = false;
      status.textContent = "";
      input.focus();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(autoRefresh);
  const chat = document.getElementById("chat-form");
  if (chat) { chatBox(chat); }
});
