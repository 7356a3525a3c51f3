// The inspection page: a client of /v1/models and /v1/articles like any other (one code path).
// No build step and nothing fetched from elsewhere. The page's CSP allows only this origin, with no inline
// script or style: model and user text goes onto the page through textContent only, and sizes and colours
// through element.style (CSSOM), never through HTML strings.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "frontwire.token";
  // Python's str.isspace() set: the server splits and strips paragraphs with it (frontwire/paragraphs.py), and
  // JavaScript's \s differs (it has U+FEFF, lacks U+001C..U+001F and U+0085), so it is spelled out here.
  const PY_SPACE = "\\t\\n\\v\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
  const LEADING = new RegExp(`^[${PY_SPACE}]+`);
  const TRAILING = new RegExp(`[${PY_SPACE}]+$`);
  const BLANK_LINE = /\n[ \t\r\f\v]*\n/g; // split_text's _BLANK_LINE
  const FRAME_BUDGET_MS = 8; // rendering work per animation frame, so a long live blog never freezes the tab
  const MAX_RETRIES = 3; // a shed 503 is retried after its Retry-After, then shown
  const encoder = new TextEncoder();

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    config: null,
    classifier: null, // /v1/models' classifier entry: labels, thresholds, exclusive
    ner: null, // entity_types, entity_colours
    responses: [],
    queue: [],
    rendered: 0,
    expected: 0,
    running: false,
    frame: 0,
  };

  // ---- small DOM helpers (text only through textContent) ----
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = false;
  }

  function clearMessage() {
    $("message").textContent = "";
    $("message").hidden = true;
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function authHeaders() {
    return state.token ? { Authorization: `Bearer ${state.token}` } : {};
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(`HTTP ${status}: ${detail}`);
      this.status = status;
      this.detail = detail;
    }
  }

  // The server's error body is {"detail": "...", "errors": [...]}; anything else is shown as it came.
  async function apiError(response) {
    let detail = response.statusText || "error";
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string") {
        detail = body.detail;
        if (Array.isArray(body.errors) && body.errors.length) {
          detail += "\n" + body.errors.map((e) => Object.values(e).join(": ")).join("\n");
        }
      } else if (body !== undefined) {
        detail = JSON.stringify(body);
      }
    } catch (err) {
      // not JSON (a proxy's page, say): the status line is all there is
    }
    return new ApiError(response.status, detail);
  }

  async function getJson(path, withAuth) {
    const response = await fetch(path, { headers: withAuth ? authHeaders() : {}, cache: "no-store" });
    if (!response.ok) throw await apiError(response);
    return response.json();
  }

  // ---- token ----
  function askToken(reason) {
    $("token-form").hidden = false;
    $("token-message").textContent = reason || "";
    $("token").focus();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim() || null;
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    loadModels();
  });

  // ---- models header and legend ----
  async function loadModels() {
    let body;
    try {
      body = await getJson("v1/models", true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        const refused = state.token !== null;
        sessionStorage.removeItem(TOKEN_KEY);
        state.token = null;
        askToken(refused ? "The server refused that token." : "");
        $("models").replaceChildren(el("li", "muted", "a token is needed to see the models"));
        return;
      }
      showMessage(`Could not load /v1/models: ${err.message}`);
      return;
    }
    $("token-form").hidden = true;
    clearMessage();
    state.classifier = body.models.classifier || null;
    state.ner = body.models.ner || null;
    const items = Object.entries(body.models).map(([kind, model]) => {
      const item = el("li");
      item.dataset.kind = kind;
      item.append(el("b", null, kind), " ", model.name);
      const version = model.version ? ` v${model.version}` : " (model dir)";
      const alias = model.alias ? ` @${model.alias}` : "";
      const schema = model.schema ? ` · schema ${model.schema.name}@${model.schema.version}` : "";
      item.append(`${version}${alias}${schema} · ${model.backend}`);
      item.title = model.source;
      return item;
    });
    $("models").replaceChildren(...(items.length ? items : [el("li", "muted", "no models loaded")]));
    renderLegend();
  }

  function renderLegend() {
    const legend = $("legend");
    legend.replaceChildren();
    if (state.ner) {
      legend.append(el("span", "muted", "Entities:"));
      for (const type of state.ner.entity_types) {
        const key = el("span", "key");
        key.dataset.entity = type;
        const swatch = el("span", "swatch");
        swatch.style.setProperty("--ent", colour(type));
        key.append(swatch, type);
        legend.append(key);
      }
    }
    if (state.classifier) {
      legend.append(el("span", "muted", `Topics: the bar is the score, the tick the label's threshold; ` +
        `${exclusiveTopics().join(", ") || "no"} paragraphs are greyed.`));
    }
  }

  function colour(type) {
    return (state.ner && state.ner.entity_colours && state.ner.entity_colours[type]) || "#888888";
  }

  // The schema's exclusive topics (boilerplate) mark publisher chrome; their names come from the server.
  function exclusiveTopics() {
    return (state.classifier && state.classifier.exclusive) || [];
  }

  // ---- splitting, as frontwire/paragraphs.py split_text does, only to know where to cut requests ----
  function pyStrip(chunk) {
    const lead = (chunk.match(LEADING) || [""])[0].length;
    const rest = chunk.slice(lead);
    const trail = (rest.match(TRAILING) || [""])[0].length;
    return { lead, text: rest.slice(0, rest.length - trail) };
  }

  // Paragraphs with UTF-16 offsets (for slicing here) and the server's code-point offsets.
  function splitText(text) {
    const paragraphs = [];
    let position = 0;
    const breaks = [...text.matchAll(BLANK_LINE)];
    breaks.push(null);
    for (const match of breaks) {
      const chunkEnd = match ? match.index : text.length;
      const { lead, text: stripped } = pyStrip(text.slice(position, chunkEnd));
      if (stripped) paragraphs.push({ start: position + lead, end: position + lead + stripped.length });
      if (match) position = match.index + match[0].length;
    }
    return paragraphs;
  }

  function codePoints(text, from, to) {
    let count = 0;
    for (let i = from; i < to; i++) {
      const unit = text.charCodeAt(i);
      // a low surrogate after a high one is the second half of one code point
      if (!(unit >= 0xdc00 && unit <= 0xdfff && i > from && text.charCodeAt(i - 1) >= 0xd800 &&
            text.charCodeAt(i - 1) <= 0xdbff)) count++;
    }
    return count;
  }

  function jsonBytes(text) {
    return encoder.encode(JSON.stringify(text)).length - 2;
  }

  // Requests of at most max_paragraphs paragraphs, max_article_chars characters and max_body_bytes bytes; each
  // sends the article's text from its first paragraph's start to its last one's end, so the server splits it
  // into the same paragraphs and its offsets only need the request's base added.
  function plan(text) {
    const limits = state.config.limits;
    const paragraphs = splitText(text);
    const requests = [];
    let current = null;
    let cpBefore = 0;
    let cpCursor = 0;
    for (let i = 0; i < paragraphs.length; i++) {
      const p = paragraphs[i];
      cpBefore += codePoints(text, cpCursor, p.start);
      cpCursor = p.start;
      const gap = current ? text.slice(paragraphs[i - 1].end, p.start) : "";
      const body = text.slice(p.start, p.end);
      const chars = codePoints(gap, 0, gap.length) + codePoints(body, 0, body.length);
      const bytes = jsonBytes(gap) + jsonBytes(body);
      const fits = current && current.count < limits.max_paragraphs &&
        current.chars + chars <= limits.max_article_chars && current.bytes + bytes + 64 <= limits.max_body_bytes;
      if (!fits) {
        current = { start: p.start, end: p.end, cpStart: cpBefore, index: i, count: 0, chars: 0, bytes: 0 };
        requests.push(current);
        current.chars = codePoints(body, 0, body.length);
        current.bytes = jsonBytes(body);
      } else {
        current.chars += chars;
        current.bytes += bytes;
      }
      current.end = p.end;
      current.count += 1;
    }
    return requests;
  }

  function looksLikeHtml(text) {
    const head = text.slice(0, 2048).replace(LEADING, "").toLowerCase();
    return head.startsWith("<!doctype html") || head.startsWith("<html") || /<(p|div|body|article)[\s>]/.test(head);
  }

  // ---- calling /v1/articles ----
  async function postArticle(body) {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch("v1/articles", {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeaders() },
        body: JSON.stringify(body),
      });
      if (response.ok) return response.json();
      if (response.status === 503 && attempt < MAX_RETRIES) {
        const wait = Math.min(30, Number(response.headers.get("Retry-After")) || 1);
        setStatus(`server busy, retrying in ${wait} s…`);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        continue;
      }
      throw await apiError(response);
    }
  }

  async function analyse() {
    if (state.running) return;
    const source = $("article").value;
    const format = $("format").value;
    const asHtml = format === "html" || (format === "auto" && looksLikeHtml(source));
    reset();
    state.running = true;
    $("submit").disabled = true;
    try {
      if (asHtml) {
        // one request: the server's HTML reader is the one that decides the paragraphs
        setStatus("analysing the HTML page…");
        const answer = await postArticle({ html: source });
        record(answer, { index: 0, cpStart: 0, count: null });
      } else {
        const requests = plan(source);
        if (!requests.length) {
          // nothing but whitespace: the server is the one that says why that is refused (422)
          record(await postArticle({ text: source }), { index: 0, cpStart: 0, count: 0 });
        }
        state.expected = requests.reduce((sum, r) => sum + r.count, 0);
        for (let i = 0; i < requests.length; i++) {
          const r = requests[i];
          setStatus(`request ${i + 1} of ${requests.length} · ${state.rendered} of ${state.expected} paragraphs`);
          const answer = await postArticle({ text: source.slice(r.start, r.end) });
          record(answer, r);
        }
      }
      await drained();
      setStatus(`${state.rendered} paragraphs · ${state.responses.length} request(s)`);
      document.body.dataset.done = String(state.rendered);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        state.token = null;
        sessionStorage.removeItem(TOKEN_KEY);
        askToken("The server refused the token: enter it again.");
      }
      showMessage(err instanceof ApiError ? err.message : `Request failed: ${err.message || err}`);
      setStatus(`${state.rendered} paragraphs shown before the error`);
      document.body.dataset.done = "error";
    } finally {
      state.running = false;
      $("submit").disabled = false;
    }
  }

  // One response in: offsets moved to the whole article, paragraphs queued for rendering.
  function record(answer, request) {
    state.responses.push(answer);
    if (request.count !== null && answer.paragraphs.length !== request.count) {
      // the split here and the server's disagree: say so instead of hiding it
      showMessage(`The server split request ${state.responses.length} into ${answer.paragraphs.length} paragraphs, ` +
        `this page expected ${request.count}; offsets may be off.`);
    }
    for (const p of answer.paragraphs) {
      state.queue.push({ ...p, index: p.index + request.index, start: p.start + request.cpStart,
        end: p.end + request.cpStart });
    }
    if (request.count === null) state.expected = answer.paragraphs.length;
    if ($("raw-toggle").checked) renderRaw();
    schedule();
  }

  function reset() {
    cancelAnimationFrame(state.frame);
    state.frame = 0;
    Object.assign(state, { responses: [], queue: [], rendered: 0, expected: 0 });
    delete document.body.dataset.done;
    clearMessage();
    $("results").replaceChildren();
    $("raw").textContent = "";
  }

  let drainedResolvers = [];
  function drained() {
    if (!state.queue.length) return Promise.resolve();
    return new Promise((resolve) => drainedResolvers.push(resolve));
  }

  function schedule() {
    if (!state.frame) state.frame = requestAnimationFrame(renderFrame);
  }

  function renderFrame() {
    state.frame = 0;
    const started = performance.now();
    const fragment = document.createDocumentFragment();
    while (state.queue.length && performance.now() - started < FRAME_BUDGET_MS) {
      fragment.append(renderParagraph(state.queue.shift()));
      state.rendered += 1;
    }
    $("results").append(fragment);
    if (state.running) setStatus(`${state.rendered} of ${state.expected} paragraphs`);
    if (state.queue.length) {
      schedule();
    } else {
      const resolvers = drainedResolvers;
      drainedResolvers = [];
      resolvers.forEach((resolve) => resolve());
    }
  }

  // ---- one paragraph ----
  function renderParagraph(p) {
    const chrome = Array.isArray(p.labels) && p.labels.some((label) => exclusiveTopics().includes(label));
    const box = el("details", chrome ? "para chrome" : "para");
    box.dataset.index = String(p.index);
    box.dataset.labels = (p.labels || []).join(" ");
    box.open = !(chrome && $("collapse").checked);
    const summary = el("summary");
    summary.append(`¶ ${p.index + 1} · ${p.start}–${p.end}`);
    if (p.labels) summary.append(` · ${p.labels.length ? p.labels.join(", ") : "no topic"}`);
    if (chrome) summary.append(" · ", el("span", "snippet", snippet(p.text)));
    box.append(summary);
    const body = el("div", "para-body");
    if (p.scores) body.append(renderChips(p));
    const notes = [];
    body.append(renderText(p, notes));
    for (const note of notes) body.append(el("p", "note", note));
    box.append(body);
    return box;
  }

  function snippet(text) {
    const points = Array.from(text);
    return points.length > 90 ? `${points.slice(0, 90).join("")}…` : text;
  }

  function renderChips(p) {
    const chips = el("div", "chips");
    const thresholds = (state.classifier && state.classifier.thresholds) || {};
    const exclusive = exclusiveTopics();
    for (const [label, score] of Object.entries(p.scores)) {
      const on = (p.labels || []).includes(label);
      const chip = el("span", `chip${on ? " on" : ""}${exclusive.includes(label) ? " exclusive" : ""}`);
      chip.dataset.label = label;
      const threshold = thresholds[label];
      chip.title = `${label}: score ${score.toFixed(3)}` +
        (threshold === undefined ? "" : `, threshold ${threshold.toFixed(3)}`);
      const bar = el("span", "bar");
      const fill = el("span", "fill");
      fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
      bar.append(fill);
      if (threshold !== undefined) {
        const tick = el("span", "tick");
        tick.style.left = `${Math.max(0, Math.min(1, threshold)) * 100}%`;
        bar.append(tick);
      }
      chip.append(label, bar, score.toFixed(2));
      chips.append(chip);
    }
    return chips;
  }

  // Entities inline, displaCy-style. Offsets count code points (Python str), so the text is cut as code points.
  function renderText(p, notes) {
    const out = el("p", "para-text");
    const points = Array.from(p.text);
    const entities = [...(p.entities || [])].sort((a, b) => a.start - b.start || b.end - a.end);
    let cursor = 0;
    let skipped = 0;
    for (const ent of entities) {
      if (ent.start < cursor || ent.end > points.length || ent.end <= ent.start) {
        skipped += 1;
        continue;
      }
      if (ent.start > cursor) out.append(points.slice(cursor, ent.start).join(""));
      const mark = el("mark", "ent");
      mark.style.setProperty("--ent", colour(ent.label));
      mark.dataset.label = ent.label;
      mark.dataset.start = String(ent.start);
      mark.dataset.end = String(ent.end);
      mark.title = `${ent.label}: score ${Number(ent.score).toFixed(3)}`;
      const shown = points.slice(ent.start, ent.end).join("");
      mark.append(el("span", "ent-text", shown), el("span", "ent-label", ent.label));
      if (shown !== ent.text) notes.push(`entity at ${ent.start}–${ent.end}: the server's text is "${ent.text}"`);
      out.append(mark);
      cursor = ent.end;
    }
    if (cursor < points.length) out.append(points.slice(cursor).join(""));
    if (skipped) notes.push(`${skipped} overlapping or out-of-range entity span(s) not highlighted: see the raw JSON.`);
    return out;
  }

  // ---- raw JSON, built only when asked for (a long article's JSON is megabytes) ----
  function renderRaw() {
    const raw = $("raw");
    const shown = state.responses.length === 1 ? state.responses[0] : { responses: state.responses };
    raw.textContent = JSON.stringify(shown, null, 2);
  }

  $("raw-toggle").addEventListener("change", () => {
    $("raw").hidden = !$("raw-toggle").checked;
    if ($("raw-toggle").checked) renderRaw();
  });

  $("collapse").addEventListener("change", () => {
    for (const box of document.querySelectorAll(".para.chrome")) box.open = !$("collapse").checked;
  });

  // ---- input: paste, file picker, drop ----
  async function takeFile(file) {
    if (!file) return;
    try {
      $("article").value = await file.text();
    } catch (err) {
      showMessage(`Could not read ${file.name}: ${err.message || err}`);
      return;
    }
    $("format").value = /\.html?$/i.test(file.name) || file.type === "text/html" ? "html" : "text";
    if (/\.txt$/i.test(file.name) || file.type === "text/plain") $("format").value = "text";
  }

  $("file").addEventListener("change", () => takeFile($("file").files[0]));
  const area = $("article");
  area.addEventListener("dragover", (event) => {
    event.preventDefault();
    area.classList.add("dragging");
  });
  area.addEventListener("dragleave", () => area.classList.remove("dragging"));
  area.addEventListener("drop", (event) => {
    event.preventDefault();
    area.classList.remove("dragging");
    takeFile(event.dataTransfer && event.dataTransfer.files[0]);
  });

  $("article-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state.config) {
      showMessage("The server's /ui/config did not load: reload the page.");
      return;
    }
    if (state.config.auth && !state.token) {
      askToken("Enter the server's token first.");
      return;
    }
    analyse();
  });

  // ---- start ----
  async function start() {
    try {
      state.config = await getJson("ui/config", false);
    } catch (err) {
      showMessage(`Could not load /ui/config: ${err.message}`);
      return;
    }
    if (state.config.auth && !state.token) {
      askToken("");
      $("models").replaceChildren(el("li", "muted", "a token is needed to see the models"));
    } else {
      await loadModels();
    }
    document.body.dataset.ready = "1";
  }

  start();
})();
