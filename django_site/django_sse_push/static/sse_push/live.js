// live.js: one Server-Sent Events connection per browser for a set of channels. No dependencies.
//
//   const live = new LiveStream({channels: ["public.board", "user.7"], ticketUrl: "/live/ticket",
//                                csrfToken, onState: (state) => ...});
//   live.on("board.item", (data, meta) => ...);   // meta: {channel, id, type, lastEventId}
//   live.on("reset", ({channel}) => reload(channel));
//   new LiveStream({channels: ["public.board"], rewind: 20})  // starts with the last 20 events
//
// Tabs of one browser that ask for the same channels share one connection: a leader tab (elected
// with the Web Locks API, or a localStorage heartbeat where it is missing) holds the EventSource and
// rebroadcasts what it receives on a BroadcastChannel. Browsers allow only 6 HTTP/1.1 connections
// per origin.
//
// Every tab gets every event after its own position exactly once. Each tab keeps its own position
// per channel (where its page was rendered, then the last event it handled) and drops what is at or
// below it. The shared connection has positions of its own (where it started, then what it
// delivered); a tab joining it says where it stands, and if that is behind the connection on any
// channel, the leader reopens the connection from the older position: the replay reaches every tab,
// and each drops what it had. A joining tab handles nothing until the leader's welcome, after which
// all it hears comes from a connection that started no later than its own position. Why not let the
// follower fetch its gap alone: that would be a second connection per tab, the cost sharing avoids,
// and a replay interleaved with the live stream would need ordering across two sources.
//
// Positions go to the service as one event id (`?lastEventId=`: an EventSource cannot set headers):
// `<channel>/<id>` for the first channel, then `,~<tag>,<index>:<id>` for the others, so that 32
// channels of 128 characters still fit nginx's 8 KB request line. A connection's positions come from
// its opening block (type `sse.start`) before any event, so a page rendered without a position
// (Redis was down) resumes from where its first connection started.
"use strict";

(() => {
  const STATES = ["connecting", "open", "reconnecting", "closed"];
  const HEARTBEAT_MS = 1000;
  const LEADER_STALE_MS = 3500;

  const OPENING = "sse.start"; // the service's own type for a stream's first block

  // An id is "<channel>/<id>", then, for the connection's other channels, ",~<tag>" and
  // ",<index>:<id>" each (or ",<channel>/<id>" each, as ids of stream 1 did: docs/wire-contract.md).
  function splitId(lastEventId) {
    const own = lastEventId.split(",")[0];
    const cut = own.lastIndexOf("/");
    return cut < 0 ? { channel: "", id: own } : { channel: own.slice(0, cut), id: own.slice(cut + 1) };
  }

  // "<ms>-<seq>" as [ms, seq], or null.
  function streamId(text) {
    const match = /^(\d{1,15})-(\d{1,15})$/.exec(text);
    return match ? [Number(match[1]), Number(match[2])] : null;
  }

  function after(a, b) {
    return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
  }

  // The tag of a channel list: 32-bit FNV-1a of the names joined by commas, as 8 hex digits.
  function listTag(channels) {
    let hash = 0x811c9dc5;
    for (const char of channels.join(",")) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
    return hash.toString(16).padStart(8, "0");
  }

  // Every channel position an id holds, for a connection on `channels`.
  function positionsOf(lastEventId, channels) {
    const positions = new Map();
    const parts = (lastEventId || "").split(",");
    const indexed = parts.length > 1 && parts[1].startsWith("~");
    parts.forEach((part, n) => {
      if (indexed && n === 1) return;
      const [channel, id] =
        indexed && n > 1
          ? [channels[Number(part.split(":")[0])], part.slice(part.indexOf(":") + 1)]
          : [part.slice(0, part.lastIndexOf("/")), part.slice(part.lastIndexOf("/") + 1)];
      const position = streamId(id);
      if (channel && position && channels.includes(channel)) positions.set(channel, position);
    });
    return positions;
  }

  function formatId(positions, channels) {
    const known = channels.filter((channel) => positions.has(channel));
    if (!known.length) return "";
    const own = `${known[0]}/${positions.get(known[0]).join("-")}`;
    const others = channels
      .map((channel, index) =>
        channel !== known[0] && positions.has(channel) ? `,${index}:${positions.get(channel).join("-")}` : "",
      )
      .join("");
    return others ? `${own},~${listTag(channels)}${others}` : own;
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
      rewind = 0,
      maxRetries = 10,
    }) {
      if (!channels || !channels.length) throw new Error("LiveStream: no channels");
      this.channels = [...new Set(channels)];
      this.ticketUrl = ticketUrl;
      this.csrfToken = csrfToken;
      this.baseUrl = url;
      this.maxRetries = maxRetries;
      this.rewind = rewind; // past events each channel without a position starts with (`rewind=N`)
      this.state = "closed";
      this.leader = false;
      this.lastEventId = lastEventId; // the newest event id this tab handled (or where it started)
      this._positions = positionsOf(lastEventId, this.channels); // this tab's, per channel
      this._connection = new Map(this._positions); // the shared connection's, per channel (leader)
      this._welcomed = false; // a follower handles events once the leader has welcomed it
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
      this._hello();
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

    // Ends this tab's stream; another tab takes the shared connection over.
    close() {
      if (this._closed) return;
      this._closeSource();
      for (const timer of this._timers) clearTimeout(timer);
      clearTimeout(this._renewal);
      if (this.leader && this._heartbeatKey) localStorage.removeItem(this._heartbeatKey);
      this.leader = false; // the others keep their state: one of them leads next
      this._closed = true;
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
      const key = (this._heartbeatKey = `${this._name}:leader`);
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
      this._welcomed = true;
      // The connection starts where this tab stands; the others say where they do (`hello`).
      this._connection = new Map(this._positions);
      this._post({ kind: "leader" });
      this._start();
    }

    // ---- the bus between tabs --------------------------------------------------------------

    _post(message) {
      if (this._bus && !this._closed) this._bus.postMessage({ ...message, from: this._tabId });
    }

    // A follower says where it stands and which types it listens to, then waits for a welcome.
    _hello() {
      if (!this._bus || this.leader) return;
      this._welcomed = false;
      const positions = [...this._positions].map(([channel, position]) => [channel, position]);
      const types = [...this._handlers.keys()].filter((t) => t !== "*");
      this._post({ kind: "hello", positions, types });
    }

    _fromBus(message) {
      if (message.kind === "event") {
        if (!this.leader && this._welcomed) this._handle(message.type, message.data, message.lastEventId);
      } else if (message.kind === "state") {
        if (!this.leader) this._setState(message.state);
      } else if (message.kind === "welcome") {
        if (message.to === this._tabId) this._welcomed = true;
      } else if (message.kind === "leader") {
        this._hello();
      } else if (message.kind === "hello" || message.kind === "types") {
        if (!this.leader) return;
        for (const type of message.types || []) this._listen(type);
        if (message.kind === "hello") this._welcome(message.from, new Map(message.positions || []));
        this._post({ kind: "state", state: this.state });
      }
    }

    // A tab joined: if it stands behind the connection on any channel, reopen the connection from
    // there; everything posted after the welcome then starts no later than the tab's position.
    _welcome(tab, positions) {
      let behind = false;
      for (const [channel, position] of positions) {
        const current = this._connection.get(channel);
        if (!current || after(current, position)) {
          this._connection.set(channel, position);
          behind = true;
        }
      }
      // Closed before the welcome: an EventSource dispatches nothing once closed. Without an open
      // source (waiting for a ticket or a retry) the next connection starts from there anyway.
      const reopen = behind && this._source !== null;
      if (reopen) this._closeSource();
      this._post({ kind: "welcome", to: tab });
      if (reopen) this._connect();
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
      const position = formatId(this._connection, this.channels);
      if (position) query.set("lastEventId", position);
      // Only while some channel has no position: the service rewinds just those, and a stream that
      // reconnects resumes from its positions rather than rewinding again.
      if (this.rewind && this.channels.some((channel) => !this._connection.has(channel))) {
        query.set("rewind", String(this.rewind));
      }
      return `${this.baseUrl}?${query}`;
    }

    _connect() {
      this._closeSource();
      // With credentials: on another origin (SSE_STREAM_URL in development) the ticket cookie goes
      // only so; on this origin it changes nothing.
      const source = new EventSource(this._streamUrl(), { withCredentials: true });
      this._source = source;
      this._listening = new Set();
      // Where each channel starts: a tab without a position of its own (a page rendered while Redis
      // was down) takes it, so a reconnect before the first event resumes from here.
      source.addEventListener(OPENING, (event) => {
        for (const [channel, position] of positionsOf(event.lastEventId, this.channels)) {
          this._connection.set(channel, position);
          if (!this._positions.has(channel)) this._positions.set(channel, position);
        }
      });
      source.onopen = () => {
        this._retries = 0;
        this._setState("open");
      };
      source.onerror = () => {
        if (source !== this._source) return;
        // Reconnect ourselves rather than let the browser do it: after a refusal (401 once a ticket
        // expired or was revoked, 429, 503 ...) it gives up for good. A new ticket each time, and
        // the connection's positions, which followers may have lowered, in the URL.
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
        for (const [channel, position] of positionsOf(event.lastEventId, this.channels)) {
          this._connection.set(channel, position);
        }
        this._post({ kind: "event", type, data: event.data, lastEventId: event.lastEventId });
        this._handle(type, event.data, event.lastEventId);
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

    // An event for this tab: handled unless it is at or below this tab's position on its channel.
    _handle(type, raw, lastEventId) {
      const { channel, id } = splitId(lastEventId || "");
      const position = streamId(id);
      if (position && this.channels.includes(channel)) {
        const mine = this._positions.get(channel);
        if (mine && !after(position, mine)) return;
        this._positions.set(channel, position);
      }
      this.lastEventId = lastEventId || this.lastEventId;
      this._dispatch(type, channel, id, raw, lastEventId);
    }

    _dispatch(type, channel, id, raw, lastEventId) {
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
