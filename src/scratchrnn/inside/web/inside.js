/* scratchrnn: the activation view. ScratchRNNInside.render(root, data) builds the whole view
   from the page data of scratchrnn.visualize.page_data. Every piece of corpus text reaches the
   DOM through textContent or createTextNode, never as markup. No network: activations arrive
   deflated in base 85 and are inflated with the browser's DecompressionStream; a state stored
   as its difference from a prediction is rebuilt by `predict`, the same float64 arithmetic as
   scratchrnn/pack.py, so it recovers exactly the stored levels. */
(function () {
  "use strict";
  if (window.ScratchRNNInside) return;

  var NEG = [33, 102, 172], MID = [247, 247, 247], POS = [230, 97, 1];  // blue-white-orange
  var GATE_COLOURS = {i: "#0072B2", f: "#E69F00", o: "#009E73", r: "#0072B2", z: "#E69F00"};
  var SIGNAL_NAMES = {h: "h: hidden state", c: "c: cell state", i: "i: input gate",
    f: "f: forget gate", g: "g: candidate", o: "o: output gate", r: "r: reset gate",
    z: "z: update gate", n: "n: candidate"};
  var SURPRISE_MAX = 6;  // nats at which the surprisal colour is full
  var SVGNS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) {
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function mix(a, b, t) {
    return [0, 1, 2].map(function (j) { return Math.round(a[j] + (b[j] - a[j]) * t); });
  }
  function rgb(c) { return "rgb(" + c[0] + ", " + c[1] + ", " + c[2] + ")"; }
  // t in [-1, 1] -> [background, text colour]
  function diverging(t) {
    t = Math.max(-1, Math.min(1, t));
    var c = t < 0 ? mix(MID, NEG, -t) : mix(MID, POS, t);
    return [rgb(c), t < -0.62 ? "#fff" : ""];  // dark text keeps its contrast on the orange
  }
  // Characters that draw nothing or act on their neighbours (controls, bidi overrides,
  // separators, unassigned): the text keeps them, each shown as its code point.
  var INVISIBLE = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}]$/u;
  function codePoint(ch) {
    return "U+" + ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
  }
  function show(ch) {
    return ch === "\n" ? "\u21b5" : ch === " " ? "\u2423" : INVISIBLE.test(ch) ? codePoint(ch) : ch;
  }
  // A guess as page_data labels it: one character, or a bytes page's "D0\u2026" / "FF\u2717".
  function showLabel(s) { return Array.from(s).length === 1 ? show(s) : s; }
  function pct(p) { return (100 * p).toFixed(p >= 0.095 ? 1 : 2) + "%"; }
  function fmt(x, d) { return x === null || x === undefined ? "\u2013" : Number(x).toFixed(d); }

  var B85 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%,()*+-;.=:?@^_`{|}~";
  var B85_DIGIT = new Int16Array(128).fill(-1);
  for (var d = 0; d < 85; d++) B85_DIGIT[B85.charCodeAt(d)] = d;
  function unb85(s) {  // base64.b85decode, with . : , standing for < > &
    var n = s.length, tail = n % 5, out = new Uint8Array(Math.floor(n / 5) * 4 + Math.max(tail - 1, 0));
    for (var i = 0, o = 0; i < n; i += 5) {
      var x = 0;
      for (var j = i; j < i + 5; j++) {
        var c = j < n ? s.charCodeAt(j) : 126;  // a short last group: padded with ~
        var v = c < 128 ? B85_DIGIT[c] : -1;
        if (v < 0) throw new Error("the page's activation data is damaged");
        x = x * 85 + v;
      }
      if (x > 4294967295) throw new Error("the page's activation data is damaged");
      for (var b = 3; b >= 0; b--) {
        if (o + (3 - b) < out.length) out[o + (3 - b)] = Math.floor(x / Math.pow(256, b)) % 256;
      }
      o += 4;
    }
    return out;
  }
  // A Promise of the `size` bytes deflated in `text`: damaged data rejects it, so the page
  // says so where the activations would be.
  function inflate(text, size) {
    return Promise.resolve(text).then(function (t) {
      var stream = new Blob([unb85(t)]).stream().pipeThrough(new DecompressionStream("deflate"));
      return new Response(stream).arrayBuffer();
    }).then(function (b) {
      if (b.byteLength !== size) throw new Error("wrong size");
      return new Uint8Array(b);
    }).catch(function () {  // bad digits, a broken deflate stream ("Failed to fetch"), a size
      throw new Error("the page's activation data is damaged");
    });
  }
  function tanhish(x) {  // pack.py's _tanhish
    x = Math.min(Math.max(x, -4.97), 4.97);
    var x2 = x * x;
    return (x * (135135 + x2 * (17325 + x2 * (378 + x2))))
      / (135135 + x2 * (62370 + x2 * (3150 + 28 * x2)));
  }
  // pack.py's _predict: a state signal's value from its gates (at t) and itself (at t - 1)
  function predict(cell, signal, g, prev) {
    if (cell === "gru") return (1 - g.z) * g.n + g.z * prev;  // h
    if (signal === "c") return g.f * prev + g.i * g.g;
    return g.o * tanhish(g.c);  // LSTM h
  }
  // The levels of a signal stored as (level - guess) mod 256, where the guess is `predict` from
  // the signals it reads (`deps`: [name, entry, levels], unit-major) rounded as pack.py rounds.
  function rebuild(cell, signal, a, stored, deps, T) {
    var L = a.levels, step = (a.hi - a.lo) / (L - 1), scale = (L - 1) / (a.hi - a.lo);
    var n = stored.length, q = new Uint8Array(n), g = {};
    var deq = deps.map(function (d) {
      var e = d[1], v = new Float64Array(n), st = (e.hi - e.lo) / (e.levels - 1);
      for (var i = 0; i < n; i++) v[i] = e.lo + d[2][i] * st;
      return v;
    });
    for (var u = 0; u < n / T; u++) {
      var prev = 0;
      for (var i = u * T; i < (u + 1) * T; i++) {
        for (var k = 0; k < deps.length; k++) g[deps[k][0]] = deq[k][i];
        var guess = Math.floor((predict(cell, signal, g, prev) - a.lo) * scale + 0.5);
        guess = Math.min(Math.max(guess, 0), L - 1);
        q[i] = (guess + stored[i]) % 256;
        prev = a.lo + q[i] * step;
      }
    }
    return q;
  }

  function lossCurve(history) {
    var W = 380, H = 190, L = 44, R = 10, T = 10, B = 30;
    var s = svg("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": "loss curve"});
    var pts = history.filter(function (r) { return r[1] !== null || r[2] !== null; });
    if (!pts.length) return null;
    var xs = pts.map(function (r) { return r[0]; });
    var ys = [];
    pts.forEach(function (r) {
      if (r[1] !== null) ys.push(r[1]);
      if (r[2] !== null) ys.push(r[2]);
    });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) y1 = y0 + 1;
    var px = function (x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
    var py = function (y) { return T + (y1 - y) / (y1 - y0) * (H - T - B); };
    s.appendChild(svg("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff",
      stroke: "#d9dee3"}));
    [y0, (y0 + y1) / 2, y1].forEach(function (y) {
      var t = svg("text", {x: L - 4, y: py(y) + 4, "text-anchor": "end"});
      t.textContent = y.toFixed(2);
      s.appendChild(t);
    });
    [[x0, "start"], [x1, "end"]].forEach(function (a) {
      var t = svg("text", {x: px(a[0]), y: H - 14, "text-anchor": a[1]});
      t.textContent = "step " + a[0];
      s.appendChild(t);
    });
    var lbl = svg("text", {x: L + (W - L - R) / 2, y: H - 2, "text-anchor": "middle"});
    lbl.textContent = "loss (nats/char): \u2014 train  \u25cf validation";
    s.appendChild(lbl);
    var d = "";
    pts.forEach(function (r) {
      if (r[1] !== null) d += (d ? "L" : "M") + px(r[0]).toFixed(1) + "," + py(r[1]).toFixed(1);
    });
    if (d) s.appendChild(svg("path", {d: d, fill: "none", stroke: "#2166ac", "stroke-width": 1.3}));
    pts.forEach(function (r) {
      if (r[2] !== null) s.appendChild(svg("circle", {cx: px(r[0]), cy: py(r[2]), r: 3,
        fill: "#e66101"}));
    });
    return s;
  }

  function render(root, data, opts) {
    opts = opts || {};
    var T = data.ids.length, H = data.hidden, K = data.k;
    // One entry per code point (an emoji is one character, not two UTF-16 halves). On a bytes
    // page each position is a byte of the character char_of names; a character is read whole
    // at its last byte, which shows it, and its earlier bytes show as narrow cells before it.
    var cells = Array.from(data.text), bytes = data.kind === "bytes";
    var charOf = bytes ? data.char_of : null;
    var symbol = bytes ? "byte" : "char";
    function charAt(t) { return cells[bytes ? charOf[t] : t]; }
    function lastByte(t) { return !bytes || t === T - 1 || charOf[t + 1] !== charOf[t]; }
    function byteSpan(t) {  // [first position, count] of the bytes of t's character
      var a = t, b = t;
      while (a > 0 && charOf[a - 1] === charOf[t]) a--;
      while (b < T - 1 && charOf[b + 1] === charOf[t]) b++;
      return [a, b - a + 1];
    }
    var cache = {};  // "layer/signal" -> Uint8Array (H * T) of levels, unit-major
    var pending = {};  // "layer/signal" -> its Promise while it is being inflated
    // focus: the character described; cursor: where the arrow keys are (hover moves only focus)
    var st = {view: "unit", layer: 0, signal: "h", unit: 0, stretch: false, focus: -1, cursor: 0};
    if (data.units) {  // start on the best unit the finder found
      var best = null;
      Object.keys(data.units).forEach(function (p) {
        var u = data.units[p][0];
        if (u && (!best || Math.abs(u[3]) > Math.abs(best[3]))) best = u;
      });
      if (best) { st.layer = best[0]; st.signal = best[1]; st.unit = best[2]; }
    }
    root.textContent = "";
    root.classList.add("sr-inside");

    // ---- header: title, model card, loss curve
    if (opts.header !== false) {
      root.appendChild(el("h1", {text: data.title || "Inside a character model"}));
      root.appendChild(el("p", {cls: "sr-lede", text: "Each character of the text is coloured "
        + "by one unit of the network after it has read that character (blue: negative, white: "
        + "zero, orange: positive). Pick a unit found automatically on the left, or any layer, "
        + "signal and unit above. Hover over a character, or focus the text and use the arrow "
        + "keys, to see the model's top guesses for the next character."}));
    }
    {  // the model card, loss curve and this text's numbers (notebook outputs too)
      var top = el("div", {cls: "sr-top"});
      if (data.model_card) {
        var tb = el("table", {cls: "sr-card"});
        Object.keys(data.model_card).forEach(function (k) {
          tb.appendChild(el("tr", null, [el("th", {text: k}),
            el("td", {text: String(data.model_card[k]), dir: "auto"})]));
        });
        top.appendChild(el("div", {cls: "sr-box"}, [el("h2", {text: "Model"}), tb]));
      }
      var curve = data.history && data.history.length ? lossCurve(data.history) : null;
      if (curve) top.appendChild(el("div", {cls: "sr-box"}, [el("h2", {text: "Training"}), curve]));
      var stat = el("div", {cls: "sr-box sr-stat"}, [el("h2", {text: "This text"})]);
      stat.appendChild(el("div", null, [el("b", {text: fmt(data.mean_surprisal, 4)}),
        " nats/" + symbol + " = ", el("b", {text: fmt(data.bits_per_char, 4)}),
        " bits/" + symbol]));
      stat.appendChild(el("div", {text: "over " + (T - 1).toLocaleString("en")
        + (bytes ? " predicted bytes" : " predicted characters")}));
      var firstGuess = 0;
      data.next_rank.forEach(function (r) { if (r === 1) firstGuess++; });
      stat.appendChild(el("div", {text: "first guess right: " + (T > 1 ? pct(firstGuess / (T - 1))
        : "\u2013")}));
      top.appendChild(stat);
      root.appendChild(top);
    }

    // ---- controls
    var controls = el("div", {cls: "sr-controls"});
    var seg = el("span", {cls: "sr-seg", role: "group", "aria-label": "view"});
    var bUnit = el("button", {type: "button", text: "Unit activation", "data-view": "unit"});
    var bSurp = el("button", {type: "button", text: "Surprisal", "data-view": "surprisal"});
    seg.appendChild(bUnit); seg.appendChild(bSurp);
    controls.appendChild(seg);
    var selLayer = el("select", {"aria-label": "layer", cls: "sr-layer"});
    for (var l = 0; l < data.num_layers; l++) selLayer.appendChild(el("option", {value: l,
      text: "layer " + l}));
    var selSignal = el("select", {"aria-label": "signal", cls: "sr-signal"});
    data.signals.forEach(function (s) {
      selSignal.appendChild(el("option", {value: s, text: SIGNAL_NAMES[s] || s}));
    });
    var inUnit = el("input", {type: "number", min: 0, max: H - 1, step: 1, cls: "sr-unit",
      "aria-label": "unit"});
    var chk = el("input", {type: "checkbox", cls: "sr-stretch"});
    controls.appendChild(el("label", null, ["Layer", selLayer]));
    controls.appendChild(el("label", null, ["Signal", selSignal]));
    controls.appendChild(el("label", null, ["Unit", inUnit, el("span", {cls: "sr-note",
      text: "of " + H})]));
    controls.appendChild(el("label", {title: "spread this unit's own range (2nd to 98th percentile) "
      + "over the whole colour scale"},
      [chk, "stretch colours"]));
    var ramp = el("span", {cls: "sr-ramp"});
    var lo = el("span"), hi = el("span");
    controls.appendChild(el("span", {cls: "sr-legend"}, [lo, ramp, hi]));
    root.appendChild(controls);

    // ---- main: units | text | panel
    var main = el("div", {cls: "sr-main"});
    var units = el("div", {cls: "sr-box sr-units"}, [el("h2", {text: "Units found automatically"}),
      el("div", {cls: "sr-note", text: "Best |correlation| with a property of the text, over "
        + "every unit, signal and layer. Click one to show it."})]);
    var unitButtons = [];
    // Strongest property first; a property no unit tracks (|corr| < 0.3) is shown muted.
    var strength = function (p) {
      return data.units[p].length ? Math.abs(data.units[p][0][3]) : 0;
    };
    var byStrength = Object.keys(data.units || {}).sort(function (a, b) {
      return strength(b) - strength(a);
    });
    byStrength.forEach(function (p) {
      var h3 = el("h3", {text: (data.properties && data.properties[p]) || p});
      if (strength(p) < 0.3) h3.className = "sr-weak";
      units.appendChild(h3);
      data.units[p].forEach(function (u) {
        var b = el("button", {type: "button", cls: "sr-unitpick", "data-property": p,
          text: "layer " + u[0] + " \u00b7 " + u[1] + " \u00b7 unit " + u[2] + "   corr "
            + (u[3] >= 0 ? "+" : "\u2212") + Math.abs(u[3]).toFixed(2)});
        b.addEventListener("click", function () {
          select(u[0], u[1], u[2], "unit");
        });
        b._u = u;
        if (Math.abs(u[3]) < 0.3) b.classList.add("sr-weak");
        unitButtons.push(b);
        units.appendChild(b);
      });
    });
    var text = el("div", {cls: "sr-box sr-text", tabindex: 0, role: "application",
      "aria-label": "the text, one character at a time: arrow keys move"});
    var spans = new Array(T);
    var frag = document.createDocumentFragment();
    for (var t = 0; t < T; t++) {
      var ch = charAt(t), whole = lastByte(t);
      var sp = document.createElement("span");
      if (!whole) {
        sp.className = "sr-part";
        sp.title = "a byte of " + show(ch);
      } else if (ch === "\n") {
        sp.textContent = "\u21b5";
        sp.className = "sr-nl";
      } else {
        sp.textContent = ch;
        // isolated, so an override such as U+202E acts on nothing but itself
        if (INVISIBLE.test(ch)) { sp.className = "sr-ctl"; sp.dataset.show = codePoint(ch); }
      }
      sp.setAttribute("tabindex", "-1");
      sp.dataset.i = t;
      spans[t] = sp;
      frag.appendChild(sp);
      if (ch === "\n" && whole) frag.appendChild(document.createTextNode("\n"));
    }
    text.appendChild(frag);
    var panel = el("div", {cls: "sr-box sr-panel", "aria-live": "polite"});
    main.appendChild(units); main.appendChild(text); main.appendChild(panel);
    root.appendChild(main);

    // ---- bottom: gate saturation per layer
    var bottom = el("div", {cls: "sr-bottom"});
    (data.saturation || []).forEach(function (layer, k) {
      var gates = Object.keys(layer);
      if (!gates.length) return;
      var W = 230, L = 34, B = 30, P = 8, S = W - L - P;
      var s = svg("svg", {width: W, height: W, viewBox: "0 0 " + W + " " + W, role: "img",
        "aria-label": "gate saturation, layer " + k});
      s.appendChild(svg("rect", {x: L, y: P, width: S, height: S, fill: "#fff",
        stroke: "#d9dee3"}));
      s.appendChild(svg("line", {x1: L, y1: P, x2: L + S, y2: P + S, stroke: "#d9dee3"}));
      var xl = svg("text", {x: L + S / 2, y: W - 8, "text-anchor": "middle"});
      xl.textContent = "fraction of steps < 0.1 (off)";
      var yl = svg("text", {x: 12, y: P + S / 2, "text-anchor": "middle",
        transform: "rotate(-90 12 " + (P + S / 2) + ")"});
      yl.textContent = "fraction > 0.9 (on)";
      s.appendChild(xl); s.appendChild(yl);
      [[L, P + S + 12, "0", "middle"], [L + S, P + S + 12, "1", "middle"],
        [L - 4, P + 4, "1", "end"]].forEach(function (a) {
        var tk = svg("text", {x: a[0], y: a[1], "text-anchor": a[3]});
        tk.textContent = a[2];
        s.appendChild(tk);
      });
      gates.forEach(function (g) {
        var off = layer[g][0], on = layer[g][1];
        for (var u = 0; u < off.length; u++) {
          var c = svg("circle", {cx: L + off[u] * S, cy: P + (1 - on[u]) * S, r: 2.6,
            fill: GATE_COLOURS[g] || "#555", "fill-opacity": 0.7, "data-unit": u});
          var tt = svg("title", {});
          tt.textContent = g + " gate, unit " + u + ": off " + pct(off[u]) + ", on " + pct(on[u]);
          c.appendChild(tt);
          c.addEventListener("click", select.bind(null, k, g, u, "unit"));
          s.appendChild(c);
        }
      });
      var key = el("div", {cls: "sr-note"}, gates.map(function (g) {
        var sw = el("span", {text: "\u25cf "});
        sw.style.color = GATE_COLOURS[g];
        return el("span", null, [sw, (SIGNAL_NAMES[g] || g) + "   "]);
      }));
      bottom.appendChild(el("div", {cls: "sr-box"}, [
        el("h2", {text: "Gate saturation, layer " + k}),
        s, key]));
    });
    if (bottom.childNodes.length) {
      bottom.appendChild(el("p", {cls: "sr-note", text: "Each dot is one gate unit: how often it "
        + "is nearly closed (< 0.1) against nearly open (> 0.9) over this text, as in Karpathy, "
        + "Johnson & Fei-Fei (2016). Dots near the right or top edge act as switches; dots near "
        + "the corner (0, 0) work in their soft middle range. Click a dot to show that unit."}));
      root.appendChild(bottom);
    }

    // ---- behaviour
    function values(layer, signal) {
      var key = layer + "/" + signal;
      if (cache[key]) return Promise.resolve(cache[key]);
      if (pending[key]) return pending[key];
      var a = data.acts.layers[layer][signal], deps = a.predict || [];
      pending[key] = Promise.all([inflate(a.data, H * T)].concat(deps.map(function (d) {
        return values(layer, d);
      }))).then(function (got) {
        cache[key] = !deps.length ? got[0] : rebuild(data.cell, signal, a, got[0],
          deps.map(function (d, j) { return [d, data.acts.layers[layer][d], got[j + 1]]; }), T);
        return cache[key];
      });
      return pending[key];
    }
    function scaleOf(layer, signal) {
      var a = data.acts.layers[layer][signal];
      return [a.lo, (a.hi - a.lo) / (a.levels - 1)];
    }
    function unitValue(q, layer, signal, unit, t) {
      var sc = scaleOf(layer, signal);
      return sc[0] + q[unit * T + t] * sc[1];
    }
    var token = 0;
    function paint() {
      var my = ++token;
      bUnit.setAttribute("aria-pressed", st.view === "unit");
      bSurp.setAttribute("aria-pressed", st.view === "surprisal");
      selLayer.value = st.layer; selSignal.value = st.signal; inUnit.value = st.unit;
      unitButtons.forEach(function (b) {
        var u = b._u;
        b.setAttribute("aria-pressed", st.view === "unit" && u[0] === st.layer
          && u[1] === st.signal && u[2] === st.unit);
      });
      if (st.view === "surprisal") {
        ramp.style.background = "linear-gradient(to right, " + rgb(MID) + ", " + rgb(POS) + ")";
        lo.textContent = "0 nats"; hi.textContent = "\u2265 " + SURPRISE_MAX + " nats";
        for (var t = 0; t < T; t++) {
          var c = t === 0 ? ["", ""] : diverging(data.surprisal[t - 1] / SURPRISE_MAX);
          spans[t].style.backgroundColor = c[0]; spans[t].style.color = c[1];
        }
        root.dataset.painted = "surprisal";
        return Promise.resolve();
      }
      return values(st.layer, st.signal).then(function (q) {
        if (my !== token) return;
        var a = data.acts.layers[st.layer][st.signal];
        var gate = data.gates.indexOf(st.signal) >= 0;
        var sc = scaleOf(st.layer, st.signal), base = st.unit * T;
        var centre = gate ? 0.5 : 0, half = gate ? 0.5 : Math.max(Math.abs(a.lo), Math.abs(a.hi));
        if (st.stretch) {
          // the 2nd to 98th percentile: one outlier (the zero start state) cannot wash it out
          var sorted = q.slice(base, base + T).sort();
          var mn = sc[0] + sorted[Math.floor(0.02 * (T - 1))] * sc[1];
          var mx = sc[0] + sorted[Math.ceil(0.98 * (T - 1))] * sc[1];
          centre = (mn + mx) / 2; half = Math.max((mx - mn) / 2, 1e-9);
        }
        ramp.style.background = "linear-gradient(to right, " + rgb(NEG) + ", " + rgb(MID) + ", "
          + rgb(POS) + ")";
        lo.textContent = (centre - half).toFixed(2);
        hi.textContent = "+" + (centre + half).toFixed(2);
        for (var t = 0; t < T; t++) {
          var c = diverging((sc[0] + q[base + t] * sc[1] - centre) / half);
          spans[t].style.backgroundColor = c[0]; spans[t].style.color = c[1];
        }
        root.dataset.painted = st.layer + "/" + st.signal + "/" + st.unit;
        if (st.focus >= 0) describe(st.focus);
      });
    }
    function select(layer, signal, unit, view) {
      st.layer = +layer; st.signal = signal;
      st.unit = Math.max(0, Math.min(H - 1, +unit || 0));
      if (view) st.view = view;
      return paint();
    }
    function describe(t) {
      if (st.focus >= 0 && spans[st.focus]) spans[st.focus].classList.remove("sr-cur");
      st.focus = t;
      spans[t].classList.add("sr-cur");
      panel.textContent = "";
      var ch = charAt(t);
      if (!bytes) {
        panel.appendChild(el("h2", null, ["Character " + t + ": ", el("code", {text: show(ch)})]));
      } else {
        var span = byteSpan(t), hex = data.ids[t].toString(16).toUpperCase().padStart(2, "0");
        panel.appendChild(el("h2", null, ["Byte " + t + ": ", el("code", {text: hex})]));
        panel.appendChild(el("div", {cls: "sr-stat"}, [span[1] === 1 ? "the whole of "
          : "byte " + (t - span[0] + 1) + " of " + span[1] + " of ", el("code", {text: show(ch)})]));
      }
      if (t > 0) {
        panel.appendChild(el("div", {cls: "sr-stat"}, ["Its own probability was ",
          el("b", {text: pct(data.next_prob[t - 1])}), ", rank " + data.next_rank[t - 1] + ", "
          + fmt(data.surprisal[t - 1], 2) + " nats"]));
      }
      if (st.view === "unit" && cache[st.layer + "/" + st.signal]) {
        var v = unitValue(cache[st.layer + "/" + st.signal], st.layer, st.signal, st.unit, t);
        panel.appendChild(el("div", {cls: "sr-stat"}, ["layer " + st.layer + " \u00b7 "
          + st.signal + " \u00b7 unit " + st.unit + " = ", el("b", {text: (v >= 0 ? "+" : "")
          + v.toFixed(2)})]));
      }
      panel.appendChild(el("h2", {text: "Top " + K + " guesses for the next "
        + (bytes ? "byte" : "character"),
        style: "margin-top:10px"}));
      var next = t + 1 < T ? data.ids[t + 1] : -1;
      for (var j = 0; j < K; j++) {
        var id = data.topk_ids[t * K + j], p = data.topk_probs[t * K + j];
        var bar = el("div", {cls: "sr-bar"});
        bar.style.width = Math.max(1, Math.round(100 * p)) + "%";
        panel.appendChild(el("div", {cls: "sr-guess" + (id === next ? " sr-hit" : "")},
          [el("code", {text: showLabel(bytes ? data.guess_labels[t * K + j] : data.chars[id])}),
            el("div", null, [bar]),
            el("span", {text: pct(p)})]));
      }
      if (next >= 0) {
        panel.appendChild(el("div", {cls: "sr-stat", style: "margin-top:8px"}, ["Actual next: ",
          el("code", {text: showLabel(bytes ? data.next_labels[t] : data.chars[next])}), " ",
          el("b", {text: pct(data.next_prob[t])}), ", rank " + data.next_rank[t]
            + (data.next_rank[t] === 1 ? " (the first guess)" : "")]));
      } else {
        panel.appendChild(el("div", {cls: "sr-hint", text: "(the text ends here)"}));
      }
    }
    function idle() {
      panel.textContent = "";
      panel.appendChild(el("h2", {text: "Next-character guesses"}));
      panel.appendChild(el("p", {cls: "sr-hint", text: "Hover over a character, or click the "
        + "text and use the arrow keys, to see what the model expected next."}));
    }
    function focusChar(t) {
      t = Math.max(0, Math.min(T - 1, t));
      spans[st.cursor].setAttribute("tabindex", "-1");
      st.cursor = t;
      spans[t].setAttribute("tabindex", "0");
      spans[t].focus();
    }
    text.addEventListener("mouseover", function (e) {
      if (e.target.dataset && e.target.dataset.i !== undefined) describe(+e.target.dataset.i);
    });
    text.addEventListener("focusin", function (e) {
      if (e.target.dataset && e.target.dataset.i !== undefined) describe(+e.target.dataset.i);
      else if (e.target === text && T) focusChar(st.cursor);
    });
    text.addEventListener("click", function (e) {
      if (e.target.dataset && e.target.dataset.i !== undefined) focusChar(+e.target.dataset.i);
    });
    // The direction of t's line as the page lays it out (unicode-bidi: plaintext): that of
    // its first strong letter, right to left for the scripts of bidi classes R and AL.
    var RTL = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}]/u;
    function rightToLeft(t) {
      var i = t;
      while (i > 0 && charAt(i - 1) !== "\n") i--;
      for (; i < T && charAt(i) !== "\n"; i++) {
        if (/\p{L}/u.test(charAt(i))) return RTL.test(charAt(i));
      }
      return false;
    }
    text.addEventListener("keydown", function (e) {
      var t = st.cursor, moves = {ArrowRight: 1, ArrowLeft: -1,
        ArrowDown: 40, ArrowUp: -40, PageDown: 400, PageUp: -400};
      var across = e.key === "ArrowLeft" || e.key === "ArrowRight";
      if (e.key in moves) t += (across && rightToLeft(t) ? -1 : 1) * moves[e.key];
      else if (e.key === "Home") t = 0;
      else if (e.key === "End") t = T - 1;
      else return;
      e.preventDefault();
      focusChar(t);
    });
    bUnit.addEventListener("click", function () { st.view = "unit"; paint(); });
    bSurp.addEventListener("click", function () { st.view = "surprisal"; paint(); });
    selLayer.addEventListener("change", function () {
      select(selLayer.value, st.signal, st.unit, "unit");
    });
    selSignal.addEventListener("change", function () {
      select(st.layer, selSignal.value, st.unit, "unit");
    });
    inUnit.addEventListener("change", function () {
      select(st.layer, st.signal, inUnit.value, "unit");
    });
    chk.addEventListener("change", function () { st.stretch = chk.checked; paint(); });
    idle();
    // levels(layer, signal): a Promise of its Uint8Array (H * T) of levels, unit-major
    var api = {select: select, describe: describe, state: st, ready: null, levels: values};
    api.ready = (typeof DecompressionStream === "undefined")
      ? Promise.reject(new Error("this browser cannot inflate the data (no DecompressionStream)"))
      : paint();
    api.ready.then(function () { root.dataset.ready = "1"; }, function (err) {
      root.insertBefore(el("p", {cls: "sr-box", text: "Could not show the activations: "
        + err.message}), root.firstChild);
    });
    return api;
  }

  window.ScratchRNNInside = {render: render};
})();
