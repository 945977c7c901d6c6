// The agent console in the browser: no framework, the server's JSON API and one EventSource.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { agent: null, current: null, view: null, draftKey: null, stream: null };

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== "/api/login") showLogin();
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  Object.assign(node.dataset, dataset);
  for (const child of children) node.append(child);
  return node;
}

function showLogin() {
  $("desk-view").hidden = true;
  $("login-view").hidden = false;
  if (state.stream) state.stream.close();
}

async function showDesk(agent) {
  state.agent = agent;
  $("login-view").hidden = true;
  $("desk-view").hidden = false;
  $("whoami").textContent = `${agent.display_name} (${agent.role})`;
  connectStream();
  await refreshQueue();
}

function connectStream() {
  if (state.stream) state.stream.close();
  const stream = new EventSource("/api/stream");
  stream.onopen = () => $("live").classList.add("on");
  stream.onerror = () => $("live").classList.remove("on");
  stream.addEventListener("queue", refreshQueue);
  stream.addEventListener("handoff", (e) => {
    refreshQueue();
    if (state.current === JSON.parse(e.data).id) openConversation(state.current);
  });
  stream.addEventListener("message", (e) => {
    const message = JSON.parse(e.data);
    if (state.current === message.handoff_id) upsertMessage(message);
  });
  state.stream = stream;
}

function minutes(seconds) {
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)} min`;
}

function queueItem(item) {
  const li = el("li", { className: `prio-${item.priority}`, dataset: { id: item.id } },
    el("div", {}, el("strong", { textContent: item.customer }), ` · ${item.team} · ${item.priority}`),
    el("div", { className: "summary", textContent: item.summary }),
    el("small", { textContent: `waiting ${minutes(item.waiting_seconds)} · rule ${item.rule_id}` }));
  if (item.id === state.current) li.classList.add("selected");
  li.addEventListener("click", () => openConversation(item.id));
  return li;
}

async function refreshQueue() {
  const queues = await api("GET", "/api/queue");
  $("waiting").replaceChildren(...queues.waiting.map(queueItem));
  $("mine").replaceChildren(...queues.mine.map(queueItem));
}

function dl(target, pairs) {
  $(target).replaceChildren(...pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [el("dt", { textContent: k }), el("dd", { textContent: String(v) })]));
}

function line(author, text, extra = {}) {
  const who = { customer: "Customer", bot: "Bot", agent: extra.agent || "Agent", note: `Note (${extra.agent})` }[author];
  const li = el("li", { className: author, dataset: { id: extra.id || "" } },
    el("span", { className: "who", textContent: `${who}:` }), el("span", { className: "text", textContent: text }));
  if (extra.delivery) {
    li.append(el("span", { className: "status", textContent: extra.delivery }));
    if (extra.delivery === "failed") {
      li.classList.add("failed");
      const retry = el("button", { type: "button", textContent: "Retry", className: "retry" });
      retry.addEventListener("click", () => sendReply(extra.key, text, true));
      li.append(retry);
    }
  }
  return li;
}

function upsertMessage(message) {
  const key = message.id.split(":").slice(1).join(":");
  const node = line(message.author, message.text, { ...message, key });
  const existing = [...$("transcript").children].find((li) => li.dataset.id === message.id);
  if (existing) existing.replaceWith(node); else $("transcript").append(node);
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

async function openConversation(id) {
  state.current = id;
  const view = await api("GET", `/api/handoffs/${id}`);
  state.view = view;
  const p = view.package;
  $("conversation").hidden = false;
  $("conv-title").textContent = `${view.customer} · ${view.channel || "?"} · ${view.language || "?"}`;
  $("conv-state").textContent = view.agent ? `${view.state} by ${view.agent}` : view.state;
  $("summary").textContent = p.summary;
  const c = p.customer || {};
  dl("customer", [["Name", c.name], ["Customer id", c.customer_id], ["Email", c.email], ["Phone", c.phone],
    ["Tier", c.tier], ["Lifetime value", c.lifetime_value !== undefined ? `${c.lifetime_value} ${c.currency || ""}` : null],
    ["Lead score", c.lead_score], ["Open orders", c.open_orders], ["Tenure (days)", c.tenure_days],
    ["Last event", c.last_event ? `${c.last_event.type} ${c.last_event.at}` : null]]);
  if (!p.customer) dl("customer", [["Visitor", "anonymous (not signed in)"]]);
  dl("request", [["Reason", p.reason.code], ["Intent", p.intent.name ? `${p.intent.name} (${(p.intent.confidence || 0).toFixed(2)})` : null],
    ["Entities", p.intent.entities.map((e) => `${e.entity}=${e.value}`).join(", ")],
    ...Object.entries(p.context || {})]);
  dl("routing", [["Team", view.team], ["Priority", `${view.priority} (score ${view.score})`], ["Rule", view.rule_id],
    ["Why", (view.routing.matched || []).join("; ")], ["Labels", (view.routing.labels || []).join(", ")]]);
  $("events").replaceChildren(...view.events.map((e) => el("li", { textContent: `${e.at.slice(11, 19)} ${e.type} (${e.actor})` })));
  $("transcript").replaceChildren(...p.transcript.map((t) => line(t.author, t.text)));
  view.messages.forEach(upsertMessage);
  const mine = view.state === "accepted" && (view.agent === state.agent.username || state.agent.role === "supervisor");
  $("claim").hidden = view.state !== "requested";
  $("handback").hidden = !(mine || view.state === "requested");
  $("resolve").hidden = !mine;
  $("send-reply").disabled = !mine;
  await refreshQueue();
}

async function act(action) {
  try {
    await api("POST", `/api/handoffs/${state.current}/${action}`);
  } catch (error) {
    $("compose-error").textContent = error.message;
  }
  await openConversation(state.current);
}

async function sendReply(key, text, retry = false) {
  $("compose-error").textContent = "";
  try {
    upsertMessage(await api("POST", `/api/handoffs/${state.current}/reply`, { key, text, retry }));
  } catch (error) {
    $("compose-error").textContent = error.message;
  }
}

function draftKey() {
  // One key per draft: a double click or a resent request is stored and delivered once.
  if (!state.draftKey) state.draftKey = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  return state.draftKey;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await showDesk(await api("POST", "/api/login", { username: $("username").value, password: $("password").value }));
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});
$("logout").addEventListener("click", async () => { await api("POST", "/api/logout"); showLogin(); });
$("claim").addEventListener("click", () => act("claim"));
$("handback").addEventListener("click", () => act("handback"));
$("resolve").addEventListener("click", () => act("resolve"));
$("reply-text").addEventListener("input", () => { if (!$("reply-text").value) state.draftKey = null; });
$("compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("reply-text").value.trim();
  if (!text) return;
  const key = draftKey();
  await sendReply(key, text);
  if ($("reply-text").value.trim() === text) { $("reply-text").value = ""; state.draftKey = null; }
});
$("send-note").addEventListener("click", async () => {
  const text = $("reply-text").value.trim();
  if (!text) return;
  try {
    upsertMessage(await api("POST", `/api/handoffs/${state.current}/note`, { key: draftKey(), text }));
    $("reply-text").value = ""; state.draftKey = null;
  } catch (error) {
    $("compose-error").textContent = error.message;
  }
});

api("GET", "/api/me").then(showDesk, showLogin);
