// moviemind web page: autocomplete for liked movies, then POST /v1/recommend and read its
// server-sent events with fetch (EventSource can only GET).
"use strict";

(() => {
  const DEBOUNCE_MS = 120;
  const SUGGEST_LIMIT = 8;
  const MAX_LIKED = 50; // the API accepts at most 50 liked titles and 50 ids

  const $ = (id) => document.getElementById(id);
  const form = $("recommend-form");
  const likedInput = $("liked-input");
  const suggestions = $("suggestions");
  const chips = $("chips");
  const likedStatus = $("liked-status");
  const queryInput = $("query-input");
  const kSelect = $("k-select");
  const yearMin = $("year-min");
  const yearMax = $("year-max");
  const genresNone = $("genres-none");
  const submit = $("submit");
  const statusEl = $("status");
  const errorEl = $("error");
  const results = $("results");
  const understood = $("understood");
  const streamPanel = $("stream-panel");
  const streamText = $("stream-text");
  const streamHeading = $("stream-heading");
  const degraded = $("degraded-notice");
  const degradedTitle = $("degraded-title");
  const degradedReason = $("degraded-reason");
  const cardsHeading = $("cards-heading");
  const cards = $("cards");
  const dropped = $("dropped");
  const timingsEl = $("timings");

  /** Chosen liked movies: {id: number|null, title, year}; id null means free text. */
  const liked = [];

  // ---------- small helpers ----------

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "textContent" || k === "className" || k.startsWith("on")) node[k] = v;
      else node.setAttribute(k, v); // attributes, so ARIA works without property reflection
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  function label(m) {
    return m.year ? `${m.title} (${m.year})` : m.title;
  }

  /** On small screens the answer lands below the fold: bring it up once, without moving focus. */
  function reveal(node) {
    const box = node.getBoundingClientRect();
    if (box.top > window.innerHeight - 80) {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      node.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
    }
  }

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
    reveal(errorEl);
  }

  function clearError() {
    errorEl.textContent = "";
    errorEl.hidden = true;
  }

  function fmtMs(v) {
    if (v == null) return null;
    if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
    return v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`;
  }

  async function errorMessage(resp) {
    try {
      const body = await resp.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not JSON: fall through to the status line */ }
    return `The server answered ${resp.status} ${resp.statusText}`.trim();
  }

  // ---------- chips ----------

  function renderChips() {
    chips.replaceChildren(
      ...liked.map((m, i) =>
        el("li", { className: "chip" + (m.id == null ? " free" : ""), dataset: { testid: "chip", id: m.id ?? "" } },
          el("span", { textContent: label(m), title: m.id == null ? "typed title, matched by the server" : "" }),
          el("button", {
            type: "button",
            "aria-label": `Remove ${label(m)}`,
            textContent: "×",
            onclick: () => removeLiked(i),
          }),
        ),
      ),
    );
  }

  function addLiked(m) {
    const dup = liked.some((x) =>
      m.id != null ? x.id === m.id : x.id == null && x.title.toLowerCase() === m.title.toLowerCase());
    if (!dup && liked.length < MAX_LIKED) {
      liked.push(m);
      renderChips();
      likedStatus.textContent = `Added ${label(m)}.`;
    }
    likedInput.value = "";
    closeSuggestions();
    likedInput.focus();
  }

  function removeLiked(i) {
    const [m] = liked.splice(i, 1);
    renderChips();
    likedStatus.textContent = m ? `Removed ${label(m)}.` : "";
    likedInput.focus();
  }

  // ---------- autocomplete (WAI-ARIA combobox with a listbox popup) ----------

  let items = [];
  let active = -1;
  let debounceTimer = 0;
  let lookup = null; // AbortController of the lookup in flight
  let lookupSeq = 0;

  function closeSuggestions() {
    clearTimeout(debounceTimer);
    if (lookup) lookup.abort();
    items = [];
    active = -1;
    suggestions.replaceChildren();
    suggestions.hidden = true;
    likedInput.setAttribute("aria-expanded", "false");
    likedInput.removeAttribute("aria-activedescendant");
  }

  function setActive(i) {
    const options = suggestions.children;
    if (active >= 0 && options[active]) options[active].setAttribute("aria-selected", "false");
    active = i;
    if (active >= 0 && options[active]) {
      options[active].setAttribute("aria-selected", "true");
      options[active].scrollIntoView({ block: "nearest" });
      likedInput.setAttribute("aria-activedescendant", options[active].id);
    } else {
      likedInput.removeAttribute("aria-activedescendant");
    }
  }

  function renderSuggestions(list) {
    items = list;
    active = -1;
    if (!list.length) {
      closeSuggestions();
      likedStatus.textContent = "No matching titles; press Enter to add it as typed.";
      return;
    }
    suggestions.replaceChildren(
      ...list.map((m, i) =>
        el("li", {
          id: `suggestion-${i}`,
          role: "option",
          "aria-selected": "false",
          dataset: { id: m.id },
          // mousedown, not click: keeps focus in the input so the list does not close first
          onmousedown: (e) => { e.preventDefault(); addLiked({ id: m.id, title: m.title, year: m.year }); },
        },
        el("span", { className: "s-title", textContent: label(m) }),
        el("span", { className: "s-meta", textContent: (m.genres || []).slice(0, 3).join(", ") })),
      ),
    );
    suggestions.hidden = false;
    likedInput.setAttribute("aria-expanded", "true");
    likedStatus.textContent = `${list.length} suggestion${list.length === 1 ? "" : "s"}; use the arrow keys to choose.`;
  }

  async function fetchSuggestions(text) {
    if (lookup) lookup.abort();
    lookup = new AbortController();
    const seq = ++lookupSeq;
    try {
      const url = `/v1/movies?title=${encodeURIComponent(text)}&limit=${SUGGEST_LIMIT}`;
      const resp = await fetch(url, { signal: lookup.signal, headers: { Accept: "application/json" } });
      if (!resp.ok) return; // autocomplete is a convenience: typed text still works with Enter
      const body = await resp.json();
      // A slower, older lookup must not overwrite the list for newer text.
      if (seq === lookupSeq && likedInput.value.trim()) renderSuggestions(body.results || []);
    } catch (e) {
      if (e.name !== "AbortError") closeSuggestions();
    }
  }

  likedInput.addEventListener("input", () => {
    clearTimeout(debounceTimer);
    const text = likedInput.value.trim();
    if (!text) { closeSuggestions(); return; }
    debounceTimer = setTimeout(() => fetchSuggestions(text.slice(0, 200)), DEBOUNCE_MS);
  });

  likedInput.addEventListener("keydown", (e) => {
    const open = !suggestions.hidden && items.length > 0;
    switch (e.key) {
      case "ArrowDown":
        if (open) { e.preventDefault(); setActive((active + 1) % items.length); }
        else if (likedInput.value.trim()) { e.preventDefault(); fetchSuggestions(likedInput.value.trim()); }
        break;
      case "ArrowUp":
        if (open) { e.preventDefault(); setActive(active <= 0 ? items.length - 1 : active - 1); }
        break;
      case "Enter": {
        const text = likedInput.value.trim();
        if (open && active >= 0) {
          e.preventDefault();
          const m = items[active];
          addLiked({ id: m.id, title: m.title, year: m.year });
        } else if (text) {
          // Free text: the server resolves it (typos, "Matrix, The", "troy (2004)").
          e.preventDefault();
          addLiked({ id: null, title: text.slice(0, 200), year: null });
        } // empty input: let Enter submit the form
        break;
      }
      case "Escape":
        if (open) { e.preventDefault(); closeSuggestions(); }
        break;
      case "Backspace":
        if (!likedInput.value && liked.length) removeLiked(liked.length - 1);
        break;
      case "Tab":
        closeSuggestions();
        break;
      default:
    }
  });

  likedInput.addEventListener("blur", () => setTimeout(closeSuggestions, 0));

  // ---------- the recommend request ----------

  function buildRequest() {
    // Text typed but not added yet is what the person meant too.
    const pending = likedInput.value.trim();
    if (pending) addLiked({ id: null, title: pending.slice(0, 200), year: null });
    const yMin = parseInt(yearMin.value, 10);
    const yMax = parseInt(yearMax.value, 10);
    const avoid = genresNone.value.split(",").map((g) => g.trim()).filter(Boolean);
    return {
      liked: liked.filter((m) => m.id == null).map((m) => m.title),
      liked_ids: liked.filter((m) => m.id != null).map((m) => m.id),
      query: queryInput.value.trim(),
      k: parseInt(kSelect.value, 10) || 5,
      filters: {
        year_min: Number.isFinite(yMin) ? yMin : null,
        year_max: Number.isFinite(yMax) ? yMax : null,
        genres_none: avoid,
      },
      explain: true,
      stream: true,
    };
  }

  function resetResults() {
    clearError();
    understood.replaceChildren();
    understood.hidden = true;
    streamText.textContent = "";
    streamPanel.hidden = true;
    streamPanel.classList.remove("finished");
    streamHeading.textContent = "The model is writing…";
    degraded.hidden = true;
    degradedReason.textContent = "";
    cards.replaceChildren();
    cardsHeading.hidden = true;
    dropped.hidden = true;
    timingsEl.hidden = true;
    timingsEl.textContent = "";
    results.hidden = false;
  }

  function renderUnderstood(resolved, unresolved) {
    const groups = [];
    if (resolved && resolved.length) {
      groups.push(el("p", {},
        el("strong", { textContent: "Understood: " }),
        el("ul", {}, ...resolved.map((r) => {
          // Say what was typed when the match is not literal, and why (closest match, other year…).
          const typed = r.input && !/^\d+$/.test(r.input) && r.input.toLowerCase() !== r.title.toLowerCase()
            ? ` from “${r.input}”` : "";
          const why = typed + (r.note ? ` (${r.note})` : "");
          return el("li", { dataset: { testid: "resolved-item", id: r.id } },
            label(r), why ? el("span", { className: "note", textContent: why }) : null);
        }))));
    }
    if (unresolved && unresolved.length) {
      groups.push(el("p", { className: "unresolved" },
        el("strong", { textContent: "Not found in the catalog: " }),
        el("ul", {}, ...unresolved.map((u) =>
          el("li", { dataset: { testid: "unresolved-item" }, textContent: u })))));
    }
    understood.replaceChildren(...groups);
    understood.hidden = groups.length === 0;
  }

  function renderCards(recs) {
    cards.replaceChildren(...recs.map((r, i) =>
      el("li", { className: "card", dataset: { testid: "card", id: r.id } },
        el("h3", {},
          el("span", { className: "rank", textContent: `${i + 1}.` }),
          el("span", { className: "title", dataset: { testid: "card-title" }, textContent: r.title }),
          r.year ? el("span", { className: "year", textContent: ` (${r.year})` }) : null),
        r.genres && r.genres.length
          ? el("ul", { className: "genres", "aria-label": "Genres" }, ...r.genres.map((g) => el("li", { textContent: g })))
          : null,
        // Which of the person's movies led here: the reason below says what this one is.
        r.because
          ? el("p", { className: "because", dataset: { testid: "card-because" } },
            "Because you liked ", el("em", { textContent: label(r.because) }))
          : null,
        el("p", {
          className: "reason",
          dataset: { testid: "card-reason", source: r.reason_source || "catalog" },
          textContent: r.reason || "",
        }),
      )));
    cardsHeading.hidden = recs.length === 0;
  }

  function renderTimings(t, model) {
    if (!t) return;
    const parts = [
      ["embed", t.embed], ["search", t.search], ["first token", t.llm_first_token],
      ["model", t.llm_total], ["total", t.total],
    ].filter(([, v]) => v != null).map(([k, v]) => `${k} ${fmtMs(v)}`);
    if (model) parts.push(`model: ${model}`);
    timingsEl.textContent = parts.join(" · ");
    timingsEl.hidden = parts.length === 0;
  }

  const handlers = {
    candidates(d) {
      // The ranker's picks arrive first, with reasons from the catalog: show them at once.
      renderUnderstood(d.resolved_liked, d.unresolved_liked);
      const picks = d.candidates || [];
      renderCards(picks);
      const n = picks.length;
      statusEl.textContent = `${n} pick${n === 1 ? "" : "s"} found; the model is writing reasons…`;
      reveal(results);
    },
    reason(d) {
      // A model-written reason that passed the edge's gate replaces the catalog's for one pick.
      const card = [...cards.children].find((c) => c.dataset.id === String(d.id));
      const p = card && card.querySelector('[data-testid="card-reason"]');
      if (!p) return;
      p.textContent = d.reason || p.textContent;
      p.dataset.source = d.source || "model";
    },
    token(d) {
      if (streamPanel.hidden) {
        streamPanel.hidden = false;
        streamText.setAttribute("aria-busy", "true");
        statusEl.textContent = "The model is writing…";
      }
      streamText.append(d.text || "");
      streamText.scrollTop = streamText.scrollHeight;
    },
    recommendations(d) {
      renderUnderstood(d.resolved_liked, d.unresolved_liked);
      renderCards(d.recommendations || []);
      if (d.degraded) {
        // A model that stopped mid-answer did contribute: say so rather than "unavailable".
        const broken = (d.degraded_reason || "").startsWith("upstream_broken");
        degradedTitle.textContent = broken
          ? "The language model stopped mid-answer; the remaining picks come from the catalog alone."
          : "The language model is unavailable; these picks come from the catalog alone.";
        degradedReason.textContent = d.degraded_reason ? `(${d.degraded_reason})` : "";
        degraded.hidden = false;
      }
      const droppedTitles = [...new Set(d.dropped_titles || [])];
      const n = droppedTitles.length;
      if (n) {
        // The model's text can be long or garbled: show a short, bounded excerpt of each.
        const shown = droppedTitles.slice(0, 5).map((t) => (t.length > 60 ? `${t.slice(0, 57)}…` : t));
        dropped.textContent = `Left out ${n} title${n === 1 ? "" : "s"} the model named that ${n === 1 ? "is" : "are"} not in the catalog: ${shown.join("; ")}${n > 5 ? "; …" : ""}.`;
        dropped.hidden = false;
      }
      renderTimings(d.timings_ms, d.model);
    },
    error(d) {
      showError(d.message || "Something went wrong while the model was answering.");
    },
    done(d) {
      if (timingsEl.hidden && d) renderTimings(d.timings_ms, null);
    },
  };

  /** Parse one SSE block ("event: x\ndata: {...}") and dispatch it. */
  function dispatchBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length || !handlers[event]) return event;
    let payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch (_) {
      return event; // a malformed event is skipped; the ones after it still count
    }
    handlers[event](payload);
    return event;
  }

  async function readStream(resp) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let sawDone = false;
    for (;;) {
      const { value, done } = await reader.read();
      buf += decoder.decode(value || new Uint8Array(), { stream: !done });
      buf = buf.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (dispatchBlock(block) === "done") sawDone = true;
      }
      if (done) break;
    }
    if (buf.trim() && dispatchBlock(buf) === "done") sawDone = true;
    return sawDone;
  }

  let inFlight = null;

  function finish() {
    inFlight = null;
    submit.disabled = false;
    submit.textContent = "Recommend";
    form.removeAttribute("aria-busy");
    streamText.setAttribute("aria-busy", "false");
    streamPanel.classList.add("finished");
    streamHeading.textContent = "What the model wrote";
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (inFlight) return;
    const body = buildRequest();
    if (!body.liked.length && !body.liked_ids.length && !body.query) {
      clearError();
      showError("Add at least one movie you enjoyed, or describe what you are in the mood for.");
      likedInput.focus();
      return;
    }
    if (body.filters.year_min != null && body.filters.year_max != null && body.filters.year_min > body.filters.year_max) {
      showError("“Released from” is after “Released until”.");
      yearMin.focus();
      return;
    }
    resetResults();
    inFlight = new AbortController();
    submit.disabled = true;
    submit.textContent = "Working…";
    form.setAttribute("aria-busy", "true");
    statusEl.textContent = "Finding candidates…";
    try {
      const resp = await fetch("/v1/recommend", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: inFlight.signal,
      });
      if (!resp.ok) {
        showError(await errorMessage(resp));
        statusEl.textContent = "";
        return;
      }
      const type = resp.headers.get("Content-Type") || "";
      if (type.includes("text/event-stream")) {
        const complete = await readStream(resp);
        statusEl.textContent = complete ? "Done." : "The answer ended early.";
      } else {
        handlers.recommendations(await resp.json()); // a server that ignores stream: true
        statusEl.textContent = "Done.";
      }
    } catch (err) {
      if (err.name !== "AbortError") {
        showError("Could not reach the server. Check the connection and try again.");
        statusEl.textContent = "";
      }
    } finally {
      finish();
    }
  });
})();
