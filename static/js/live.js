// Live pages: the batch page and the dashboard follow the user's events over the WebSocket
// (/ws/events/, notifications/consumers.py) and redraw their live part (an element with
// data-live-poll, fetched by htmx) when an event comes, instead of on a timer. While the socket
// is closed (a server without WebSocket, a restart, a proxy that drops it) htmx polls as the
// element's hx-trigger says; the socket reconnects with the last event id it saw, so nothing
// that happened meanwhile is missed, and the page redraws once it is back.
// The element with data-live (its value: a batch id, or empty for all batches) starts it.
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root || !("WebSocket" in window)) return;
  var REDRAW_AFTER_MS = 200; // events closer together than this make one redraw
  var KEPT = 5000; // events remembered (window.sheafLive.events), for whoever inspects the page
  var state = { open: false, lastId: null, events: [], redraws: 0, socket: null };
  window.sheafLive = state;
  var batch = root.getAttribute("data-live");
  var retryMs = 1000;
  var pending = null;

  function live() {
    return document.querySelector("[data-live-poll]");
  }

  function address() {
    var url = new URL("/ws/events/", window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    if (batch) url.searchParams.set("batch", batch);
    if (state.lastId !== null) url.searchParams.set("last_event_id", String(state.lastId));
    return url.toString();
  }

  function redraw() {
    if (pending !== null) return;
    pending = window.setTimeout(function () {
      pending = null;
      state.redraws += 1;
      document.body.dispatchEvent(new CustomEvent("sheaf:event"));
    }, REDRAW_AFTER_MS);
  }

  function connect() {
    var socket = new WebSocket(address());
    state.socket = socket;
    socket.addEventListener("open", function () {
      state.open = true;
      retryMs = 1000;
      document.body.setAttribute("data-live-state", "open");
      if (state.lastId !== null) redraw(); // back after a break: draw what changed meanwhile
    });
    socket.addEventListener("message", function (message) {
      var frame = JSON.parse(message.data);
      if (frame.type === "heartbeat") return;
      if (frame.id !== undefined) {
        state.lastId = frame.id;
        state.events.push({ id: frame.id, type: frame.type, data: frame.data });
        if (state.events.length > KEPT) state.events.shift();
      }
      redraw(); // an event, or `resync`: events were lost, so read the page again
    });
    socket.addEventListener("close", function (event) {
      state.open = false;
      state.socket = null;
      document.body.setAttribute("data-live-state", "closed");
      // 4400-4499: refused (signed out, no such batch): polling goes on, the socket does not.
      if ((event.code >= 4400 && event.code < 4500) || !live()) return;
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    });
  }

  // While the socket is open, the live part's timer sends no request: events do.
  document.body.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail.triggeringEvent;
    var fromEvent = trigger && trigger.type === "sheaf:event";
    if (state.open && event.detail.elt.hasAttribute("data-live-poll") && !fromEvent) {
      event.preventDefault();
    }
  });
  // Once nothing on the page is live any more (the batch finished), the socket goes.
  document.body.addEventListener("htmx:afterSettle", function () {
    if (!live() && state.socket) state.socket.close(1000);
  });

  connect();
})();
