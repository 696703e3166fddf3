// usermgmt observer: logs in with the sessions API, polls /api/dashboard
// about once a second, and draws every worker's supervision tree, pool,
// caches, listener, events and per-route traffic. No library, no network
// access but this origin; every value goes into the page as text.
"use strict";

(function () {
  const TOKEN_KEY = "usermgmt.dashboard.token";
  const POLL_MS = 1000;
  const SVG = "http://www.w3.org/2000/svg";

  const state = { token: null, paused: false, timer: null, inFlight: false, data: null };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  // -- formatting -----------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
    return Math.floor(seconds / 86400) + " d " + Math.floor((seconds % 86400) / 3600) + " h";
  }

  function ago(at, now) {
    return at === null || at === undefined ? "never" : duration(now - at) + " ago";
  }

  function mib(bytes) { return (bytes / 1048576).toFixed(1) + " MiB"; }

  function number(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toFixed(digits === undefined ? 0 : digits);
  }

  function ratio(value) { return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + " %"; }

  function clock(at) {
    const d = new Date(at * 1000);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }

  function yesNo(value, yes, no) {
    return el("span", { class: value ? "yes" : "no", text: value ? yes : no });
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = "status" + (kind ? " " + kind : "");
  }

  // -- HTTP -------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (state.token) headers["Authorization"] = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit",
    });
    let payload = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("json")) {
      try { payload = await response.json(); } catch (e) { payload = null; }
    }
    return { status: response.status, body: payload };
  }

  // -- screens ----------------------------------------------------------------

  function show(screen) {
    for (const id of ["login", "forbidden", "board"]) $(id).hidden = id !== screen;
    $("session").hidden = screen === "login";
  }

  function showLogin(message) {
    stopPolling();
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    show("login");
    $("login-error").textContent = message || "";
    setStatus("not logged in");
    $("email").focus();
  }

  async function login(event) {
    event.preventDefault();
    const button = $("login-button");
    button.disabled = true;
    $("login-error").textContent = "";
    try {
      const answer = await api("POST", "/api/sessions", { email: $("email").value, password: $("password").value });
      if (answer.status === 201 && answer.body && answer.body.token) {
        state.token = answer.body.token;
        sessionStorage.setItem(TOKEN_KEY, state.token);
        $("password").value = "";
        await enter();
      } else if (answer.status === 429) {
        $("login-error").textContent = "Too many failed attempts: wait a minute and try again.";
      } else if (answer.status === 401 || answer.status === 422) {
        $("login-error").textContent = "Wrong email or password.";
      } else {
        $("login-error").textContent = "Could not log in (HTTP " + answer.status + ").";
      }
    } catch (e) {
      $("login-error").textContent = "The server cannot be reached.";
    } finally {
      button.disabled = false;
    }
  }

  // Who holds the token decides the screen: members never ask for the data.
  async function enter() {
    let answer;
    try {
      answer = await api("GET", "/api/sessions/current");
    } catch (e) {
      setStatus("the server cannot be reached; retrying", "trouble");
      state.timer = setTimeout(enter, POLL_MS);
      return;
    }
    if (answer.status !== 200 || !answer.body) {
      showLogin(answer.status === 401 ? "Your session ended: log in again." : "");
      return;
    }
    $("who").textContent = "user " + answer.body.user_id + " (" + answer.body.role + ")";
    if (answer.body.role !== "admin") {
      show("forbidden");
      setStatus("admins only");
      return;
    }
    show("board");
    setStatus("connecting…");
    poll();
  }

  async function logout() {
    stopPolling();
    try { if (state.token) await api("DELETE", "/api/sessions/current"); } catch (e) { /* gone anyway */ }
    showLogin("Logged out.");
  }

  function stopPolling() {
    if (state.timer !== null) clearTimeout(state.timer);
    state.timer = null;
  }

  function schedule(ms) {
    stopPolling();
    if (!state.paused && state.token) state.timer = setTimeout(poll, ms);
  }

  async function poll() {
    if (state.inFlight || state.paused || !state.token) return;
    state.inFlight = true;
    try {
      const answer = await api("GET", "/api/dashboard");
      if (answer.status === 200 && answer.body) {
        state.data = answer.body;
        render(answer.body);
        setStatus("live · " + answer.body.workers.length + " worker" +
                  (answer.body.workers.length === 1 ? "" : "s") + " · updated " +
                  clock(answer.body.generated_at), "live");
      } else if (answer.status === 401) {
        showLogin("Your session ended: log in again.");
        return;
      } else if (answer.status === 403) {
        show("forbidden");
        return;
      } else {
        setStatus("the server answered " + answer.status + "; retrying", "trouble");
      }
    } catch (e) {
      setStatus("the server cannot be reached; retrying", "trouble");
    } finally {
      state.inFlight = false;
    }
    schedule(POLL_MS);
  }

  function togglePause() {
    state.paused = !state.paused;
    $("pause").textContent = state.paused ? "Resume" : "Pause";
    if (state.paused) {
      stopPolling();
      setStatus("paused");
    } else {
      poll();
    }
  }

  async function kill(pid, supervisor, child, button) {
    button.disabled = true;
    try {
      const answer = await api("POST", "/api/dashboard/kill", { pid, supervisor, child });
      if (answer.status === 200) {
        setStatus("killed " + child + " in worker " + pid + "; watch its supervisor restart it", "live");
      } else {
        const detail = answer.body && answer.body.detail ? answer.body.detail : "HTTP " + answer.status;
        setStatus("not killed: " + detail, "trouble");
      }
    } catch (e) {
      setStatus("the server cannot be reached", "trouble");
    }
    // Show the restart at once rather than at the next tick.
    setTimeout(() => { if (!state.inFlight) poll(); }, 150);
  }

  // -- rendering ----------------------------------------------------------------

  function render(data) {
    const now = data.generated_at;
    $("answered-by").textContent = "answered by " + data.answered_by;
    renderWorkersTable(data, now);
    const workers = $("workers");
    workers.replaceChildren(...data.workers.map((w) => renderWorker(w, data, now)));
    renderCharts(data.traffic);
    renderEvents(data.events);
  }

  function countRestarts(node) {
    let total = node.restarts || 0;
    for (const child of node.children || []) total += countRestarts(child);
    return total;
  }

  function renderWorkersTable(data, now) {
    const rows = data.workers.map((w) => {
      const p = w.pool;
      return el("tr", { "data-pid": w.pid },
        el("td", {}, el("a", { href: "#worker-" + w.pid, text: w.pid })),
        el("td", { text: duration(now - w.started_at) }),
        el("td", { text: mib(w.process.rss_bytes) }),
        el("td", { text: w.process.cpu_percent === null ? "–" : number(w.process.cpu_percent, 1) + " %" }),
        el("td", { text: number(w.requests_per_second, 1) }),
        el("td", { text: w.process.threads }),
        el("td", { text: p.idle + " / " + p.busy + " / " + p.waiting + " of " + p.members }),
        el("td", { text: w.tree ? countRestarts(w.tree) : "–" }));
    });
    $("workers-table").tBodies[0].replaceChildren(...rows);
  }

  function renderWorker(worker, data, now) {
    const title = el("h2", {},
      "worker ", el("span", { class: "pid", text: worker.pid }),
      el("small", { text: "up " + duration(now - worker.started_at) + " · " + mib(worker.process.rss_bytes) +
        " · " + number(worker.requests_per_second, 1) + " req/s" +
        (worker.pid === data.answered_by ? " · answered this poll" : "") +
        (worker.tree_stale ? " · tree not answering, last known shown" : "") }));
    const tree = worker.tree
      ? el("ul", { class: "tree" }, renderNode(worker.tree, worker.pid, data.chaos, now))
      : el("p", { class: "muted", text: "no supervision tree running" });
    return el("section", { class: "panel worker", id: "worker-" + worker.pid, "data-pid": worker.pid },
      title, tree,
      el("div", { class: "facts" }, renderPool(worker.pool), ...worker.caches.map(renderCache),
        renderListener(worker.listener, now)));
  }

  function renderNode(node, pid, chaos, now) {
    const isSupervisor = node.type === "supervisor";
    const meta = [];
    if (isSupervisor && node.strategy) {
      meta.push(node.strategy + ", " + node.recent_restarts + " of " + node.intensity +
                " restarts in " + node.period + " s");
    }
    if (node.restart) meta.push(node.restart);
    meta.push("mailbox " + node.mailbox);
    const exit = node.last_exit
      ? el("div", { class: "exit", title: node.last_exit.error || "",
                    text: "last exit: " + node.last_exit.reason + ", " + ago(node.last_exit.at, now) +
                          (node.last_exit.error ? " · " + node.last_exit.error : "") })
      : null;
    let button = null;
    if (chaos && node.supervisor) {
      button = el("button", { type: "button", class: "kill", "data-kill": node.id,
                              title: "crash " + node.id + " in worker " + pid, text: "kill" });
      button.addEventListener("click", () => kill(pid, node.supervisor, node.id, button));
    }
    const row = el("div", {
      class: "node", "data-node": node.id, "data-supervisor": node.supervisor || "",
      "data-state": node.state, "data-restarts": node.restarts,
    },
      el("span", { class: "badge " + node.state, text: node.state.replace("_", " ") }),
      el("span", { class: "id", text: node.id }),
      el("span", { class: "actor", text: node.actor }),
      el("span", { class: "count" + (node.restarts > 0 ? " hot" : ""), title: "restarts in this worker",
                   text: "↻ " + node.restarts }),
      el("span", { class: "meta", text: meta.join(" · ") }),
      button);
    const item = el("li", {}, row, exit);
    if (node.children && node.children.length) {
      item.append(el("ul", {}, ...node.children.map((c) => renderNode(c, pid, chaos, now))));
    }
    return item;
  }

  function facts(title, pairs) {
    const list = el("dl");
    for (const [term, value] of pairs) list.append(el("dt", { text: term }), el("dd", {}, value));
    return el("div", {}, el("h3", { text: title }), list);
  }

  function renderPool(pool) {
    const wait = pool.wait_p50_ms === null ? "no checkouts in the last minute"
      : number(pool.wait_p50_ms, 2) + " / " + number(pool.wait_p99_ms, 2) + " ms (" + pool.waits_last_minute + " checkouts)";
    return facts("DbWorker pool", [
      ["idle / busy / waiting", pool.idle + " / " + pool.busy + " / " + pool.waiting],
      ["members", String(pool.members)],
      ["checkout wait p50 / p99", wait],
      ["checkouts", String(pool.checkouts)],
      ["timeouts / shed", pool.timeouts + " / " + pool.shed],
      ["shedding now", yesNo(!pool.shedding, "no", "yes")],
    ]);
  }

  function renderCache(cache) {
    const e = cache.evictions;
    return facts(cache.name + " cache", [
      ["entries", String(cache.entries)],
      ["hit ratio", ratio(cache.hit_ratio) + " (" + cache.hits + " of " + (cache.hits + cache.misses + cache.bypasses) + ")"],
      ["evictions", "capacity " + e.capacity + " · expired " + e.expired + " · invalidated " + e.invalidated + " · flush " + e.flush],
      ["serving", yesNo(cache.usable, "yes", "no (bypassed)")],
      ["coherent", yesNo(cache.coherent, "yes", "no")],
    ]);
  }

  function renderListener(listener, now) {
    if (!listener) return el("div", {}, el("h3", { text: "change listener" }), el("p", { class: "muted", text: "cache off: no listener" }));
    return facts("change listener", [
      ["connected", yesNo(listener.connected, "yes", listener.running ? "no (retrying)" : "not running")],
      ["since", listener.connected_at ? ago(listener.connected_at, now) : "–"],
      ["last notification", ago(listener.last_notification_at, now)],
      ["notifications", listener.notifications === null ? "–" : String(listener.notifications)],
    ]);
  }

  function renderEvents(events) {
    const rows = events.map((e) => el("tr", {},
      el("td", { text: clock(e.at) }),
      el("td", { text: e.pid }),
      el("td", { class: "ev-" + e.kind, text: e.kind.replace("_", " ") }),
      el("td", { text: e.supervisor }),
      el("td", { text: e.child || "" }),
      el("td", { text: (e.reason || "") + (e.error ? ": " + e.error : "") })));
    $("events").tBodies[0].replaceChildren(...rows);
  }

  // -- charts: drawn by hand in SVG ---------------------------------------------

  const WIDTH = 300, HEIGHT = 64, PAD = 2;
  const COLORS = { rate: "#2563eb", p50: "#0d9488", p99: "#c026d3" };

  function position(value, i, max, points) {
    const x = PAD + (WIDTH - 2 * PAD) * (points === 1 ? 0 : i / (points - 1));
    const y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (max > 0 ? Math.min(1, value / max) : 0);
    return [x, y];
  }

  function path(values, max, points) {
    let d = "";
    let pen = false;
    values.forEach((value, i) => {
      if (value === null || value === undefined) { pen = false; return; }
      const [x, y] = position(value, i, max, points);
      d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      pen = true;
    });
    return d;
  }

  function chart(series, max, colors, label) {
    const graphic = svg("svg", { viewBox: "0 0 " + WIDTH + " " + HEIGHT, preserveAspectRatio: "none",
                                 role: "img", "aria-label": label });
    for (let i = 1; i < 4; i++) {
      const y = (HEIGHT * i / 4).toFixed(1);
      graphic.append(svg("line", { x1: 0, x2: WIDTH, y1: y, y2: y, stroke: "#eceff3", "stroke-width": 1 }));
    }
    series.forEach((values, i) => {
      graphic.append(svg("path", { d: path(values, max, values.length), fill: "none", stroke: colors[i],
                                   "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
      // A point with no neighbour draws no line: mark every point.
      values.forEach((value, j) => {
        if (value === null || value === undefined || (value === 0 && i === 0)) return;
        const [x, y] = position(value, j, max, values.length);
        graphic.append(svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 1.6, fill: colors[i] }));
      });
    });
    return graphic;
  }

  function maxOf(values) {
    return values.reduce((m, v) => (v !== null && v !== undefined && v > m ? v : m), 0);
  }

  function renderCharts(traffic) {
    const charts = $("charts");
    if (!traffic) {
      charts.replaceChildren(el("p", { class: "muted", text: "metrics are off (USERMGMT_METRICS_ENABLED=0): no traffic to show" }));
      return;
    }
    if (!traffic.routes.length) {
      charts.replaceChildren(el("p", { class: "muted", text: "no requests in the last 5 minutes" }));
      return;
    }
    charts.replaceChildren(...traffic.routes.map((route) => {
      const rates = route.requests.map((n) => n / traffic.step);
      const last = route.requests.length - 1;
      const ratePeak = maxOf(rates);
      const latencyPeak = Math.max(maxOf(route.p99_ms), maxOf(route.p50_ms));
      const rateMax = Math.max(1, ratePeak);
      const latencyMax = Math.max(1, latencyPeak);
      return el("div", { class: "chart", "data-route": route.route },
        el("h3", { title: route.route, text: route.route }),
        el("div", { class: "legend" },
          el("span", { class: "rate", text: "req/s " + number(rates[last], 1) + " now" }),
          el("span", { text: "peak " + number(ratePeak, 1) })),
        chart([rates], rateMax, [COLORS.rate], "requests per second of " + route.route),
        el("div", { class: "legend" },
          el("span", { class: "p50", text: "p50 " + number(route.p50_ms[last], 1) + " ms" }),
          el("span", { class: "p99", text: "p99 " + number(route.p99_ms[last], 1) + " ms" }),
          el("span", { text: "peak " + number(latencyPeak, 1) + " ms" })),
        chart([route.p50_ms, route.p99_ms], latencyMax, [COLORS.p50, COLORS.p99],
              "latency of " + route.route));
    }));
  }

  // -- start --------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("pause").addEventListener("click", togglePause);
    state.token = sessionStorage.getItem(TOKEN_KEY);
    if (state.token) enter(); else showLogin("");
  });
})();
