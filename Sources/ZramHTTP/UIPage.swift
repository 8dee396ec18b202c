import MicroHTTP

/// `GET /ui`: the live dashboard, one self-contained page (no CDN, no build step).
extension ZramRouter {
    func routeUI(_ request: borrowing Request) -> Dispatch {
        guard request.method == .GET || request.isHead else {
            return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD]), route: "ui")
        }
        return .inline(
            Response(
                status: 200,
                headers: [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Cache-Control", "no-cache"),
                    ("Content-Security-Policy", "default-src 'self'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"),
                ],
                body: ResponseBody(text: UIPage.html)), route: "ui")
    }
}

/// The dashboard's HTML, CSS and JavaScript. It polls `/sys/block`, `/sys/block/zram<id>`,
/// the `classes` and `block_state` debug views, `/metrics` and `/jobs`; with an admin
/// token typed in, it starts (`?async=1`) and cancels jobs.
enum UIPage {
    static let html = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>zramd</title>
        <meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1c2330}
        header{background:#1c2330;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:center}
        header h1{font-size:18px;margin:0}header .muted{color:#aab}
        main{padding:14px 18px;display:grid;gap:14px;grid-template-columns:repeat(auto-fill,minmax(460px,1fr))}
        section{background:#fff;border:1px solid #dde;border-radius:6px;padding:12px 14px}
        h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
        td{padding:2px 6px;border-bottom:1px solid #eef}td.n{text-align:right;font-variant-numeric:tabular-nums}
        .bar{background:#e4e7ee;border-radius:4px;height:14px;position:relative;overflow:hidden}
        .bar>div{background:#3b7dd8;height:100%}.bar.over>div{background:#d8553b}
        .job{margin:6px 0}.job .bar>div{background:#3bab6e}.job.cancelled .bar>div{background:#999}.job.failed .bar>div{background:#d8553b}
        svg{width:100%;height:90px;background:#fafbfd;border:1px solid #eef}
        button{font:inherit;padding:2px 8px}input{font:inherit}.err{color:#b02}
        </style></head>
        <body>
        <header><h1>zramd</h1><span class="muted" id="updated">loading…</span>
        <label>admin token <input id="token" type="password" size="18" autocomplete="off"></label></header>
        <main>
        <section id="server"><h2>Requests (last 5 minutes)</h2>
        <div>rate: <b id="req-rate">0</b> req/s · mean latency: <b id="req-latency">0</b> ms · total: <b id="req-total">0</b></div>
        <div>requests per second</div>
        <svg id="rate-chart" viewBox="0 0 300 90" preserveAspectRatio="none"><path id="rate-path" fill="none" stroke="#3b7dd8" stroke-width="1.5" d=""/></svg>
        <div>mean latency (ms)</div>
        <svg id="latency-chart" viewBox="0 0 300 90" preserveAspectRatio="none"><path id="latency-path" fill="none" stroke="#d8553b" stroke-width="1.5" d=""/></svg>
        </section>
        <section id="jobs"><h2>Jobs</h2><div id="job-list">none yet</div><p class="err" id="job-error"></p></section>
        </main>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        const main = document.querySelector("main");
        const history = [];   // {t, requests, seconds, count}
        const fmt = (n) => { const u = ["B","K","M","G","T"]; let i = 0; while (n >= 1024 && i < 4) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + u[i]; };
        const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
        $("token").value = sessionStorage.getItem("zramd-token") || "";
        $("token").addEventListener("change", () => sessionStorage.setItem("zramd-token", $("token").value));

        async function get(path, type) {
          const r = await fetch(path, {cache: "no-store"});
          if (!r.ok) throw new Error(path + ": HTTP " + r.status);
          return type === "text" ? r.text() : r.json();
        }

        function deviceCard(name) {
          let card = $("dev-" + name);
          if (card) return card;
          card = document.createElement("section");
          card.id = "dev-" + name;
          card.innerHTML = `<h2>/dev/${name}</h2>
        <table><tr><td>stored pages</td><td class="n" id="${name}-stored">0</td><td>ratio</td><td class="n" id="${name}-ratio">-</td></tr>
        <tr><td>data</td><td class="n" id="${name}-orig">0</td><td>compressed</td><td class="n" id="${name}-compr">0</td></tr>
        <tr><td>huge</td><td class="n" id="${name}-huge">0</td><td>same</td><td class="n" id="${name}-same">0</td></tr>
        <tr><td>idle</td><td class="n" id="${name}-idle">0</td><td>written back</td><td class="n" id="${name}-wb">0</td></tr></table>
        <div>memory <span id="${name}-mem">0</span> of <span id="${name}-limit">no limit</span></div>
        <div class="bar" id="${name}-membar"><div style="width:0%"></div></div>
        <div>size classes (objects per class size)</div>
        <svg id="${name}-classes" viewBox="0 0 300 90" preserveAspectRatio="none"></svg>
        <div>start a job: <select id="${name}-op"><option>writeback</option><option>recompress</option><option>compact</option><option>idle</option></select>
        <input id="${name}-body" size="14" value="idle"> <button id="${name}-start">start</button></div>`;
          main.appendChild(card);
          $(name + "-start").addEventListener("click", () => startJob(name));
          return card;
        }

        async function refreshDevice(name, slow) {
          deviceCard(name);
          const d = await get("/sys/block/" + name);
          const mm = d.mm_stat || {}, bd = d.bd_stat || {};
          const pageSize = 4096;
          const stored = Math.round((mm.orig_data_size || 0) / pageSize);
          $(name + "-stored").textContent = stored;
          $(name + "-orig").textContent = fmt(mm.orig_data_size || 0);
          $(name + "-compr").textContent = fmt(mm.compr_data_size || 0);
          $(name + "-ratio").textContent = mm.compr_data_size ? (mm.orig_data_size / mm.compr_data_size).toFixed(2) : "-";
          $(name + "-huge").textContent = mm.huge_pages || 0;
          $(name + "-same").textContent = mm.same_pages || 0;
          $(name + "-wb").textContent = bd.bd_count || 0;
          $(name + "-mem").textContent = fmt(mm.mem_used_total || 0);
          $(name + "-limit").textContent = mm.mem_limit ? fmt(mm.mem_limit) : "no limit";
          const pct = mm.mem_limit ? Math.min(100, 100 * mm.mem_used_total / mm.mem_limit) : 0;
          $(name + "-membar").firstChild.style.width = pct + "%";
          $(name + "-membar").classList.toggle("over", pct > 90);
          if (!slow || !d.disksize) return;
          const classes = await get(`/sys/kernel/debug/zsmalloc/${name}/classes`, "text");
          const rows = classes.split("\n").map((l) => l.trim().split(/\s+/)).filter((c) => /^\d+$/.test(c[0]));
          const max = Math.max(1, ...rows.map((c) => +c[14]));
          const w = 300 / Math.max(1, rows.length);
          $(name + "-classes").innerHTML = rows.map((c, i) => {
            const h = 88 * (+c[14]) / max;
            return `<rect x="${(i * w).toFixed(2)}" y="${(90 - h).toFixed(2)}" width="${Math.max(0.5, w - 0.3).toFixed(2)}" height="${h.toFixed(2)}" fill="#3b7dd8"><title>size ${c[1]}: ${c[14]} objects</title></rect>`;
          }).join("");
          const blocks = await get(`/sys/kernel/debug/zram/${name}/block_state`, "text");
          let idle = 0;
          for (const line of blocks.split("\n")) { const f = line.trim().split(/\s+/).pop() || ""; if (f[3] === "i") idle++; }
          $(name + "-idle").textContent = idle;
        }

        async function refreshMetrics() {
          const text = await get("/metrics", "text");
          let requests = 0, seconds = 0, count = 0;
          for (const line of text.split("\n")) {
            if (line.startsWith("#")) continue;
            const v = parseFloat(line.slice(line.lastIndexOf(" ") + 1));
            if (line.startsWith("zramd_http_requests_total")) requests += v;
            else if (line.startsWith("zramd_http_request_duration_seconds_sum")) seconds += v;
            else if (line.startsWith("zramd_http_request_duration_seconds_count")) count += v;
          }
          const now = Date.now() / 1000;
          history.push({t: now, requests, seconds, count});
          while (history.length && history[0].t < now - 300) history.shift();
          const rates = [], lat = [];
          for (let i = 1; i < history.length; i++) {
            const a = history[i - 1], b = history[i], dt = Math.max(0.001, b.t - a.t);
            rates.push({t: b.t, v: Math.max(0, (b.requests - a.requests) / dt)});
            const dc = b.count - a.count;
            lat.push({t: b.t, v: dc > 0 ? 1000 * (b.seconds - a.seconds) / dc : 0});
          }
          const last = (a) => a.length ? a[a.length - 1].v : 0;
          $("req-rate").textContent = last(rates).toFixed(1);
          $("req-latency").textContent = last(lat).toFixed(3);
          $("req-total").textContent = requests;
          plot("rate-path", rates, now);
          plot("latency-path", lat, now);
        }

        // x spans the samples kept (up to 5 minutes), y the largest value among them.
        function plot(id, points, now) {
          const max = Math.max(1e-9, ...points.map((p) => p.v));
          const first = history.length ? history[0].t : now, span = Math.max(1, now - first);
          $(id).setAttribute("d", points.map((p, i) =>
            (i ? "L" : "M") + (300 * (p.t - first) / span).toFixed(1) + "," + (88 - 86 * p.v / max).toFixed(1)).join(" "));
        }

        async function refreshJobs() {
          const jobs = await get("/jobs");
          if (!jobs.length) { $("job-list").textContent = "none yet"; return; }
          $("job-list").innerHTML = jobs.map((j) => `<div class="job ${j.state}" id="job-${j.id}" data-state="${j.state}" data-percent="${j.percent}">
        <div>#${j.id} ${esc(j.device)} ${esc(j.operation)} <code>${esc(j.body.trim())}</code> — <b class="state">${j.state}</b>
        ${j.pages.examined}/${j.pages.total} pages, ${j.pages.processed} processed, ${j.rate_pages_per_second} pages/s${j.eta_seconds != null ? ", ETA " + j.eta_seconds + " s" : ""}
        ${j.state === "queued" || j.state === "running" ? `<button data-cancel="${j.id}">cancel</button>` : ""}</div>
        <div class="bar"><div style="width:${j.state === "done" ? 100 : j.percent}%"></div></div>${j.error ? `<div class="err">${esc(j.error)}</div>` : ""}</div>`).join("");
          for (const b of document.querySelectorAll("[data-cancel]")) b.addEventListener("click", () => cancelJob(b.dataset.cancel));
        }

        function authHeaders() {
          const t = $("token").value.trim();
          return t ? {"Authorization": "Bearer " + t} : {};
        }

        async function startJob(name) {
          const op = $(name + "-op").value, body = $(name + "-body").value;
          const r = await fetch(`/sys/block/${name}/${op}?async=1`, {method: "PUT", headers: authHeaders(), body});
          $("job-error").textContent = r.status === 202 ? "" : await r.text();
          refreshJobs().catch(() => {});
        }

        async function cancelJob(id) {
          const r = await fetch("/jobs/" + id, {method: "DELETE", headers: authHeaders()});
          $("job-error").textContent = r.status === 202 ? "" : await r.text();
          refreshJobs().catch(() => {});
        }

        // ?refresh=SECONDS (0.1 to 60; 1 by default).
        const asked = parseFloat(new URLSearchParams(location.search).get("refresh"));
        const period = 1000 * (asked >= 0.1 && asked <= 60 ? asked : 1);
        let tick = 0;
        async function refresh() {
          try {
            const names = await get("/sys/block");
            for (const name of names) await refreshDevice(name, tick % 3 === 0);
            await refreshMetrics();
            await refreshJobs();
            $("updated").textContent = "updated " + new Date().toLocaleTimeString();
          } catch (e) {
            $("updated").textContent = "error: " + e.message;
          }
          tick++;
          setTimeout(refresh, period);
        }
        refresh();
        </script>
        </body></html>
        """#
}
