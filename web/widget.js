// Northwind Corner web chat widget, on the socket.io client (window.io, loaded before this file).
//
// Embedding: <div data-northwind-chat data-customer-token="..."></div> or
// NorthwindChat.mount(element, { customerToken, serverUrl }). The session id and the transcript
// stay in localStorage, so a reload continues the same conversation and shows it again.
// Bot and user text are only ever set with textContent: nothing typed or answered is HTML.
(function () {
  "use strict";

  var SESSION_KEY = "northwind-chat:session";
  var TRANSCRIPT_PREFIX = "northwind-chat:transcript:";
  var MAX_KEPT_MESSAGES = 200;
  var MAX_MESSAGE_CHARS = 10000;

  function newSessionId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function readJson(key, fallback) {
    try {
      var value = JSON.parse(window.localStorage.getItem(key));
      return value === null ? fallback : value;
    } catch (error) {
      return fallback;
    }
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function choicesOf(message) {
    var list = message.quick_replies || message.buttons || [];
    return list.filter(function (c) {
      return c && typeof c.title === "string" && typeof c.payload === "string";
    }).map(function (c) {
      return { title: c.title, payload: c.payload };
    });
  }

  function mount(container, options) {
    options = options || {};
    var token = options.customerToken || null;
    var sessionId = window.localStorage.getItem(SESSION_KEY);
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(sessionId || "")) {
      sessionId = newSessionId();
      window.localStorage.setItem(SESSION_KEY, sessionId);
    }
    var transcript = readJson(TRANSCRIPT_PREFIX + sessionId, []);

    var root = element("section", "nw-chat");
    root.setAttribute("aria-label", "Chat with Northwind Corner");
    var log = element("div", "nw-log");
    log.setAttribute("role", "log");
    log.setAttribute("aria-live", "polite");
    var status = element("div", "nw-status", "connecting…");
    var form = element("form", "nw-form");
    var input = element("input");
    input.name = "message";
    input.autocomplete = "off";
    input.maxLength = MAX_MESSAGE_CHARS;
    input.placeholder = "Type a message";
    input.setAttribute("aria-label", "Your message");
    var send = element("button", "", "Send");
    send.type = "submit";
    form.appendChild(input);
    form.appendChild(send);
    root.appendChild(log);
    root.appendChild(status);
    root.appendChild(form);
    container.appendChild(root);

    function keep(entry) {
      transcript.push(entry);
      transcript = transcript.slice(-MAX_KEPT_MESSAGES);
      try {
        window.localStorage.setItem(TRANSCRIPT_PREFIX + sessionId, JSON.stringify(transcript));
      } catch (error) {
        // Storage full or disabled: the chat still works, only the history is not kept.
      }
    }

    function show(entry) {
      var bubble = element("div", "nw-message nw-" + entry.from, entry.text || "");
      log.appendChild(bubble);
      if (entry.choices && entry.choices.length) {
        var row = element("div", "nw-choices");
        entry.choices.forEach(function (choice) {
          var button = element("button", "", choice.title);
          button.type = "button";
          button.addEventListener("click", function () {
            say(choice.payload, choice.title);
          });
          row.appendChild(button);
        });
        log.appendChild(row);
      }
      log.scrollTop = log.scrollHeight;
    }

    function add(entry) {
      keep(entry);
      show(entry);
    }

    transcript.forEach(show);

    var socket = window.io(options.serverUrl || window.location.origin, {
      path: "/socket.io",
      transports: ["websocket", "polling"]
    });

    function say(message, shown) {
      var payload = { message: message, session_id: sessionId, metadata: {} };
      if (token) payload.metadata.customer_token = token;
      socket.emit("user_uttered", payload);
      add({ from: "user", text: shown === undefined ? message : shown });
    }

    socket.on("connect", function () {
      socket.emit("session_request", { session_id: sessionId });
    });
    socket.on("session_confirm", function (confirmed) {
      if (confirmed !== sessionId && typeof confirmed === "string") {
        sessionId = confirmed;
        transcript = [];
        window.localStorage.setItem(SESSION_KEY, sessionId);
      }
      status.textContent = "connected";
      root.setAttribute("data-session-id", sessionId);
    });
    socket.on("disconnect", function () {
      status.textContent = "reconnecting…";
    });
    socket.on("bot_uttered", function (message) {
      if (!message || typeof message !== "object") return;
      add({ from: "bot", text: typeof message.text === "string" ? message.text : "",
            choices: choicesOf(message) });
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value;
      if (!text.trim()) return;
      input.value = "";
      say(text);
    });

    return { say: say, sessionId: function () { return sessionId; } };
  }

  function tokenFromHash(name) {
    var match = new RegExp("(?:^|[#&])" + name + "=([^&]+)").exec(window.location.hash);
    return match ? decodeURIComponent(match[1]) : null;
  }

  window.NorthwindChat = { mount: mount };

  document.querySelectorAll("[data-northwind-chat]").forEach(function (container) {
    var hashName = container.getAttribute("data-token-from-hash");
    mount(container, {
      customerToken: container.getAttribute("data-customer-token") ||
        (hashName ? tokenFromHash(hashName) : null),
      serverUrl: container.getAttribute("data-server-url") || undefined
    });
  });
}());
