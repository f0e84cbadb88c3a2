/* counterface review page: virtualised list of pairs, sort, filter, keyboard review, CSV export.
   Data: window.REPORT = {meta, rows} from rows.js (written by `counterface report`). No server needed. */
(function () {
  "use strict";
  var R = window.REPORT;
  var $ = function (id) { return document.getElementById(id); };
  if (!R || !R.rows) {
    $("summary").textContent = "rows.js is missing or broken: run `counterface report OUT` again.";
    return;
  }
  var META = R.meta, ROWS = R.rows, THR = META.thresholds;
  var ROW_H = 152, OVERSCAN = 4;
  var RENDER_ALL = 200;  // up to this many rows every row is in the page; above, only the visible window
  var STORE = "counterface-report:" + META.report_id;
  var PRIORITY = ["identity", "identity_independent", "identity_z1z0", "identity_independent_z1z0", "psnr_outside", "unchanged_outside_blend", "score_delta",
                  "score_z1", "score_z0", "lpips_outside", "identity_z0", "psnr_outside_z0",
                  "unchanged_outside_blend_z0"];
  var FLAG_TEXT = {
    low_identity: "an identity similarity below its threshold: identity, identity_z0, identity_z1z0 (ArcFace) below " +
        THR.identity + "; identity_independent, _z0, _z1z0 (dlib) below " + THR.identity_independent,
    changed_outside_blend: "unchanged_outside_blend (or _z0) below 1 with a lossless format: a pixel outside the blend region changed",
    low_psnr_outside: "psnr_outside (or _z0) below " + THR.psnr_outside + " dB",
    not_scored: "the attribute's scorer could not score Z1 or Z0 (score_z1 / score_z0 empty)",
    no_score_gain: "alpha > 0 but score_delta <= 0",
    metrics_error: "evaluate could not measure the row"
  };

  var columns = META.columns.slice();
  var colKind = {};
  columns.forEach(function (c) { colKind[c.name] = c; });
  var VIRTUAL = [{name: "decision", kind: "review", numeric: false},
                 {name: "flags", kind: "review", numeric: false},
                 {name: "outliers", kind: "review", numeric: true}];
  VIRTUAL.forEach(function (c) { colKind[c.name] = c; });
  var manifestCols = columns.filter(function (c) { return c.kind === "manifest"; }).map(function (c) { return c.name; });
  var metricCols = columns.filter(function (c) { return c.kind === "metric"; }).map(function (c) { return c.name; });
  function priority(name) {  // <attribute>_score_delta ranks like score_delta
    var i = PRIORITY.indexOf(name), m = /_(score_(?:delta|z1|z0))$/.exec(name);
    if (i < 0 && m) i = PRIORITY.indexOf(m[1]);
    return i < 0 ? 99 : i;
  }
  metricCols.sort(function (a, b) {
    var ia = priority(a), ib = priority(b);
    return ia - ib || (a < b ? -1 : a > b ? 1 : 0);
  });

  function uid(r) { return [r.key, r.face, r.alpha, r.job, r.sha256].join("\u001f"); }
  var decisions = {};
  try { decisions = JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (e) { decisions = {}; }
  var undo = [];
  function save() {
    try { localStorage.setItem(STORE, JSON.stringify(decisions)); } catch (e) { /* private mode: kept in memory */ }
  }

  function value(r, name) {
    if (name === "decision") return decisions[uid(r)] || "";
    if (name === "flags") return r.flags.join(" ");
    if (name === "outliers") return r.flags.length;
    var v = r[name];
    return v === undefined ? null : v;
  }
  function fmt(v) {
    if (v === null || v === undefined || v === "") return "\u2013";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
    return String(v);
  }
  function bad(r, name) {
    var v = r[name];
    if (/^identity(_z0|_z1z0)?$/.test(name)) return typeof v === "number" && v < THR.identity;
    if (/^identity_independent(_z0|_z1z0)?$/.test(name)) return typeof v === "number" && v < THR.identity_independent;
    if (/^psnr_outside(_z0)?$/.test(name)) return typeof v === "number" && v < THR.psnr_outside;
    if (/^unchanged_outside_blend(_z0)?$/.test(name)) return r.flags.indexOf("changed_outside_blend") >= 0 && typeof v === "number" && v < 1;
    if (/(^|_)score_z[01]$/.test(name)) return r.flags.indexOf("not_scored") >= 0 && (v === null || v === undefined);
    if (/(^|_)score_delta$/.test(name)) return r.flags.indexOf("no_score_gain") >= 0 && typeof v === "number" && v <= 0;
    return false;
  }

  // -- header --------------------------------------------------------------------------------------
  var nOut = ROWS.filter(function (r) { return r.flags.length; }).length;
  $("summary").textContent = META.rows + " pairs from " + META.out + "; " + nOut + " outlier(s); " +
      META.failures + " photo(s) failed in the batch (failures.jsonl).";
  if (META.failures) {
    $("failures-box").hidden = false;
    $("failures-title").textContent = META.failures + " photo(s) failed in the batch" +
        (META.failure_list.length < META.failures ? " (the first " + META.failure_list.length + " listed; all in failures.jsonl)" : "");
    META.failure_list.forEach(function (f) {
      var li = document.createElement("li");
      li.textContent = f.key + ": " + f.reason + (f.message ? " (" + f.message + ")" : "");
      $("failures").appendChild(li);
    });
  }
  META.notes.forEach(function (n) { var li = document.createElement("li"); li.textContent = n; $("notes").appendChild(li); });
  if (META.figures.length) {
    META.figures.forEach(function (f) {
      var a = document.createElement("a"); a.href = f; a.target = "_blank";
      var img = document.createElement("img"); img.src = f; img.alt = f; a.appendChild(img); $("figures").appendChild(a);
    });
  } else {
    $("figures").textContent = "No figures: " + (META.notes.join("; ") || "none drawn");
  }
  $("heat-sat").textContent = META.heat_saturation;
  var thr = $("thresholds");
  Object.keys(FLAG_TEXT).forEach(function (k, i) {
    if (i) thr.appendChild(document.createTextNode("; "));
    var b = document.createElement("b"); b.textContent = k; thr.appendChild(b);
    thr.appendChild(document.createTextNode(": " + FLAG_TEXT[k]));
  });

  function option(sel, val, text) {
    var o = document.createElement("option"); o.value = val; o.textContent = text; sel.appendChild(o);
  }
  var sortSel = $("sort-column"), filterSel = $("filter-column");
  option(sortSel, "", "(batch order)");
  [["manifest", manifestCols], ["metric", metricCols],
   ["review", VIRTUAL.map(function (c) { return c.name; })],
   ["run", columns.filter(function (c) { return c.kind === "run"; }).map(function (c) { return c.name; })]]
    .forEach(function (group) {
      [sortSel, filterSel].forEach(function (sel) {
        var g = document.createElement("optgroup"); g.label = group[0];
        group[1].forEach(function (n) { option(g, n, n); });
        sel.appendChild(g);
      });
    });

  // -- filtering and sorting -----------------------------------------------------------------------
  var state = {sort: "", asc: true, filters: [], outliers: false, decision: "all"};
  var view = [], selected = 0;

  function test(f, r) {
    var v = value(r, f.column);
    var empty = v === null || v === undefined || v === "";
    if (f.op === "empty") return empty;
    if (f.op === "nonempty") return !empty;
    if (empty) return false;
    if (f.op === "contains") return String(v).toLowerCase().indexOf(f.value.toLowerCase()) >= 0;
    if (f.numeric) {
      var x = Number(v);
      if (!isFinite(x)) return false;
      switch (f.op) {
        case "<": return x < f.num; case "<=": return x <= f.num; case ">": return x > f.num;
        case ">=": return x >= f.num; case "=": return x === f.num; case "!=": return x !== f.num;
      }
    }
    var s = String(v);
    switch (f.op) {
      case "=": return s === f.value; case "!=": return s !== f.value;
      case "<": return s < f.value; case "<=": return s <= f.value; case ">": return s > f.value; case ">=": return s >= f.value;
    }
    return false;
  }
  function apply(keepRow) {
    var keep = view[selected];
    var idx = [];
    for (var i = 0; i < ROWS.length; i++) {
      var r = ROWS[i], ok = true;
      if (state.outliers && !r.flags.length) ok = false;
      if (ok && state.decision !== "all") {
        var d = decisions[uid(r)] || "undecided";
        if (d !== state.decision) ok = false;
      }
      for (var j = 0; ok && j < state.filters.length; j++) ok = test(state.filters[j], r);
      if (ok) idx.push(i);
    }
    if (state.sort) {
      var col = state.sort, numeric = colKind[col] && colKind[col].numeric, sign = state.asc ? 1 : -1;
      var keys = {};
      idx.forEach(function (i) { keys[i] = value(ROWS[i], col); });
      idx.sort(function (a, b) {
        var va = keys[a], vb = keys[b];
        var ea = va === null || va === undefined || va === "", eb = vb === null || vb === undefined || vb === "";
        if (ea || eb) return ea === eb ? a - b : (ea ? 1 : -1);  // empty values last, either direction
        var c = numeric ? Number(va) - Number(vb) : String(va).localeCompare(String(vb));
        return c ? sign * c : a - b;
      });
    }
    view = idx;
    var at = keepRow === undefined ? -1 : view.indexOf(keep);
    selected = at >= 0 ? at : 0;
    $("spacer").style.height = (view.length * ROW_H) + "px";
    $("count").textContent = "showing " + view.length + " of " + ROWS.length + " pairs";
    $("count").dataset.shown = view.length;
    renderFilters();
    render(true);
  }

  function renderFilters() {
    var box = $("filters");
    box.textContent = "";
    state.filters.forEach(function (f, i) {
      var chip = document.createElement("span"); chip.className = "chip";
      chip.textContent = f.column + " " + f.op + (f.op === "empty" || f.op === "nonempty" ? "" : " " + f.value);
      var x = document.createElement("button"); x.type = "button"; x.textContent = "\u00d7"; x.title = "remove filter";
      x.className = "filter-remove";
      x.addEventListener("click", function () { state.filters.splice(i, 1); apply(true); });
      chip.appendChild(x); box.appendChild(chip);
    });
  }

  // -- rendering (only the visible window) -----------------------------------------------------------
  var vp = $("viewport"), holder = $("rows"), lastRange = "";
  function thumbCell(r, role, label) {
    var href = role === "diff" ? null : r.links[role];
    var a = document.createElement(href ? "a" : "div");
    a.className = "thumb";
    if (href) { a.href = href; a.target = "_blank"; a.rel = "noopener"; }
    if (r.thumbs[role]) {
      var img = document.createElement("img"); img.src = r.thumbs[role]; img.alt = label; img.loading = "lazy";
      a.appendChild(img);
    } else {
      var m = document.createElement("div"); m.className = "missing"; m.textContent = "no image"; a.appendChild(m);
    }
    var cap = document.createElement("div"); cap.textContent = label; a.appendChild(cap);
    return a;
  }
  function cell(r, name) {
    var c = document.createElement("span"); c.className = "cell" + (bad(r, name) ? " bad" : "");
    c.dataset.column = name;
    var n = document.createElement("span"); n.className = "name"; n.textContent = name + " ";
    c.appendChild(n); c.appendChild(document.createTextNode(fmt(r[name])));
    return c;
  }
  function rowElement(pos) {
    var i = view[pos], r = ROWS[i], d = decisions[uid(r)] || "";
    var el = document.createElement("div");
    el.className = "row" + (r.flags.length ? " outlier" : "") + (pos === selected ? " selected" : "") + (d ? " " + d : "");
    el.style.top = (pos * ROW_H) + "px"; el.style.height = ROW_H + "px";
    el.dataset.pos = pos; el.dataset.index = i; el.dataset.key = r.key;
    var th = document.createElement("div"); th.className = "thumbs";
    th.appendChild(thumbCell(r, "z", "Z")); th.appendChild(thumbCell(r, "z1", "Z1"));
    th.appendChild(thumbCell(r, "z0", "Z0")); th.appendChild(thumbCell(r, "diff", "|Z1 \u2212 Z0|"));
    el.appendChild(th);
    var info = document.createElement("div"); info.className = "info";
    var title = document.createElement("div"); title.className = "title";
    var dec = document.createElement("span"); dec.className = "decision"; dec.textContent = d || "undecided";
    title.appendChild(dec);
    title.appendChild(document.createTextNode(" #" + (i + 1) + "  " + r.key + "  \u00b7 face " + fmt(r.face) + " \u00b7 alpha " + fmt(r.alpha)));
    info.appendChild(title);
    var man = document.createElement("div"); man.className = "manifest";
    manifestCols.forEach(function (n) { man.appendChild(cell(r, n)); });
    info.appendChild(man);
    var met = document.createElement("div"); met.className = "metrics";
    metricCols.forEach(function (n) { if (r[n] !== undefined) met.appendChild(cell(r, n)); });
    info.appendChild(met);
    var fl = document.createElement("div"); fl.className = "flags";
    r.flags.forEach(function (f) {
      var s = document.createElement("span"); s.className = "flag"; s.textContent = f; s.title = FLAG_TEXT[f] || f; fl.appendChild(s);
    });
    info.appendChild(fl);
    if (r.report_error || r.metrics_error) {
      var er = document.createElement("div"); er.className = "error"; er.textContent = r.report_error || r.metrics_error;
      info.appendChild(er);
    }
    el.appendChild(info);
    el.addEventListener("click", function () { selected = pos; render(true); });
    return el;
  }
  function render(force) {
    var first = 0, last = view.length;
    if (view.length > RENDER_ALL) {
      first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - OVERSCAN);
      last = Math.min(view.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW_H) + OVERSCAN);
    }
    var range = first + ":" + last;
    if (!force && range === lastRange) return;
    lastRange = range;
    var frag = document.createDocumentFragment();
    for (var p = first; p < last; p++) frag.appendChild(rowElement(p));
    holder.textContent = "";
    holder.appendChild(frag);
    var n = 0; for (var k in decisions) if (decisions[k]) n++;
    $("decided").textContent = n + " decided";
  }
  var ticking = false;
  vp.addEventListener("scroll", function () {
    if (ticking) return;
    ticking = true;
    requestAnimationFrame(function () { ticking = false; render(false); });
  });
  window.addEventListener("resize", function () { render(true); });

  function reveal() {
    var top = selected * ROW_H;
    if (top < vp.scrollTop) vp.scrollTop = top;
    else if (top + ROW_H > vp.scrollTop + vp.clientHeight) vp.scrollTop = top + ROW_H - vp.clientHeight;
    render(true);
  }
  function move(delta) {
    if (!view.length) return;
    selected = Math.max(0, Math.min(view.length - 1, selected + delta));
    reveal();
  }
  function decide(decision) {
    if (!view.length) return;
    var r = ROWS[view[selected]], id = uid(r);
    undo.push({id: id, prev: decisions[id] || ""});
    if (decision) decisions[id] = decision; else delete decisions[id];
    save();
    if (state.decision !== "all") { apply(); reveal(); return; }
    if (decision) move(1); else render(true);
  }
  function undoLast() {
    var u = undo.pop();
    if (!u) return;
    if (u.prev) decisions[u.id] = u.prev; else delete decisions[u.id];
    save();
    for (var p = 0; p < view.length; p++) if (uid(ROWS[view[p]]) === u.id) { selected = p; break; }
    if (state.decision !== "all") apply(true);
    reveal();
  }

  // -- export --------------------------------------------------------------------------------------
  function csvCell(v) {
    var s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function exportCsv() {
    var lines = ["key,face,alpha,decision,job,sha256"];
    ROWS.forEach(function (r) {
      var d = decisions[uid(r)];
      if (d) lines.push([r.key, r.face, r.alpha, d, r.job, r.sha256].map(csvCell).join(","));
    });
    var blob = new Blob([lines.join("\n") + "\n"], {type: "text/csv"});
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "counterface-review.csv";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  // -- controls ------------------------------------------------------------------------------------
  // after a control is used, the list takes the keyboard again (j/k/a/r/u)
  function back() { vp.scrollTop = 0; render(true); vp.focus(); }
  sortSel.addEventListener("change", function () { state.sort = sortSel.value; apply(); back(); });
  $("sort-dir").addEventListener("click", function () {
    state.asc = !state.asc; $("sort-dir").textContent = state.asc ? "ascending" : "descending"; apply(); back();
  });
  $("filter-add").addEventListener("click", function () {
    var column = filterSel.value, op = $("filter-op").value, val = $("filter-value").value;
    if (!column) return;
    var numeric = !!(colKind[column] && colKind[column].numeric) && op !== "contains";
    var f = {column: column, op: op, value: val, numeric: numeric, num: Number(val)};
    if (numeric && op !== "empty" && op !== "nonempty" && (val.trim() === "" || !isFinite(f.num))) {
      $("count").textContent = "filter: " + column + " is numeric, " + JSON.stringify(val) + " is not a number";
      return;
    }
    state.filters.push(f);
    apply(); back();
  });
  $("filter-value").addEventListener("keydown", function (e) { if (e.key === "Enter") $("filter-add").click(); });
  $("outliers-only").addEventListener("change", function (e) { state.outliers = e.target.checked; apply(); back(); });
  $("decision-filter").addEventListener("change", function (e) { state.decision = e.target.value; apply(); back(); });
  $("export").addEventListener("click", exportCsv);
  document.addEventListener("keydown", function (e) {
    var t = e.target && e.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || e.ctrlKey || e.metaKey || e.altKey) return;
    var handled = true;
    switch (e.key) {
      case "j": case "ArrowDown": move(1); break;
      case "k": case "ArrowUp": move(-1); break;
      case "a": decide("accept"); break;
      case "r": decide("reject"); break;
      case "c": decide(""); break;
      case "u": undoLast(); break;
      case "o": if (view.length && ROWS[view[selected]].links.z1) window.open(ROWS[view[selected]].links.z1, "_blank"); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });

  apply();
  vp.focus();
  document.body.dataset.loadMs = Math.round(performance.now());
  document.body.dataset.ready = "1";
})();
