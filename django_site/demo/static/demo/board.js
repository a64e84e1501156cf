// The activity board: live.js (window.live, from {% live_stream %}) feeds the board, the bell
// and the announcement banner.
"use strict";

(() => {
  const page = document.getElementById("board-page");
  const board = document.getElementById("board");
  const state = document.getElementById("state");
  const labels = { connecting: "connecting…", open: "live", reconnecting: "reconnecting…", closed: "offline" };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  window.live.onState((name) => {
    state.dataset.state = name;
    state.textContent = labels[name] || name;
  });

  window.live.on("board.item", (item) => {
    if (board.querySelector(`li[data-id="${item.id}"]`)) return;
    const row = el("li", "fresh");
    row.dataset.id = item.id;
    const time = el("time", "", new Date(item.created).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }));
    time.dateTime = item.created;
    row.append(el("span", "author", item.author), el("span", "text", item.text), time);
    board.prepend(row);
  });

  window.live.on("notification", (note) => {
    const list = document.getElementById("notifications");
    const count = document.getElementById("bell-count");
    if (!list) return;
    document.getElementById("no-notifications")?.remove();
    list.prepend(el("li", "fresh", note.text));
    count.textContent = String(Number(count.textContent) + 1);
    count.hidden = false;
  });
  document.getElementById("bell")?.addEventListener("toggle", () => {
    document.getElementById("bell-count").hidden = true;
    document.getElementById("bell-count").textContent = "0";
  });

  window.live.on("announcement", (message) => {
    const banner = document.getElementById("announcement");
    banner.textContent = `Announcement: ${message.text} (${message.by})`;
    banner.hidden = false;
  });

  window.live.on("reset", () => window.location.reload()); // history trimmed: start from the page again

  // Post without leaving the page: the item comes back over the stream like everyone else's.
  const form = document.getElementById("board-form");
  form?.addEventListener("submit", async (submit) => {
    submit.preventDefault();
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (response.ok) form.reset();
  });

  // Who is viewing: names from the presence poll, kept current between polls by join/leave events
  // (the board's policy turns both on: demo/policies.json).
  const viewers = new Map();
  function showViewers() {
    const list = document.getElementById("viewers");
    const names = [...viewers.values()].sort();
    list.textContent = names.length ? `viewing: ${names.join(", ")}` : "";
    list.hidden = !names.length;
  }
  let noticeTimer = null;
  function notice(text) {
    const banner = document.getElementById("presence-notice");
    banner.textContent = text;
    banner.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (banner.hidden = true), 4000);
  }
  // The rewind replays the board's past joins and leaves too: only those since the page opened count.
  const openedAt = Date.now() - 2000;
  const current = (meta) => meta.channel === "public.board" && Number(meta.id.split("-")[0]) >= openedAt;
  window.live.on("presence.join", ({ user, name }, meta) => {
    if (!current(meta)) return;
    viewers.set(user, name);
    showViewers();
    notice(`${name} joined`);
  });
  window.live.on("presence.leave", ({ user, name }, meta) => {
    if (!current(meta)) return;
    viewers.delete(user);
    showViewers();
    notice(`${name} left`);
  });

  async function refreshListeners() {
    try {
      const answer = await fetch(page.dataset.presenceUrl, { headers: { Accept: "application/json" } });
      const { listeners, viewers: present } = await answer.json();
      document.getElementById("listener-count").textContent = listeners ?? "?";
      if (present) {
        viewers.clear();
        for (const { user, name } of present) viewers.set(user, name);
        showViewers();
      }
    } catch {
      // the count is decoration; try again next time
    }
  }
  refreshListeners();
  setInterval(refreshListeners, 3000);
})();
