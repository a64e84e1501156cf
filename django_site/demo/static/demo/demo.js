// Live events demo: show what the SSE service streams, publish without leaving the page.
"use strict";

(() => {
  const MAX_ITEMS = 200;
  const root = document.getElementById("live");
  const state = document.getElementById("state");
  const list = document.getElementById("events");
  const empty = document.getElementById("no-events");

  function setState(name, text) {
    state.dataset.state = name;
    state.textContent = text;
  }

  // Event ids are "<channel>/<ms>-<seq>": the channel is everything before the last "/".
  // An id is "<channel>/<id>", then ",<channel>/<id>" for each other channel of the connection.
  function splitId(lastEventId) {
    const own = lastEventId.split(",")[0];
    const cut = own.indexOf("/");
    return cut < 0
      ? { channel: "", position: own }
      : { channel: own.slice(0, cut), position: own.slice(cut + 1) };
  }

  function pretty(data) {
    try {
      return JSON.stringify(JSON.parse(data), null, 2);
    } catch {
      return data;
    }
  }

  function span(className, text) {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  function show(event) {
    const { channel, position } = splitId(event.lastEventId);
    const item = document.createElement("li");
    item.className = "event fresh";
    const meta = document.createElement("div");
    meta.className = "meta";
    const id = span("id", position);
    id.title = event.lastEventId;
    meta.append(
      span("channel", channel || "(no channel)"),
      span("type", event.type),
      id,
      span("time", new Date().toLocaleTimeString()),
    );
    const data = document.createElement("pre");
    data.className = "data";
    data.textContent = pretty(event.data);
    item.append(meta, data);
    list.prepend(item);
    while (list.children.length > MAX_ITEMS) list.lastElementChild.remove();
    empty.hidden = true;
  }

  // Private channels need a ticket: Django sets it as an HttpOnly cookie for /sse/, which the
  // EventSource then sends. The ticket is renewed before it expires. An EventSource cannot see why
  // a connection was refused and gives up for good, so after that (a 401 once a ticket expired or
  // was revoked) the page asks for a new ticket and reconnects, a few times.
  const ticketUrl = root.dataset.ticketUrl;
  const MAX_RETRIES = 5;
  let renewal = null;
  let retries = 0;

  async function fetchTicket(url) {
    const channels = new URL(url, window.location.href).searchParams.getAll("channel");
    const response = await fetch(ticketUrl, {
      method: "POST",
      body: new URLSearchParams(channels.map((channel) => ["channel", channel])),
      headers: { Accept: "application/json", "X-CSRFToken": root.dataset.csrfToken },
      credentials: "same-origin",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const refused = body.channels ? `: ${body.channels.join(", ")}` : "";
      throw new Error(`${body.error || `HTTP ${response.status}`}${refused}`);
    }
    clearTimeout(renewal);
    renewal = setTimeout(() => fetchTicket(url).catch(() => {}), body.expires_in * 800);
    return body;
  }

  async function start(url) {
    if (ticketUrl) {
      setState("connecting", "getting a ticket…");
      try {
        await fetchTicket(url);
      } catch (error) {
        clearTimeout(renewal);
        setState("closed", `no ticket (${error.message})`);
        return;
      }
    }
    connect(url);
  }

  function connect(url) {
    const source = new EventSource(url);
    setState("connecting", "connecting…");
    source.onopen = () => {
      retries = 0;
      setState("open", "connected");
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        setState("reconnecting", "reconnecting…");
      } else if (ticketUrl && retries < MAX_RETRIES) {
        retries += 1;
        setState("reconnecting", "renewing the ticket…");
        setTimeout(() => start(url), 1000 * retries);
      } else {
        setState("closed", "disconnected (reload to retry)");
      }
    };
    // onmessage fires only for the default type; named types need their own listeners.
    source.onmessage = show;
    for (const type of (root.dataset.eventTypes || "").split(/\s+/).filter(Boolean)) {
      source.addEventListener(type, show);
    }
  }

  // Submit with fetch so this page, and its open stream, stay put.
  function enhanceForm(form) {
    const result = document.getElementById("publish-result");
    form.addEventListener("submit", async (submit) => {
      submit.preventDefault();
      result.className = "";
      result.textContent = "publishing…";
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        const type = response.headers.get("Content-Type") || "";
        const body = type.includes("application/json") ? await response.json() : null;
        if (response.ok && body) {
          result.textContent = body.queued
            ? `Redis is unreachable: saved for ${body.channel}, published as soon as it is back.`
            : `Published ${body.id} to ${body.channel}.`;
          return;
        }
        const errors = body && body.errors
          ? Object.values(body.errors).flat().map((error) => error.message)
          : [`HTTP ${response.status}`];
        result.className = "error";
        result.textContent = `Not published: ${errors.join(" ")}`;
      } catch (error) {
        result.className = "error";
        result.textContent = `Not published: ${error}`;
      }
    });
  }

  const url = root.dataset.streamUrl;
  if (url) {
    start(url);
  } else {
    setState("closed", "not connected");
  }
  const publishForm = document.getElementById("publish-form");
  if (publishForm) enhanceForm(publishForm);
})();
