// htmx-stream.js: what `{% htmx_stream %}` needs beyond htmx's SSE extension. No dependencies but htmx.
//
// The tag renders <div hx-ext="sse" data-sse-push-connect="/sse/?channel=..."> around the page's
// `sse-swap` elements. For each such element this script
// - gets a ticket first when a channel is private (data-sse-push-ticket-url), then sets `sse-connect`
//   and lets htmx open the EventSource, so the first request already carries the ticket cookie;
// - renews the ticket at 80 % of its lifetime, so the cookie is valid whenever the browser reconnects;
// - when htmx's EventSource is closed for good (a 401 after the ticket was revoked, a 429, a 503),
//   gets a fresh ticket at once: htmx's extension opens a new EventSource after 0.5 s, 1 s, 2 s...;
// - before that new EventSource opens, sets `lastEventId` in the `sse-connect` URL to the newest event
//   seen, as it does not send the Last-Event-ID header a browser's own reconnect sends: the stream
//   resumes there, and nothing published meanwhile is missed.
// `data-sse-push-state` says how it goes: connecting, open, reconnecting, closed (the ticket was
// refused: logged out, or no longer allowed).
"use strict";

(() => {
  if (window.ssePushHtmx) return; // one copy per page, however many tags load it
  const RENEW_AT = 0.8;
  const RETRY_MS = 5000;
  const CLOSED = 2; // EventSource.CLOSED
  const SWAPPERS = "[sse-swap], [data-sse-swap], [hx-trigger], [data-hx-trigger]";
  const streams = new WeakMap();

  class Stream {
    constructor(element) {
      this.element = element;
      this.url = new URL(element.dataset.ssePushConnect, window.location.href);
      this.ticketUrl = element.dataset.ssePushTicketUrl || "";
      this.csrfToken = element.dataset.ssePushCsrfToken || "";
      this.renewal = null;
      this.fetching = null;
      this.closed = false;
      this.lastEventId = "";
    }

    async start() {
      this.setState("connecting");
      if (this.ticketUrl && !(await this.ticket())) return;
      this.element.setAttribute("sse-connect", this.connectUrl());
      // htmx initialises an element once per set of attribute values: the `sse-swap` elements inside,
      // seen when the page loaded, are initialised again, now under an EventSource.
      for (const child of this.element.querySelectorAll(SWAPPERS)) child.setAttribute("data-sse-push-bound", "1");
      window.htmx.process(this.element);
    }

    // Resolves true once the cookie holds a fresh ticket, false if it was refused (then closed).
    ticket() {
      if (!this.fetching) {
        this.fetching = this.requestTicket().finally(() => {
          this.fetching = null;
        });
      }
      return this.fetching;
    }

    async requestTicket() {
      clearTimeout(this.renewal);
      const body = new URLSearchParams(this.url.searchParams.getAll("channel").map((c) => ["channel", c]));
      let answer;
      try {
        answer = await fetch(this.ticketUrl, {
          method: "POST",
          body,
          headers: { "X-CSRFToken": this.csrfToken, Accept: "application/json" },
          credentials: "same-origin",
        });
      } catch {
        answer = null; // offline: try again later
      }
      if (answer && answer.ok) {
        const { expires_in: expiresIn } = await answer.json();
        this.renewal = setTimeout(() => this.ticket(), expiresIn * RENEW_AT * 1000);
        return true;
      }
      if (answer && answer.status >= 400 && answer.status < 500) {
        this.close();
        return false;
      }
      this.renewal = setTimeout(() => this.ticket(), RETRY_MS);
      return true; // the old ticket may still be good; htmx keeps retrying meanwhile
    }

    close() {
      // Without `sse-connect` htmx's extension stops reconnecting.
      this.closed = true;
      this.element.removeAttribute("sse-connect");
      const source = window.htmx && this.element["htmx-internal-data"]?.sseEventSource;
      if (source) source.close();
      this.setState("closed");
    }

    // The path on this origin; the whole URL when SSE_STREAM_URL is on another (development).
    connectUrl() {
      if (this.url.origin !== window.location.origin) return this.url.href;
      return this.url.pathname + this.url.search;
    }

    seen(lastEventId) {
      if (lastEventId) this.lastEventId = lastEventId;
    }

    // htmx reads `sse-connect` again when it replaces a closed EventSource, half a second or more
    // after this; only then, so that the attribute does not change under htmx at other times.
    failed(source) {
      if (this.closed) return;
      this.setState("reconnecting");
      if (!source || source.readyState !== CLOSED) return; // the browser reconnects by itself
      if (this.lastEventId) {
        this.url.searchParams.set("lastEventId", this.lastEventId);
        this.element.setAttribute("sse-connect", this.connectUrl());
      }
      if (this.ticketUrl) this.ticket();
    }

    setState(state) {
      this.element.dataset.ssePushState = state;
    }
  }

  function streamOf(node) {
    const element = node instanceof Element ? node.closest("[data-sse-push-connect]") : null;
    return element ? streams.get(element) : undefined;
  }

  function startAll(root) {
    const found = root.querySelectorAll ? [...root.querySelectorAll("[data-sse-push-connect]")] : [];
    if (root.matches && root.matches("[data-sse-push-connect]")) found.unshift(root);
    for (const element of found) {
      if (streams.has(element)) continue;
      const stream = new Stream(element);
      streams.set(element, stream);
      stream.start();
    }
  }

  document.addEventListener("htmx:sseOpen", (event) => streamOf(event.target)?.setState("open"));
  document.addEventListener("htmx:sseError", (event) => streamOf(event.target)?.failed(event.detail.source));
  document.addEventListener("htmx:sseMessage", (event) => streamOf(event.target)?.seen(event.detail.lastEventId));
  // Content htmx swaps in later may hold streams too.
  document.addEventListener("htmx:load", (event) => startAll(event.target));

  window.ssePushHtmx = { start: startAll };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => startAll(document));
  } else {
    startAll(document);
  }
})();
