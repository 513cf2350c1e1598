// The live view of a drlab lab (docs/live-lab.md, "Live view"): the topology as SVG, gateway
// health, links, calls, a folded timeline and a SIP ladder, all from the lab's control API:
// GET /api/topology and /api/addresses once, GET /api/state every second, and the event stream
// (GET /api/events?since=0) for everything that happens. Plain JavaScript; nothing from outside.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const W = 1200;
const STATE_POLL_MS = 1000;
const LEGS_POLL_MS = 1000;
//: pace used to skip ahead over a quiet stretch, until something that is not routine happens
const SKIP_PACE = 300;
//: SIP messages kept for ladders (per Call-ID); keepalives and registrations are not kept
const LADDER_SKIP = /^(OPTIONS|REGISTER|SUBSCRIBE)$/;
const MAX_SIP_CALL_IDS = 5000;
const MAX_TIMELINE_LINES = 400;

const view = {
  topology: null, state: null, addressNode: {}, hostNode: {}, userNode: {}, pos: {},
  sip: new Map(),            // Call-ID -> [records]
  routineLines: new Map(),   // routine timeline lines since the last one that was not: key -> {li, count, t0}
  sbaSync: {},               // SBA node -> "synced" or "sync failing"
  selectedCall: null, legs: [], lastRecordT: 0, skipping: null, steps: new Map(), stopped: false,
};

// --- helpers --------------------------------------------------------------------------------------
function $(id) { return document.getElementById(id); }

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function formatTime(t) {
  const ms = Math.round(t * 1000);
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
}

function say(text) { $("status").textContent = text || ""; }

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { say(answer.error || `${method} ${path}: ${response.status}`); throw new Error(answer.error); }
  say("");
  return answer;
}

function nodeName(fqdn) { return fqdn ? (view.hostNode[fqdn.toLowerCase()] || fqdn) : null; }

// --- what a client's registration, a link's state and a gateway's health are called ------------
function clientWhere(c) {
  if (c.state === "online") return { cls: "online", word: `cloud (${nodeName(c.registrar)})` };
  if (c.state === "appliance") return { cls: "appliance", word: `SBA (${nodeName(c.registrar)})` };
  return { cls: "offline", word: "nowhere" };
}

function linkWord(link) {
  if (link.state === "up" && link.impaired) return "impaired";
  return link.state;
}

// --- layout ---------------------------------------------------------------------------------------
// Rows, top to bottom: the cloud's sites, transit sites (the internet), branches, carriers.
const ROWS = { cloud: { y: 10, h: 120 }, transit: { y: 180, h: 50 }, branch: { y: 290, h: 270 },
               carrier: { y: 610, h: 120 } };

function layout(topology) {
  const boxes = {};
  const byKind = { cloud: [], transit: [], branch: [], carrier: [] };
  for (const site of topology.sites) byKind[site.kind].push(site);
  // a carrier sits under the branch its link goes to
  const linkedBranch = (site) => {
    for (const l of topology.links) {
      const other = l.a === site.name ? l.b : l.b === site.name ? l.a : null;
      const i = byKind.branch.findIndex((b) => b.name === other);
      if (i >= 0) return i;
    }
    return -1;
  };
  for (const [kind, sites] of Object.entries(byKind)) {
    const row = ROWS[kind];
    const slot = W / Math.max(sites.length, 1);
    sites.forEach((site, i) => {
      let x = slot * i;
      let width = slot;
      if (kind === "carrier" && byKind.branch.length) {
        const b = linkedBranch(site);
        const bw = W / byKind.branch.length;
        if (b >= 0) { x = bw * b + bw / 4; width = bw / 2; }
      }
      if (kind === "transit") { x = x + width / 3; width = width / 3; }
      boxes[site.name] = { x: x + 10, y: row.y, w: width - 20, h: row.h, site };
    });
  }
  return boxes;
}

function placeNodes(box, nodes) {
  const pos = {};
  const infra = nodes.filter((n) => n.role !== "teams_client");
  const clients = nodes.filter((n) => n.role === "teams_client");
  const rows = clients.length && infra.length ? [infra, clients] : [infra.length ? infra : clients];
  const nodeH = 80;
  const top = box.y + 34;
  const gap = (box.h - 34 - rows.length * nodeH) / (rows.length + 1);
  rows.forEach((row, r) => {
    const slot = box.w / row.length;
    const w = Math.min(slot - 16, 230);
    row.forEach((n, i) => {
      pos[n.name] = { x: box.x + slot * i + (slot - w) / 2, y: top + gap * (r + 1) + nodeH * r, w, h: nodeH, node: n };
    });
  });
  return pos;
}

function clip(from, to, box) {
  // the point where the segment from the box's centre towards `to` leaves the box
  const dx = to.x - from.x, dy = to.y - from.y;
  const tx = dx ? (box.w / 2) / Math.abs(dx) : Infinity;
  const ty = dy ? (box.h / 2) / Math.abs(dy) : Infinity;
  const k = Math.min(tx, ty, 1);
  return { x: from.x + dx * k, y: from.y + dy * k };
}

function centre(b) { return { x: b.x + b.w / 2, y: b.y + b.h / 2 }; }

function drawTopology() {
  const topo = view.topology;
  const root = $("topology");
  root.replaceChildren();
  const boxes = layout(topo);
  const height = Math.max(...Object.values(boxes).map((b) => b.y + b.h)) + 10;
  root.setAttribute("viewBox", `0 0 ${W} ${height}`);
  const linksLayer = svg("g"), sitesLayer = svg("g"), callsLayer = svg("g", { id: "calls-layer" });
  root.append(sitesLayer, linksLayer, callsLayer);
  view.pos = {};
  for (const [name, box] of Object.entries(boxes)) {
    const g = svg("g", { class: `site ${box.site.kind}` });
    g.append(svg("rect", { x: box.x, y: box.y, width: box.w, height: box.h, rx: 14 }));
    g.append(svg("text", { class: "site-name", x: box.x + 12, y: box.y + 25 }, name));
    if (box.site.description) g.append(svg("title", {}, box.site.description));
    sitesLayer.append(g);
    const members = topo.nodes.filter((n) => n.site === name);
    Object.assign(view.pos, placeNodes(box, members));
  }
  for (const link of topo.links) {
    const a = boxes[link.a], b = boxes[link.b];
    if (!a || !b) continue;
    const p = clip(centre(a), centre(b), a), q = clip(centre(b), centre(a), b);
    const g = svg("g", { class: "link", "data-link": link.name });
    g.append(svg("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y }));
    g.append(svg("text", { x: (p.x + q.x) / 2 + 10, y: (p.y + q.y) / 2 + 6 }));
    g.addEventListener("click", () => selectLink(link.name));
    linksLayer.append(g);
  }
  for (const [name, p] of Object.entries(view.pos)) {
    const g = svg("g", { class: "node", "data-node": name });
    g.append(svg("rect", { x: p.x, y: p.y, width: p.w, height: p.h, rx: 8 }));
    g.append(svg("text", { class: "name", x: p.x + p.w / 2, y: p.y + 30, "text-anchor": "middle" }, name));
    g.append(svg("text", { class: "word", x: p.x + p.w / 2, y: p.y + 62, "text-anchor": "middle" }, ""));
    g.append(svg("title", {}, `${name}: ${p.node.role} ${p.node.host}`));
    sitesLayer.append(g);
  }
  const legend = $("legend");
  legend.replaceChildren(
    el("span", { class: "s-online word" }, "green: up / active / in the cloud"),
    el("span", { class: "s-appliance word" }, "orange: demoted / at the SBA / impaired"),
    el("span", { class: "s-offline word" }, "red: down / inactive / nowhere"),
    el("span", { class: "s-blackhole word" }, "black: blackhole"));
}

// --- the state: picture and panels ----------------------------------------------------------------
function setWord(g, word, cls) {
  const text = g.querySelector(".word");
  text.textContent = word;
  text.setAttribute("class", `word f-${cls}`);
  g.querySelector("rect").setAttribute("class", `f-${cls}`);
  g.querySelector("rect").style.stroke = "";
}

function renderState() {
  const st = view.state, topo = view.topology;
  if (!st || !topo) return;
  const running = Object.fromEntries(st.nodes.map((n) => [n.name, n.state]));
  const health = Object.fromEntries(st.gateways.map((g) => [g.fqdn.toLowerCase(), g.health]));
  const clients = Object.fromEntries(st.clients.map((c) => [c.user, c]));
  const linkState = Object.fromEntries(st.links.map((l) => [l.name, l.state]));
  for (const n of topo.nodes) {
    const g = document.querySelector(`#topology g.node[data-node="${n.name}"]`);
    if (!g) continue;
    let word = running[n.name] || "unknown", cls = word;
    if (running[n.name] === "running") {
      if (n.role === "teams_client" && clients[n.user]) ({ word, cls } = clientWhere(clients[n.user]));
      else if (n.role === "sbc" && health[n.host.toLowerCase()]) word = cls = health[n.host.toLowerCase()];
      else if (n.role === "sba") word = view.sbaSync[n.name] || "running";
    }
    if (n.role === "sba" && (word === "synced" || word === "last sync failed")) cls = word === "synced" ? "running" : "demoted";
    setWord(g, word, cls);
  }
  for (const link of topo.links) {
    link.state = linkState[link.name] || link.state;
    const word = linkWord(link);
    const g = document.querySelector(`#topology g.link[data-link="${link.name}"]`);
    if (!g) continue;
    g.querySelector("line").setAttribute("class", `f-${word}`);
    const text = g.querySelector("text");
    text.textContent = `${link.name} ${word.toUpperCase()}`;
    text.setAttribute("class", `f-${word}`);
    text.style.stroke = "#fff";
  }
  renderGateways(st.gateways);
  renderLinks(topo.links);
  renderCalls(st.calls);
  const clock = st.time;
  $("clock").textContent = formatTime(clock.virtual_s);
  const cs = $("clock-state");
  if (view.stopped) { cs.textContent = "stopped"; cs.className = "stopped"; }
  else if (clock.paused) { cs.textContent = "PAUSED"; cs.className = "paused"; }
  else { cs.textContent = view.skipping ? `skipping at ${clock.pace}×` : `running ${clock.pace}×`; cs.className = ""; }
  $("pause").disabled = clock.paused || view.stopped;
  $("resume").disabled = !clock.paused || view.stopped;
  $("step").disabled = !clock.paused || view.stopped;
  const pace = $("pace");
  if (document.activeElement !== pace && !view.skipping) {
    if (![...pace.options].some((o) => Number(o.value) === clock.pace)) pace.append(el("option", {}, String(clock.pace)));
    pace.value = String([...pace.options].find((o) => Number(o.value) === clock.pace).value);
  }
}

// Tables and call paths are redrawn only when what they show changed: a person's click must not
// land on an element that the next poll has just replaced.
const drawn = {};
function changed(what, value) {
  const signature = JSON.stringify(value);
  if (drawn[what] === signature) return false;
  drawn[what] = signature;
  return true;
}

function renderGateways(gateways) {
  if (!changed("gateways", gateways)) return;
  const table = $("gateways");
  table.replaceChildren();
  for (const gw of gateways) {
    const tr = el("tr", { "data-gateway": gw.fqdn });
    tr.append(el("td", {}, nodeName(gw.fqdn)), el("td", { class: "mono" }, gw.fqdn),
              el("td", { class: `health word s-${gw.health}` }, gw.health));
    table.append(tr);
  }
}

function actionButton(label, attrs, onclick) {
  const b = el("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", onclick);
  return b;
}

function renderLinks(links) {
  const table = $("links");
  if (table.rows.length !== links.length) {
    table.replaceChildren();
    for (const link of links) {
      const tr = el("tr", { "data-link": link.name });
      const actions = el("td");
      for (const [label, action] of [["cut", "down"], ["blackhole", "blackhole"], ["restore", "up"]]) {
        actions.append(actionButton(label, { "data-link": link.name, "data-action": label },
          () => api("POST", `/api/links/${link.name}`, { state: action })
            .then((a) => { link.state = a.state; refreshTopology(); })));
      }
      actions.append(actionButton("impair", { "data-link": link.name, "data-action": "impair" }, () => impair(link.name)));
      tr.append(el("td", { class: "name" }, link.name), el("td", { class: "state word" }), actions);
      table.append(tr);
    }
  }
  for (const link of links) {
    const cell = table.querySelector(`tr[data-link="${link.name}"] .state`);
    const word = linkWord(link);
    cell.textContent = word;
    cell.className = `state word s-${word}`;
  }
}

function impair(name) {
  const body = {};
  for (const key of ["latency", "jitter", "loss"]) {
    const value = $(`impair-${key}`).value.trim();
    if (value) body[key] = value;
  }
  api("POST", `/api/links/${name}`, body).then(refreshTopology);
}

function selectLink(name) {
  const row = document.querySelector(`#links tr[data-link="${name}"]`);
  document.querySelectorAll("#links tr.selected").forEach((r) => r.classList.remove("selected"));
  if (row) { row.classList.add("selected"); row.scrollIntoView({ block: "nearest" }); }
}

function renderCalls(calls) {
  if (!changed("calls", [calls, view.selectedCall])) return;
  const table = $("calls");
  table.replaceChildren();
  const layer = $("calls-layer");
  layer.replaceChildren();
  calls.forEach((call, i) => {
    const tr = el("tr", { "data-call": call.id, class: call.id === view.selectedCall ? "selected" : "" });
    const live = call.state !== "ended" && call.state !== "failed";
    tr.append(el("td", {}, call.id), el("td", {}, `${call.from} → ${call.to}`),
              el("td", { class: `word s-${call.state}` }, call.state));
    const actions = el("td");
    actions.append(actionButton("ladder", { "data-call": call.id }, () => selectCall(call.id)));
    if (live) actions.append(actionButton("hang up", { "data-call": call.id, "data-action": "hangup" },
      () => api("DELETE", `/api/calls/${call.id}`)));
    tr.append(actions);
    table.append(tr);
    if (!live || !call.path || call.path.length < 2) return;
    const offset = (i % 4) * 7 - 10;
    const points = call.path.filter((n) => view.pos[n])
      .map((n) => { const p = view.pos[n]; return `${p.x + p.w / 2 + offset},${p.y + p.h / 2 + offset}`; });
    const g = svg("g", { class: `call${call.id === view.selectedCall ? " selected" : ""}`, "data-call": call.id });
    g.append(svg("polyline", { points: points.join(" "), class: `f-${call.state}`, style: "fill:none" }));
    const [x, y] = points[Math.floor(points.length / 2)].split(",");
    g.append(svg("text", { x: Number(x) + 8, y: Number(y) - 8, class: `f-${call.state}` }, `${call.id} ${call.state}`));
    g.append(svg("title", {}, `${call.id}: ${call.from} → ${call.to} via ${call.path.join(" → ")} (click for its ladder)`));
    g.addEventListener("click", () => selectCall(call.id));
    layer.append(g);
  });
}

function renderActions() {
  const table = $("nodes-actions");
  table.replaceChildren();
  for (const n of view.topology.nodes) {
    if (n.role === "teams_client") {
      const tr = el("tr");
      const td = el("td");
      td.append(actionButton("restart", { "data-user": n.user },
        () => api("POST", `/api/clients/${encodeURIComponent(n.user)}/restart`)));
      tr.append(el("td", {}, n.name), el("td", {}, n.user), td);
      table.append(tr);
    } else if (n.role === "sba") {
      const tr = el("tr");
      const td = el("td");
      td.append(actionButton("sync now", { "data-sba": n.name }, () => api("POST", `/api/sba/${n.name}/sync`)));
      tr.append(el("td", {}, n.name), el("td", {}, "Survivable Branch Appliance"), td);
      table.append(tr);
    }
  }
  const from = $("call-from"), targets = $("call-targets");
  from.replaceChildren();
  targets.replaceChildren();
  const nodes = view.topology.nodes;
  for (const n of nodes.filter((x) => x.role === "teams_client")) {
    from.append(el("option", { value: n.user }, n.user));
    targets.append(el("option", { value: n.user }));
  }
  for (const n of nodes.filter((x) => x.role === "pstn")) {
    from.append(el("option", { value: `pstn:${n.name}` }, `a phone on ${n.name}`));
  }
}

// --- the event stream -----------------------------------------------------------------------------
function describe(r) {
  // one record -> {kind, key, text} for the timeline, or null (the same choice as the terminal's)
  const ev = r.event, node = r.node || r.host || "";
  if (ev.startsWith("link.")) {
    const extra = ev === "link.impaired" ? ` latency ${r.latency * 1000} ms, loss ${(r.loss * 100).toFixed(1)} %` : "";
    return { kind: "link", text: `link ${r.link} ${ev.slice(5)}${extra}` };
  }
  if (ev === "client.state") {
    const where = r.state === "online" ? "signed in to the cloud" : r.state === "appliance" ? "registered at the SBA" : "offline";
    return { kind: "client", text: `${r.user} ${where}${r.registrar ? ` (${nodeName(r.registrar)})` : ""}` };
  }
  if (ev === "route.attempt" && r.outcome === "failover") {
    return { kind: "gateway", text: `${node}: gateway ${nodeName(r.gateway)}: ${r.detail || r.status}; trying the next gateway` };
  }
  if (ev === "gateway.health") return { kind: "gateway", text: `${node} sees gateway ${nodeName(r.gateway)} ${r.state}` };
  if (ev === "sba.sync") {
    return { kind: "sba", routine: true, text: `${node}: SBA sync ${r.ok === false ? "failed" : "ok"}` };
  }
  if (ev === "client.register_failed") return { kind: "client", routine: true, text: `${r.user}: REGISTER to ${nodeName(r.registrar)} failed` };
  if (ev === "gateway.options_failed") return { kind: "gateway", routine: true, text: `${node}: OPTIONS to ${nodeName(r.gateway)} failed` };
  if (ev.startsWith("tls.") && ev !== "tls.established") return { kind: "tls", routine: true, text: `${node}: TLS refused (${ev.slice(4)})` };
  if (ev === "call.started" || ev === "call.answered" || ev === "call.ended" || ev === "call.failed") {
    if (!isEndpoint(node)) return null;  // each B2BUA logs its legs too: the ends tell the story
    const status = r.status ? ` (${r.status})` : "";
    return { kind: "call", text: `${node}: call ${r.caller || "?"} → ${r.callee || "?"} ${ev.slice(5)}${status}` };
  }
  if (ev === "control.command") {
    if (r.command === "link") {
      const verb = { down: "cut", up: "restore", blackhole: "blackhole" }[r.state] || r.state;
      return { kind: "control", text: `trainer: ${verb} ${r.link}` };
    }
    const what = Object.entries(r).filter(([k]) => !["t", "event", "command", "node"].includes(k))
      .map(([k, v]) => `${k} ${v}`).join(", ");
    return { kind: "control", text: `trainer: ${r.command} (${what})` };
  }
  if (ev === "control.failed") return { kind: "fail", text: `${r.command} failed: ${r.error}` };
  if (ev === "step.passed" || ev === "step.failed") {
    return { kind: ev === "step.failed" ? "fail" : "step", text: `${ev === "step.failed" ? "✘" : "✔"} ${r.step}${r.detail ? ` — ${r.detail}` : ""}` };
  }
  if (ev === "scenario.note") return { kind: "step", text: String(r.text || "") };
  if (ev === "lab.settled") return { kind: "step", text: "the lab is up and settled" };
  if (ev === "lab.stopped") return { kind: "step", text: "the lab stopped" };
  return null;
}

function isEndpoint(node) {
  const n = view.topology && view.topology.nodes.find((x) => x.name === node);
  return n && (n.role === "teams_client" || n.role === "pstn");
}

function addLine(r, line) {
  // a routine line folds into the same line seen since the last line that was not routine
  const key = `${line.kind}|${line.text}`;
  const earlier = line.routine && view.routineLines.get(key);
  if (earlier) {
    earlier.count += 1;
    const count = earlier.li.querySelector(".count");
    count.textContent = `×${earlier.count}`;
    count.hidden = false;
    earlier.li.querySelector(".t").textContent = `${formatTime(earlier.t0)}–${formatTime(r.t)}`;
    return;
  }
  const li = el("li", { class: `k-${line.kind}` });
  const count = el("span", { class: "count" });
  count.hidden = true;
  li.append(el("span", { class: "t" }, formatTime(r.t)), el("span", { class: "text" }, line.text), count);
  const list = $("timeline");
  list.prepend(li);
  while (list.children.length > MAX_TIMELINE_LINES) list.lastChild.remove();
  if (line.routine) view.routineLines.set(key, { li, count: 1, t0: r.t });
  else view.routineLines.clear();
}

function onRecord(r) {
  view.lastRecordT = r.t;
  if ((r.event === "sip.sent" || r.event === "sip.received") && r.call_id) {
    const method = String(r.cseq || "").split(" ").pop();
    if (!LADDER_SKIP.test(method)) {
      if (!view.sip.has(r.call_id)) {
        if (view.sip.size >= MAX_SIP_CALL_IDS) view.sip.delete(view.sip.keys().next().value);
        view.sip.set(r.call_id, []);
      }
      view.sip.get(r.call_id).push(r);
      if (view.legs.includes(r.call_id)) scheduleLadder();
    }
    return;
  }
  if (r.event === "sba.sync") view.sbaSync[r.node] = r.ok === false ? "last sync failed" : "synced";
  if (r.event.startsWith("link.") && view.topology) {
    const link = view.topology.links.find((l) => l.name === r.link);
    if (link) {
      if (r.event === "link.impaired") refreshTopology(); else link.state = r.event.slice(5);
    }
  }
  if (r.event.startsWith("step.")) renderStep(r);
  const line = describe(r);
  if (!line) return;
  addLine(r, line);
  if (view.skipping && !line.routine && r.event !== "control.command") endSkip();
  if (["client.state", "gateway.health", "link.down", "link.up", "link.blackhole"].includes(r.event)
      || r.event.startsWith("call.")) scheduleState();
}

function renderStep(r) {
  $("steps-pane").hidden = false;
  const key = `${r.step}|${r.position || ""}`;
  let tr = view.steps.get(key);
  if (!tr) {
    tr = el("tr");
    tr.append(el("td", { class: "verdict" }), el("td", { class: "t" }), el("td", {}, r.step), el("td", { class: "detail" }));
    view.steps.set(key, tr);
    $("steps").append(tr);
  }
  const verdict = r.event === "step.started" ? "running" : r.event === "step.passed" ? "passed" : "failed";
  tr.className = `step-${verdict}`;
  tr.querySelector(".verdict").textContent = verdict;
  tr.querySelector(".t").textContent = formatTime(r.t);
  tr.querySelector(".detail").textContent = r.detail || "";
}

let stateTimer = null;
function scheduleState() {
  if (!stateTimer) stateTimer = setTimeout(() => { stateTimer = null; pollState(); }, 100);
}

async function pollState() {
  try {
    view.state = await (await fetch("/api/state")).json();
    renderState();
  } catch (err) {
    if (!view.stopped) say("the lab does not answer");
  }
}

async function refreshTopology() {
  try {
    const topo = await (await fetch("/api/topology")).json();
    for (const link of topo.links) {
      const mine = view.topology.links.find((l) => l.name === link.name);
      if (mine) Object.assign(mine, link);
    }
    renderState();
  } catch (err) { /* the next poll tells */ }
}

function follow() {
  const source = new EventSource("/api/events?since=0");
  source.onmessage = (m) => onRecord(JSON.parse(m.data));
  source.addEventListener("dropped", (m) => say(`the view fell behind: ${JSON.parse(m.data).dropped} events not shown`));
  source.addEventListener("stopped", () => {
    view.stopped = true;
    source.close();
    say("the lab has stopped");
    renderState();
  });
}

// --- the clock ------------------------------------------------------------------------------------
function startSkip() {
  const time = view.state.time;
  view.skipping = { pace: time.pace, paused: time.paused };
  api("POST", "/api/time", { pace: SKIP_PACE, paused: false }).then(pollState);
}

function endSkip() {
  const before = view.skipping;
  view.skipping = null;
  api("POST", "/api/time", { pace: before.pace, paused: before.paused }).then(pollState);
}

// --- the ladder -----------------------------------------------------------------------------------
async function selectCall(id) {
  view.selectedCall = id;
  delete drawn.ladder;
  view.legs = [];
  $("ladder-pane").hidden = false;
  await loadLegs();
  renderState();
}

async function loadLegs() {
  if (!view.selectedCall) return;
  const id = view.selectedCall;
  try {
    const answer = await api("GET", `/api/calls/${id}/legs`);
    if (view.selectedCall === id) { view.legs = answer.call_ids; drawLadder(); }
  } catch (err) { /* shown in the status line */ }
}

let ladderTimer = null;
function scheduleLadder() {
  if (!ladderTimer) ladderTimer = setTimeout(() => { ladderTimer = null; drawLadder(); }, 200);
}

function drawLadder() {
  const call = view.state && view.state.calls.find((c) => c.id === view.selectedCall);
  $("ladder-title").textContent = call ? `SIP ladder of ${call.id}: ${call.from} → ${call.to} (${call.state})`
                                       : `SIP ladder of ${view.selectedCall}`;
  const msgs = view.legs.flatMap((cid) => view.sip.get(cid) || []).sort((a, b) => a.t - b.t);
  const received = new Map();
  for (const r of msgs) {
    if (r.event === "sip.received") { const k = r.message; received.set(k, (received.get(k) || 0) + 1); }
  }
  const arrows = [];
  for (const r of msgs) {
    if (r.event !== "sip.sent") continue;
    const to = view.addressNode[String(r.dst).replace(/:\d+$/, "")] || r.dst;
    const n = received.get(r.message) || 0;
    const lost = n === 0 && view.lastRecordT - r.t > 2;
    if (n) received.set(r.message, n - 1);
    arrows.push({ t: r.t, from: r.node, to, r, lost });
  }
  if (!changed("ladder", [view.selectedCall, arrows.map((a) => [a.t, a.from, a.to, a.lost])])) return;
  const columns = [];
  for (const a of arrows) for (const n of [a.from, a.to]) if (!columns.includes(n)) columns.push(n);
  const colW = 170, left = 90, top = 40, rowH = 26;
  const width = left + colW * Math.max(columns.length, 1), height = top + rowH * (arrows.length + 1);
  const x = Object.fromEntries(columns.map((n, i) => [n, left + colW * i + colW / 2]));
  const root = svg("svg", { width, height, role: "img" });
  root.append(svg("defs", {}));
  root.firstChild.innerHTML = '<marker id="ah" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
    + '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker>';
  for (const n of columns) {
    root.append(svg("text", { x: x[n], y: 16, "text-anchor": "middle", "font-weight": "bold" }, n));
    root.append(svg("line", { x1: x[n], y1: 24, x2: x[n], y2: height - 8, stroke: "#999", "stroke-dasharray": "4 3" }));
  }
  arrows.forEach((a, i) => {
    const y = top + rowH * i + 12;
    const summary = String(a.r.summary || "");
    const isResponse = /^\d/.test(summary);
    const colour = a.lost ? "#c1121f" : isResponse ? "#0b4f9c" : "#222";
    const x1 = x[a.from], x2 = a.lost ? x[a.from] + (x[a.to] - x[a.from]) * 0.8 : x[a.to];
    const g = svg("g", { class: "m" });
    g.append(svg("title", {}, `${formatTime(a.t)} ${summary} [${a.r.transport}] ${a.r.src} → ${a.r.dst}`));
    g.append(svg("text", { x: 4, y: y + 4, fill: "#666" }, formatTime(a.t)));
    g.append(svg("line", { x1, y1: y, x2, y2: y, stroke: colour, "stroke-width": 2, ...(a.lost ? {} : { "marker-end": "url(#ah)" }) }));
    const label = (isResponse ? summary : summary.split(" ")[0]) + (a.lost ? " (lost)" : "");
    g.append(svg("text", { x: (x1 + x2) / 2, y: y - 4, "text-anchor": "middle", fill: colour }, label));
    g.addEventListener("click", () => { const m = $("message"); m.textContent = a.r.message; m.hidden = false; });
    root.append(g);
  });
  $("ladder").replaceChildren(root);
}

// --- controls -------------------------------------------------------------------------------------
function wireControls() {
  $("pause").addEventListener("click", () => api("POST", "/api/time", { paused: true }).then(pollState));
  $("resume").addEventListener("click", () => api("POST", "/api/time", { paused: false }).then(pollState));
  $("step").addEventListener("click", () => api("POST", "/api/time", { step: true }).then(pollState));
  $("skip").addEventListener("click", startSkip);
  $("pace").addEventListener("change", (e) => api("POST", "/api/time", { pace: Number(e.target.value) }).then(pollState));
  $("ladder-close").addEventListener("click", () => {
    view.selectedCall = null; view.legs = []; $("ladder-pane").hidden = true; $("message").hidden = true; renderState();
  });
  $("call-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const from = $("call-from").value, to = $("call-to").value.trim();
    if (!to) { say("whom to call? a number or a user"); return; }
    const body = from.startsWith("pstn:") ? { pstn: from.slice(5), from: "4255550199", to } : { from, to };
    api("POST", "/api/calls", body).then((call) => { selectCall(call.id); pollState(); });
  });
}

async function start() {
  wireControls();
  const [topo, addresses] = await Promise.all([api("GET", "/api/topology"), api("GET", "/api/addresses")]);
  view.topology = topo;
  $("lab-name").textContent = `drlab · ${topo.lab}`;
  $("lab-description").textContent = topo.description || "";
  document.title = `drlab live · ${topo.lab}`;
  for (const a of addresses) { view.addressNode[a.address] = a.node; view.hostNode[a.host.toLowerCase()] = a.node; }
  drawTopology();
  renderActions();
  await pollState();
  follow();
  setInterval(() => { if (!view.stopped) pollState(); }, STATE_POLL_MS);
  setInterval(() => { if (view.selectedCall && !view.stopped) loadLegs(); }, LEGS_POLL_MS);
}

start().catch((err) => say(`cannot load the lab: ${err.message}`));
