// live.js: one Server-Sent Events connection per browser for a set of channels. No dependencies.
//
//   const live = new LiveStream({channels: ["public.board", "user.7"], ticketUrl: "/live/ticket",
//                                csrfToken, onState: (state) => ...});
//   live.on("board.item", (data, meta) => ...);   // meta: {channel, id, type, lastEventId}
//   live.on("reset", ({channel}) => reload(channel));
//
// Tabs of one browser that ask for the same channels share one connection: a leader tab (elected
// with the Web Locks API, or a localStorage heartbeat where it is missing) holds the EventSource and
// rebroadcasts what it receives on a BroadcastChannel; when the leader goes, another tab takes over
// and resumes from the last event id seen. Browsers allow only 6 HTTP/1.1 connections per origin.
"use strict";

(() => {
  const STATES = ["connecting", "open", "reconnecting", "closed"];
  const HEARTBEAT_MS = 1000;
  const LEADER_STALE_MS = 3500;

  // An id is "<channel>/<id>", then ",<channel>/<id>" for each other channel of the connection.
  function splitId(lastEventId) {
    const own = lastEventId.split(",")[0];
    const cut = own.indexOf("/");
    return cut < 0 ? { channel: "", id: own } : { channel: own.slice(0, cut), id: own.slice(cut + 1) };
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch {
      return data;
    }
  }

  class LiveStream {
    constructor({
      channels,
      onState = null,
      ticketUrl = "",
      csrfToken = "",
      url = "/sse/",
      share = true,
      lastEventId = "",
      maxRetries = 10,
    }) {
      if (!channels || !channels.length) throw new Error("LiveStream: no channels");
      this.channels = [...new Set(channels)];
      this.ticketUrl = ticketUrl;
      this.csrfToken = csrfToken;
      this.baseUrl = url;
      this.maxRetries = maxRetries;
      this.state = "closed";
      this.leader = false;
      this.lastEventId = lastEventId; // "<channel>/<position>": resume from there
      this._handlers = new Map();
      this._types = new Set(["message", "reset"]); // every type some tab listens to
      this._stateHandlers = onState ? [onState] : [];
      this._source = null;
      this._retries = 0;
      this._timers = new Set();
      this._closed = false;
      this._tabId = Math.random().toString(36).slice(2);
      this._name = `live:${url}?${[...this.channels].sort().join("&")}`;
      const canShare = share && typeof BroadcastChannel === "function";
      this._bus = canShare ? new BroadcastChannel(this._name) : null;
      if (this._bus) this._bus.onmessage = (message) => this._fromBus(message.data);
      this._setState("connecting");
      if (!this._bus) this._lead();
      else if (navigator.locks && navigator.locks.request) this._electWithLocks();
      else this._electWithHeartbeat();
      if (this._bus) this._post({ kind: "hello" });
    }

    // Handlers: `message` is the default type, `reset` the service's own, `*` every event.
    on(type, handler) {
      if (!this._handlers.has(type)) this._handlers.set(type, []);
      this._handlers.get(type).push(handler);
      if (type !== "*") {
        this._listen(type);
        this._post({ kind: "types", types: [type] });
      }
      return this;
    }

    onState(handler) {
      this._stateHandlers.push(handler);
      handler(this.state);
      return this;
    }

    close() {
      this._closed = true;
      this._closeSource();
      for (const timer of this._timers) clearTimeout(timer);
      if (this._releaseLock) this._releaseLock();
      if (this._bus) this._bus.close();
      this._setState("closed");
    }

    // ---- leader election -------------------------------------------------------------------

    _electWithLocks() {
      navigator.locks.request(this._name, () => {
        if (this._closed) return undefined;
        this._lead();
        return new Promise((resolve) => {
          this._releaseLock = resolve;
        });
      });
    }

    _electWithHeartbeat() {
      const key = `${this._name}:leader`;
      const tick = () => {
        if (this._closed) return;
        const now = Date.now();
        let current = null;
        try {
          current = JSON.parse(localStorage.getItem(key));
        } catch {
          current = null;
        }
        if (this.leader || !current || now - current.at > LEADER_STALE_MS) {
          localStorage.setItem(key, JSON.stringify({ tab: this._tabId, at: now }));
          if (!this.leader) {
            // Two tabs may write at once: whoever's id is still there a moment later leads.
            this._after(100, () => {
              const winner = JSON.parse(localStorage.getItem(key) || "null");
              if (winner && winner.tab === this._tabId && !this.leader) this._lead();
            });
          }
        }
        this._after(HEARTBEAT_MS, tick);
      };
      window.addEventListener("pagehide", () => {
        if (this.leader) localStorage.removeItem(key);
      });
      tick();
    }

    _lead() {
      this.leader = true;
      this._start();
    }

    // ---- the bus between tabs --------------------------------------------------------------

    _post(message) {
      if (this._bus) this._bus.postMessage({ ...message, from: this._tabId });
    }

    _fromBus(message) {
      if (message.kind === "event") {
        if (this.leader) return;
        this.lastEventId = message.lastEventId || this.lastEventId;
        this._dispatch(message.type, message.data, message.lastEventId);
      } else if (message.kind === "state") {
        if (!this.leader) this._setState(message.state);
      } else if (message.kind === "hello" || message.kind === "types") {
        if (!this.leader) return;
        for (const type of message.types || []) this._listen(type);
        this._post({ kind: "state", state: this.state });
      }
      if (message.kind === "hello" && !this.leader) {
        this._post({ kind: "types", types: [...this._handlers.keys()].filter((t) => t !== "*") });
      }
    }

    // ---- the connection (leader only) ------------------------------------------------------

    async _start() {
      if (this._closed) return;
      if (this.ticketUrl) {
        try {
          await this._ticket();
        } catch (error) {
          if (error.permanent) return this._giveUp();
          return this._retry();
        }
      }
      this._connect();
    }

    async _ticket() {
      const response = await fetch(this.ticketUrl, {
        method: "POST",
        body: new URLSearchParams(this.channels.map((channel) => ["channel", channel])),
        headers: { Accept: "application/json", "X-CSRFToken": this.csrfToken },
        credentials: "same-origin",
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const error = new Error(body.error || `HTTP ${response.status}`);
        // 4xx will not get better by asking again (logged out, refused); 5xx might.
        error.permanent = response.status >= 400 && response.status < 500;
        throw error;
      }
      clearTimeout(this._renewal);
      // Renew at 80% of the lifetime; a failed renewal is retried on the next reconnect.
      this._renewal = this._after(body.expires_in * 800, () => this._ticket().catch(() => {}));
      return body;
    }

    _streamUrl() {
      const query = new URLSearchParams(this.channels.map((channel) => ["channel", channel]));
      if (this.lastEventId) query.set("lastEventId", this.lastEventId);
      return `${this.baseUrl}?${query}`;
    }

    _connect() {
      this._closeSource();
      // With credentials: on another origin (SSE_STREAM_URL in development) the ticket cookie goes
      // only so; on this origin it changes nothing.
      const source = new EventSource(this._streamUrl(), { withCredentials: true });
      this._source = source;
      this._listening = new Set();
      source.onopen = () => {
        this._retries = 0;
        this._setState("open");
      };
      source.onerror = () => {
        if (source !== this._source) return;
        // Reconnect ourselves rather than let the browser do it: its retry would repeat the URL's
        // stale lastEventId (which the service prefers to the header), and after a refusal (401 once
        // a ticket expired or was revoked, 429, 503 ...) it gives up for good. A new ticket each time.
        this._retry();
      };
      for (const type of [...this._types]) this._listen(type);
    }

    _listen(type) {
      if (type === "*") return;
      this._types.add(type);
      if (!this._source || this._listening.has(type)) return;
      this._listening.add(type);
      this._source.addEventListener(type, (event) => {
        this.lastEventId = event.lastEventId || this.lastEventId;
        this._post({ kind: "event", type, data: event.data, lastEventId: event.lastEventId });
        this._dispatch(type, event.data, event.lastEventId);
      });
    }

    _retry() {
      this._closeSource();
      if (this._retries >= this.maxRetries) return this._giveUp();
      this._retries += 1;
      this._setState("reconnecting");
      const delay = Math.min(30000, 500 * 2 ** this._retries) * (0.75 + Math.random() / 2);
      this._after(delay, () => this._start());
      return undefined;
    }

    _giveUp() {
      this._closeSource();
      clearTimeout(this._renewal);
      this._setState("closed");
    }

    _closeSource() {
      if (this._source) this._source.close();
      this._source = null;
    }

    // ---- helpers ---------------------------------------------------------------------------

    _after(ms, fn) {
      const timer = setTimeout(() => {
        this._timers.delete(timer);
        fn();
      }, ms);
      this._timers.add(timer);
      return timer;
    }

    _setState(state) {
      if (!STATES.includes(state) || state === this.state) return;
      this.state = state;
      if (this.leader) this._post({ kind: "state", state });
      for (const handler of this._stateHandlers) handler(state);
    }

    _dispatch(type, raw, lastEventId) {
      const { channel, id } = splitId(lastEventId || "");
      const data = parse(raw);
      const meta = { channel, id, type, lastEventId };
      for (const handler of [...(this._handlers.get(type) || []), ...(this._handlers.get("*") || [])]) {
        try {
          handler(data, meta);
        } catch (error) {
          console.error("LiveStream handler failed", error); // one bad handler must not stop the rest
        }
      }
    }
  }

  // `{% live_stream %}` renders <script type="application/json" id="live-stream"> with the options
  // before this script; the stream it describes becomes `window.live`.
  function autoStart() {
    const config = document.getElementById("live-stream");
    if (!config || window.live) return;
    window.live = new LiveStream(JSON.parse(config.textContent));
  }

  window.LiveStream = LiveStream;
  autoStart();
})();
