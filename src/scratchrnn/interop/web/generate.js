/* scratchrnn: the generate page (scratchrnn export --format html). The model's step is
   sampling/sampler.py's `stepper` (nn/cells.py, nn/cells_ln.py) in float64 arithmetic on the
   float32 weights; the draw is its `filter_probs` and `_chars` with this page's own seeded
   generator. Every string of the model or the user reaches the page as textContent, never
   as markup. Test hooks: window.srProbs(prompt, clamp), window.srGenerate(options). */
(function () {
  "use strict";
  var d = JSON.parse(document.getElementById("sr-data").textContent);
  var GATES = { rnn: 1, lstm: 4, gru: 3 };

  function floats(b64, count) {
    var bin = atob(b64);
    if (bin.length !== 4 * count) throw new Error("the page's weights are damaged");
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var view = new DataView(bytes.buffer), out = new Float32Array(count);
    for (var j = 0; j < count; j++) out[j] = view.getFloat32(4 * j, true);  // little-endian
    return out;
  }

  function sigmoid(x) { return 0.5 * (1 + Math.tanh(0.5 * x)); }  // as cells.sigmoid

  // W (n, m), row-major as NumPy stores it, as W^T (m, n): a product is then m dot products
  // over contiguous rows, each summed in a local, 1.2-1.6x faster in Chromium than updating
  // out[j] for every row of W (sampler.stepper transposes for the same reason)
  function transposed(W, n, m) {
    var T = new Float32Array(n * m);
    for (var i = 0; i < n; i++) for (var j = 0; j < m; j++) T[j * n + i] = W[i * m + j];
    return T;
  }

  // out (m) = vec (n) @ W, from WT = W^T (m, n)
  function matvec(out, vec, WT, n, m) {
    for (var j = 0; j < m; j++) {
      var row = j * n, s = 0;
      for (var i = 0; i < n; i++) s += WT[row + i] * vec[i];
      out[j] = s;
    }
  }

  function Model() {
    var all = floats(d.weights, d.count), P = {};
    d.params.forEach(function (p) {
      var n = p[1].reduce(function (a, b) { return a * b; }, 1);
      P[p[0]] = all.subarray(p[2], p[2] + n);
    });
    var H = d.hidden, L = d.layers, V = d.chars.length, cell = d.cell, ln = d.layer_norm;
    var G = GATES[cell], GH = G * H;
    var layers = [];
    for (var k = 0; k < L; k++) {
      var q = "l" + k + ".";
      layers.push({ Wx: k ? transposed(P[q + "W_x"], H, GH) : P[q + "W_x"],  // l0: rows gathered
        Wh: transposed(P[q + "W_h"], H, GH), b: P[q + "b"], bhn: P[q + "b_hn"],
        gx: P[q + "ln_x"], gh: P[q + "ln_h"], h: new Float64Array(H), c: new Float64Array(H) });
    }
    var WyT = transposed(P.W_y, H, V);
    var x = new Float64Array(GH), a = new Float64Array(GH), logits = new Float64Array(V);
    var self = { clamp: null, V: V };

    // LN over each gate's H units (cells_ln.normalise), then the gain
    function norm(v, gain) {
      for (var g = 0; g < G; g++) {
        var o = g * H, m = 0, s = 0, i;
        for (i = 0; i < H; i++) m += v[o + i];
        m /= H;
        for (i = 0; i < H; i++) { v[o + i] -= m; s += v[o + i] * v[o + i]; }
        var r = 1 / Math.sqrt(s / H + d.eps);
        for (i = 0; i < H; i++) v[o + i] *= r;
      }
      for (var j = 0; j < GH; j++) v[j] *= gain[j];
    }

    self.reset = function () {
      layers.forEach(function (l) { l.h.fill(0); l.c.fill(0); });
    };

    self.step = function (id) {  // -> the logits (V) that predict the next symbol
      var i, j;
      for (var k = 0; k < L; k++) {
        var l = layers[k], h = l.h;
        if (k === 0) { for (j = 0; j < GH; j++) x[j] = l.Wx[id * GH + j]; }
        else matvec(x, layers[k - 1].h, l.Wx, H, GH);
        if (ln) norm(x, l.gx);
        for (j = 0; j < GH; j++) x[j] += l.b[j];
        matvec(a, h, l.Wh, H, GH);
        if (ln) norm(a, l.gh);
        if (cell === "rnn") {
          for (i = 0; i < H; i++) h[i] = Math.tanh(a[i] + x[i]);
        } else if (cell === "lstm") {  // gates i f g o
          var c = l.c;
          for (i = 0; i < H; i++) {
            var ig = sigmoid(a[i] + x[i]), fg = sigmoid(a[H + i] + x[H + i]);
            var gg = Math.tanh(a[2 * H + i] + x[2 * H + i]);
            var og = sigmoid(a[3 * H + i] + x[3 * H + i]);
            c[i] = fg * c[i] + ig * gg;
            h[i] = og * Math.tanh(c[i]);
          }
        } else {  // gru, gates r z n; b_hn inside r's product (Cho et al. as PyTorch)
          for (i = 0; i < H; i++) {
            var r = sigmoid(x[i] + a[i]), z = sigmoid(x[H + i] + a[H + i]);
            var n = Math.tanh(x[2 * H + i] + r * (a[2 * H + i] + l.bhn[i]));
            h[i] = n + z * (h[i] - n);
          }
        }
        if (self.clamp && self.clamp[0] === k) h[self.clamp[1]] = self.clamp[2];
      }
      matvec(logits, layers[L - 1].h, WyT, H, V);
      for (j = 0; j < V; j++) logits[j] += P.b_y[j];
      return logits;
    };
    return self;
  }

  // sfc32 from the seed's two 32-bit halves; 53-bit doubles in [0, 1)
  function makeRng(seed) {
    var a = seed >>> 0, b = Math.floor(seed / 4294967296) >>> 0, c = 0x9e3779b9, e = 1;
    function u32() {
      var t = (a + b | 0) + e | 0;
      e = e + 1 | 0; a = b ^ b >>> 9; b = c + (c << 3) | 0;
      c = (c << 21 | c >>> 11); c = c + t | 0;
      return t >>> 0;
    }
    for (var i = 0; i < 15; i++) u32();
    return function () { return ((u32() >>> 5) * 67108864 + (u32() >>> 6)) / 9007199254740992; };
  }

  // sampler.filter_probs: keep the top k and/or the smallest set whose mass reaches top_p
  function filterProbs(w, topK, topP) {
    var V = w.length, total = 0, i;
    for (i = 0; i < V; i++) total += w[i];
    var p = new Float64Array(V), sum = 0;
    for (i = 0; i < V; i++) { p[i] = w[i] / total; sum += p[i]; }
    var order = Array.from(p.keys()).sort(function (u, v) { return p[v] - p[u]; });  // stable
    var n = topK === null ? V : Math.min(topK, V);
    if (topP !== null) {
      var mass = 0, first = V;
      for (var r = 0; r < V; r++) {
        mass += p[order[r]];
        if (mass / sum >= topP * (1 - 1e-12)) { first = r; break; }
      }
      n = Math.min(n, first + 1);
    }
    w.fill(0);
    for (i = 0; i < n; i++) w[order[i]] = p[order[i]];
  }

  function pick(logits, o, rng, w, cum) {
    var V = logits.length, mx = -Infinity, arg = 0, i;
    for (i = 0; i < V; i++) if (logits[i] > mx) { mx = logits[i]; arg = i; }
    if (o.argmax) return arg;  // the first of equal maxima, as NumPy's argmax
    for (i = 0; i < V; i++) w[i] = Math.exp((logits[i] - mx) / o.temperature);
    if (o.topK !== null || o.topP !== null) filterProbs(w, o.topK, o.topP);
    var s = 0;
    for (i = 0; i < V; i++) { s += w[i]; cum[i] = s; }
    var u = rng() * s, lo = 0, hi = V;
    while (lo < hi) { var m = (lo + hi) >> 1; if (cum[m] > u) hi = m; else lo = m + 1; }
    return Math.min(lo, V - 1);
  }

  var index = new Map(), byteIndex = new Map();
  d.chars.forEach(function (ch, i) { index.set(ch, i); byteIndex.set(ch.codePointAt(0), i); });

  function shown(ch) {  // a character named so that an invisible one can be seen
    return /^[\p{C}\p{Z}]$/u.test(ch) && ch !== " "
      ? "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0") : ch;
  }

  // A character the model does not know, as the corpus's cleaning (anyascii) writes the
  // common ones: accents dropped (NFKD), typographic quotes, dashes and the ellipsis in ASCII.
  var FOLD = { "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u201c": "\"",
    "\u201d": "\"", "\u201e": "\"", "\u2013": "-", "\u2014": "--", "\u2015": "--",
    "\u2026": "...", "\u00a0": " " };
  function fold(ch) {
    var f = FOLD[ch] !== undefined ? FOLD[ch] : ch.normalize("NFKD").replace(/\p{M}/gu, "");
    return f && f !== ch && Array.from(f).every(function (c) { return index.has(c); }) ? f : null;
  }

  // The prompt as ids, read as the corpus was (line ends, tabs, fold); {error} for a symbol
  // the model does not know. Text vocabularies by code point; bytes vocabularies by UTF-8 byte.
  function encode(prompt) {
    var text = prompt.replace(/\r\n?/g, "\n").replace(/\t/g, " ");
    if (!d.bytes && !d.newline) text = text.replace(/\n/g, " ");
    // text.to_unicode: one letter one character, control characters as spaces
    if (!d.ascii) text = text.normalize("NFC").replace(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/g, " ");
    var ids = [], bad = [];
    if (d.bytes) {
      new TextEncoder().encode(text).forEach(function (b) {
        var i = byteIndex.get(b);
        if (i === undefined) bad.push("byte " + b); else ids.push(i);
      });
    } else {
      for (var ch of text) {
        var f = index.has(ch) ? ch : d.ascii ? fold(ch) : null;
        if (f === null) { if (bad.indexOf(shown(ch)) < 0) bad.push(shown(ch)); continue; }
        for (var c of f) ids.push(index.get(c));
      }
    }
    if (bad.length) {
      return { error: "The prompt has characters this model does not know: " +
        bad.slice(0, 20).join(" ") + (bad.length > 20 ? " \u2026" : "") +
        ". Remove them and press Start again." };
    }
    return { ids: ids.length ? ids : [d.start], text: text };
  }

  var model, weightBytes = d.weights.length, broken = null;
  try { model = Model(); } catch (err) { broken = err.message; }
  d.weights = null;  // decoded: the string need not stay in memory

  function softmax(logits) {
    var mx = -Infinity, s = 0, out = new Float64Array(logits.length), i;
    for (i = 0; i < logits.length; i++) mx = Math.max(mx, logits[i]);
    for (i = 0; i < logits.length; i++) { out[i] = Math.exp(logits[i] - mx); s += out[i]; }
    for (i = 0; i < logits.length; i++) out[i] /= s;
    return out;
  }

  // Vocab.writer: a control character a bytes model writes (none is in a cleaned corpus but
  // the newline) shows as U+FFFD, as scratchrnn shows it
  function safe(text) { return text.replace(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/g, "\ufffd"); }

  // One run of the model: feeds the prompt, then writes; each call of next() is one step.
  function writer(o, ids) {
    model.reset();
    model.clamp = o.clamp;
    var rng = makeRng(o.seed), w = new Float64Array(model.V), cum = new Float64Array(model.V);
    var dec = d.bytes ? new TextDecoder("utf-8", { fatal: false }) : null;
    var fed = 0, logits = null, self = { written: 0, stopped: false }, held = "";
    self.done = function () { return self.stopped || self.written >= o.length; };
    // options.until: the text up to where the stop text first appears, without it; a tail
    // that may begin it is held back until the next characters show whether it does
    function until(piece) {
      if (o.stopAt === null) return piece;
      held += piece;
      var cut = held.indexOf(o.stopAt), keep = 0, k, shown;
      if (cut >= 0) { self.stopped = true; shown = held.slice(0, cut); held = ""; return shown; }
      for (k = Math.min(held.length, o.stopAt.length - 1); k > 0; k--) {
        if (held.endsWith(o.stopAt.slice(0, k))) { keep = k; break; }
      }
      shown = held.slice(0, held.length - keep);
      held = held.slice(held.length - keep);
      return shown;
    }
    self.next = function () {  // -> the text this step adds ("" while the prompt is read)
      if (fed < ids.length) { logits = model.step(ids[fed++]); return ""; }
      var nxt = pick(logits, o, rng, w, cum);
      self.written++;
      if (!self.done()) logits = model.step(nxt);
      return until(dec ? safe(dec.decode(Uint8Array.of(d.chars[nxt].codePointAt(0)),
        { stream: true })) : d.chars[nxt]);
    };
    self.flush = function () {
      var rest = self.stopped ? "" : until(dec ? safe(dec.decode()) : "");
      if (self.stopped) return rest;
      rest += held;
      held = "";
      return rest;
    };
    return self;
  }

  function integer(v, name, lo, hi) {
    if (!Number.isSafeInteger(v) || v < lo || v > hi) {
      throw new Error(name + " must be a whole number from " + lo + " to " + hi);
    }
    return v;
  }

  // Options as the CLI checks them (sampler.check_sampling, check_clamp), one message each.
  function checked(raw) {
    var o = { argmax: !!raw.argmax, temperature: 1, topK: null, topP: null, clamp: null,
      stopAt: null };
    if (raw.stop_at !== null && raw.stop_at !== undefined) {
      if (typeof raw.stop_at !== "string" || raw.stop_at === "" ||
          Array.from(raw.stop_at).length > d.max_stop) {
        throw new Error("stop at must be text of 1 to " + d.max_stop + " characters (empty: " +
          "write the whole length)");
      }
      o.stopAt = raw.stop_at;
    }
    o.length = integer(raw.length, "length", 1, d.max_length);
    o.seed = raw.seed === null || raw.seed === undefined ? 0
      : integer(raw.seed, "seed", 0, Number.MAX_SAFE_INTEGER);
    if (!o.argmax) {
      o.temperature = raw.temperature === undefined ? 1 : raw.temperature;
      if (!(typeof o.temperature === "number" && isFinite(o.temperature) && o.temperature > 0)) {
        throw new Error("temperature must be a number above 0; tick argmax for the most " +
          "likely character every time");
      }
    }
    if (raw.top_k !== null && raw.top_k !== undefined) {
      o.topK = integer(raw.top_k, "top-k", 1, Number.MAX_SAFE_INTEGER);
    }
    if (raw.top_p !== null && raw.top_p !== undefined) {
      o.topP = raw.top_p;
      if (!(typeof o.topP === "number" && o.topP > 0 && o.topP <= 1)) {
        throw new Error("top-p must be a number above 0 and at most 1");
      }
    }
    if (raw.clamp) {
      var c = raw.clamp;
      if (!Array.isArray(c) || c.length !== 3 || c.some(function (v) { return v === null; })) {
        throw new Error("a clamp needs a layer, a unit and a value (leave all three empty " +
          "for none)");
      }
      integer(c[0], "the clamp's layer", 0, d.layers - 1);
      integer(c[1], "the clamp's unit", 0, d.hidden - 1);
      if (!(typeof c[2] === "number" && Math.abs(c[2]) <= d.max_clamp)) {
        throw new Error("the clamp's value must be a number from -" + d.max_clamp + " to " +
          d.max_clamp + " (h of a tanh unit is in (-1, 1))");
      }
      o.clamp = [c[0], c[1], c[2]];
    }
    return o;
  }

  window.srProbs = function (prompt, clamp) {
    var e = encode(prompt);
    if (e.error) return { error: e.error };
    model.reset();
    model.clamp = clamp || null;
    var logits;
    e.ids.forEach(function (id) { logits = model.step(id); });
    return Array.from(softmax(logits));
  };

  window.srGenerate = function (raw) {
    try {
      var o = checked(raw), e = encode(raw.prompt || "");
      if (e.error) return { error: e.error };
      var wr = writer(o, e.ids), parts = [];
      while (!wr.done()) parts.push(wr.next());
      parts.push(wr.flush());
      return { text: parts.join("") };
    } catch (err) {
      return { error: err.message };
    }
  };

  // ------------------------------------------------------------------------------ the page
  var $ = function (id) { return document.getElementById(id); };
  var status = $("sr-status"), out = $("sr-out"), startB = $("sr-start"), stopB = $("sr-stop");
  var job = null;

  function say(text, error) {
    status.textContent = text;
    status.classList.toggle("sr-error", !!error);
  }

  function num(id, name) {  // null when empty; an error when the field holds no number
    var el = $(id);
    if (el.validity.badInput) throw new Error(name + " is not a number");
    return el.value.trim() === "" ? null : Number(el.value);
  }

  function stopAt() {  // the field, with the command line's escapes: \n, \t and \\
    var v = $("sr-stop-at").value;
    return v === "" ? null : v.replace(/\\([nt\\])/g, function (m, c) {
      return { n: "\n", t: "\t", "\\": "\\" }[c];
    });
  }

  function fromForm() {
    var clamp = [num("sr-clamp-layer", "the clamp's layer"), num("sr-clamp-unit", "the clamp's unit"),
      num("sr-clamp-value", "the clamp's value")];
    return { prompt: $("sr-prompt").value, length: num("sr-length", "length"),
      temperature: num("sr-temperature", "temperature"), top_k: num("sr-top-k", "top-k"),
      top_p: num("sr-top-p", "top-p"), argmax: $("sr-argmax").checked,
      seed: num("sr-seed", "seed"), stop_at: stopAt(),
      clamp: clamp.every(function (v) { return v === null; }) ? null : clamp };
  }

  function finish(why) {
    if (!job) return;
    show(job.wr.flush());
    var secs = (performance.now() - job.t0) / 1000;
    say(why + ": " + job.wr.written.toLocaleString() + " characters in " + secs.toFixed(1) +
      " s (" + Math.round(job.wr.written / Math.max(secs, 1e-3)).toLocaleString() +
      " characters/s).");
    job = null;
    startB.disabled = false;
    stopB.disabled = true;
  }

  function show(chunk) {
    var atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    // a new text node every 64k characters: appending copies the node's text, so one node
    // of millions of characters would make the writing quadratic
    if (job.text.length > 65536) job.text = out.appendChild(document.createTextNode(""));
    job.text.appendData(chunk);
    if (atEnd) out.scrollTop = out.scrollHeight;  // follow the text unless the reader scrolled
  }

  function tick() {  // ~25 ms of work, then the browser paints and reads clicks
    if (!job) return;
    var t0 = performance.now(), chunk = "";
    while (!job.wr.done() && performance.now() - t0 < 25) chunk += job.wr.next();
    show(chunk);
    if (job.wr.done()) { finish("Done"); return; }
    if (t0 - job.said > 250) {  // a status that a screen reader can follow
      job.said = t0;
      say("Writing\u2026 " + job.wr.written.toLocaleString() + " of " +
        job.length.toLocaleString() + " characters.");
    }
    setTimeout(tick, 0);
  }

  function start() {
    finish("Stopped");
    var o, e;
    try { o = checked(fromForm()); } catch (err) { say(err.message, true); return; }
    e = encode($("sr-prompt").value);
    if (e.error) { say(e.error, true); return; }
    out.textContent = "";
    var prime = document.createElement("span");
    prime.className = "sr-prime";
    prime.textContent = e.text;
    out.appendChild(prime);
    var text = document.createTextNode("");
    out.appendChild(text);
    job = { wr: writer(o, e.ids), text: text, length: o.length, t0: performance.now(), said: 0 };
    startB.disabled = true;
    stopB.disabled = false;
    say("Reading the prompt\u2026");
    setTimeout(tick, 0);
  }

  document.getElementById("sr-title").textContent = document.title;
  Object.keys(d.card).forEach(function (k) {
    var tr = document.createElement("tr"), th = document.createElement("th");
    var td = document.createElement("td");
    th.textContent = k;
    td.textContent = String(d.card[k]);
    tr.appendChild(th);
    tr.appendChild(td);
    $("sr-card").appendChild(tr);
  });
  $("sr-about").textContent = "Weights: " + d.count.toLocaleString() + " float32 numbers (" +
    (weightBytes / 1048576).toFixed(1) + " MB of this page). With argmax the page " +
    "writes exactly what scratchrnn writes. Sampling uses this page's own seeded random " +
    "generator: a seed gives the same text every time here, but not the text " +
    "'scratchrnn sample' gives for that seed. " + (d.bytes
      ? "The model writes UTF-8 bytes: any character can be a prompt."
      : d.ascii ? "A prompt character the model does not know is read as its plain form " +
        "(accents dropped, quotes and dashes in ASCII), else refused."
      : "A prompt character the model has never seen is refused.");
  if (broken) {
    say("Could not load the model: " + broken + ". Export the page again.", true);
    startB.disabled = true;
    return;
  }
  // the field's "The " is English: a model of another script starts from no prompt instead
  if (encode($("sr-prompt").value).error) $("sr-prompt").value = "";
  startB.addEventListener("click", start);
  stopB.addEventListener("click", function () { finish("Stopped"); });
  $("sr-prompt").addEventListener("keydown", function (ev) {  // Ctrl+Enter: Start
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); start(); }
  });
  $("sr-root").dataset.ready = "1";
})();
