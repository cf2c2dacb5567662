// moviemind web page: autocomplete for liked movies, then POST /v1/recommend and read its
// server-sent events with fetch (EventSource can only GET). The liked list is kept in
// localStorage and the request in the URL (shareable; a reload restores it); "Not for me" and
// "Seen it" hide a film for the rest of the visit and are sent to POST /v1/feedback.
"use strict";

(() => {
  const DEBOUNCE_MS = 120;
  const SUGGEST_LIMIT = 8;
  const MAX_LIKED = 50; // the API accepts at most 50 liked titles and 50 ids
  const MAX_K = 50;
  // TMDB's poster size the cards are laid out for; the edge may name another base (a mirror).
  const DEFAULT_IMAGE_BASE = "https://image.tmdb.org/t/p/w185";
  const POSTER_W = 92;
  const POSTER_H = 138;
  const STORE_LIKED = "moviemind.liked";
  const STORE_VISITOR = "moviemind.visitor";
  const STORE_HIDDEN = "moviemind.hidden"; // sessionStorage: this visit only

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
  const seedNote = $("seed-note");
  const tmdbCredit = $("tmdb-credit");

  /** Chosen liked movies: {id: number|null, title, year}; id null means free text. */
  const liked = [];
  /** Films the person said "not for me" or "seen it" to in this visit: never shown again. */
  const hidden = new Set();
  /** The answer on screen: its request (for feedback) and the catalog facts it came with. */
  let current = { request: null, shownK: 0, imageBase: DEFAULT_IMAGE_BASE, tmdbData: false };

  // ---------- storage (private browsing or a full quota must not break the page) ----------

  function load(store, key, fallback) {
    try {
      const raw = store.getItem(key);
      return raw == null ? fallback : JSON.parse(raw);
    } catch (_) {
      return fallback;
    }
  }

  function save(store, key, value) {
    try { store.setItem(key, JSON.stringify(value)); } catch (_) { /* not kept: fine */ }
  }

  function visitorId() {
    let id = load(localStorage, STORE_VISITOR, null);
    if (typeof id !== "string" || !/^[0-9a-f-]{16,64}$/.test(id)) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      id = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
      save(localStorage, STORE_VISITOR, id);
    }
    return id;
  }

  function saveLiked() {
    save(localStorage, STORE_LIKED, liked.map((m) => ({ id: m.id, title: m.title, year: m.year })));
  }

  function restoreLiked(list) {
    liked.length = 0;
    for (const m of Array.isArray(list) ? list : []) {
      if (m && typeof m.title === "string" && m.title && liked.length < MAX_LIKED) {
        liked.push({
          id: Number.isInteger(m.id) ? m.id : null,
          title: m.title.slice(0, 200),
          year: Number.isInteger(m.year) ? m.year : null,
        });
      }
    }
    renderChips();
  }

  for (const id of load(sessionStorage, STORE_HIDDEN, [])) if (Number.isInteger(id)) hidden.add(id);

  /** Tell the edge what the person did with a pick. Fire and forget: a missing or failing
   * /v1/feedback (404 until it is deployed, 429, offline) changes nothing on the page. */
  function sendFeedback(movieId, signal) {
    const req = current.request;
    const body = { visitor: visitorId(), movie_id: movieId, signal };
    if (req) body.request = { liked_ids: req.liked_ids, query: req.query };
    try {
      fetch("/v1/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        keepalive: true,
      }).catch(() => {});
    } catch (_) { /* never let feedback break the page */ }
  }

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

  /** Accents, case and punctuation aside, as the edge compares titles. */
  function plain(text) {
    return (text || "").normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^0-9a-z]+/g, " ").trim();
  }

  /** The original title when it says something the display title does not ("La Haine" beside
   * "Hate"); null when they are the same name. */
  function otherTitle(m) {
    return m.original_title && plain(m.original_title) !== plain(m.title) ? m.original_title : null;
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
      saveLiked();
      likedStatus.textContent = `Added ${label(m)}.`;
      if (m.id != null) sendFeedback(m.id, "like");
    }
    likedInput.value = "";
    closeSuggestions();
    likedInput.focus();
  }

  function removeLiked(i) {
    const [m] = liked.splice(i, 1);
    renderChips();
    saveLiked();
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
        el("span", { className: "s-title", textContent: label(m) },
          otherTitle(m) ? el("span", { className: "s-original", textContent: ` ${otherTitle(m)}` }) : null),
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

  /** The request as the page's URL carries it: shareable, and a reload runs it again. */
  function requestUrl(seed) {
    const params = new URLSearchParams();
    for (const m of liked) {
      if (m.id != null) params.append("id", `${m.id}~${label(m)}`);
      else params.append("liked", m.title);
    }
    if (queryInput.value.trim()) params.set("q", queryInput.value.trim());
    if (kSelect.value !== "5") params.set("k", kSelect.value);
    if (yearMin.value) params.set("from", yearMin.value);
    if (yearMax.value) params.set("until", yearMax.value);
    if (genresNone.value.trim()) params.set("avoid", genresNone.value.trim());
    if (seed) params.set("more", `${seed.id}~${label(seed)}`);
    const qs = params.toString();
    return qs ? `?${qs}` : location.pathname;
  }

  /** "12~Heat (1995)" -> {id: 12, title: "Heat", year: 1995}. */
  function parseRef(text) {
    const m = /^(\d{1,10})~(.*)$/.exec(text || "");
    if (!m) return null;
    const t = /^(.*) \((\d{4})\)$/.exec(m[2]);
    return { id: parseInt(m[1], 10), title: (t ? t[1] : m[2]).slice(0, 200) || `#${m[1]}`, year: t ? parseInt(t[2], 10) : null };
  }

  /** Put the request a URL carries back into the form; true when there was one. */
  function restoreFromUrl() {
    const params = new URLSearchParams(location.search);
    const ids = params.getAll("id").map(parseRef).filter(Boolean);
    const titles = params.getAll("liked").filter(Boolean);
    const seed = parseRef(params.get("more"));
    if (!ids.length && !titles.length && !params.get("q") && !seed) return null;
    restoreLiked([...ids, ...titles.map((t) => ({ id: null, title: t, year: null }))]);
    saveLiked();
    queryInput.value = (params.get("q") || "").slice(0, 1000);
    const k = params.get("k");
    if (k && [...kSelect.options].some((o) => o.value === k)) kSelect.value = k;
    yearMin.value = /^\d{4}$/.test(params.get("from") || "") ? params.get("from") : "";
    yearMax.value = /^\d{4}$/.test(params.get("until") || "") ? params.get("until") : "";
    genresNone.value = (params.get("avoid") || "").slice(0, 500);
    return { seed };
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
    seedNote.hidden = true;
    results.hidden = false;
  }

  function removeLikedById(id) {
    const i = liked.findIndex((m) => m.id === id);
    if (i >= 0) removeLiked(i);
  }

  function renderUnderstood(resolved, unresolved, unresolvedNotes) {
    const groups = [];
    // A liked movie the page sent by id and the edge resolved: its chip can be removed by id.
    const typed = new Map(liked.filter((m) => m.id == null).map((m) => [m.title, m]));
    if (resolved && resolved.length) {
      groups.push(el("p", {},
        el("strong", { textContent: "Understood: " }),
        el("ul", {}, ...resolved.map((r) => {
          // Say what was typed when the match is not literal, and why (closest match, other year…).
          const from = r.input && !/^\d+$/.test(r.input) && plain(r.input) !== plain(r.title)
            ? ` from “${r.input}”` : "";
          const why = from + (r.note && !r.weak ? ` (${r.note})` : "");
          const item = el("li", { dataset: { testid: "resolved-item", id: r.id } },
            label(r), why ? el("span", { className: "note", textContent: why }) : null);
          if (r.weak) {
            // The match may not be the film meant: say so beside it, with a way to drop it.
            item.classList.add("weak");
            item.append(
              el("span", { className: "note weak-note", dataset: { testid: "weak-note" }, textContent: ` (${r.note})` }),
              el("button", {
                type: "button",
                className: "link-button",
                textContent: "Remove",
                "aria-label": `Remove ${label(r)} from the movies you enjoyed`,
                onclick: () => {
                  const chip = typed.get(r.input);
                  if (chip) removeLiked(liked.indexOf(chip));
                  else removeLikedById(r.id);
                  item.remove();
                },
              }),
            );
          }
          return item;
        }))));
    }
    if (unresolved && unresolved.length) {
      const notes = new Map((unresolvedNotes || []).map((n) => [n.input, n.note]));
      groups.push(el("div", { className: "unresolved" },
        el("strong", { textContent: "Not found in the catalog: " }),
        el("ul", {}, ...unresolved.map((u) =>
          el("li", { dataset: { testid: "unresolved-item" } },
            el("span", { className: "u-title", textContent: u }),
            notes.get(u) ? el("span", { className: "note", dataset: { testid: "unresolved-note" }, textContent: ` (${notes.get(u)})` }) : null)))));
    }
    understood.replaceChildren(...groups);
    understood.hidden = groups.length === 0;
  }

  function poster(r) {
    const alt = `Poster of ${label(r)}`;
    const placeholder = () => el("div", {
      className: "poster placeholder",
      role: "img",
      "aria-label": `No poster for ${label(r)}`,
      dataset: { testid: "poster-placeholder" },
    }, el("span", { textContent: (r.title || "?").trim().charAt(0).toUpperCase() }));
    if (!r.poster_path) return placeholder();
    const img = el("img", {
      className: "poster",
      src: current.imageBase.replace(/\/+$/, "") + r.poster_path,
      alt,
      width: String(POSTER_W),
      height: String(POSTER_H),
      loading: "lazy",
      decoding: "async",
      dataset: { testid: "poster" },
    });
    // A broken or missing image becomes the same tidy placeholder as a film without one.
    img.addEventListener("error", () => img.replaceWith(placeholder()), { once: true });
    return img;
  }

  function filmLinks(r) {
    const links = [];
    if (r.tmdb_id) links.push(["TMDB", `https://www.themoviedb.org/movie/${r.tmdb_id}`, "tmdb-link"]);
    if (r.imdb_id) links.push(["IMDb", `https://www.imdb.com/title/${encodeURIComponent(r.imdb_id)}/`, "imdb-link"]);
    return links;
  }

  function outLink(r, href, testid, ...children) {
    return el("a", {
      href,
      target: "_blank",
      rel: "noopener noreferrer",
      dataset: { testid },
      onclick: () => sendFeedback(r.id, "chose"),
    }, ...children);
  }

  function hideFilm(r, signal, card) {
    hidden.add(r.id);
    save(sessionStorage, STORE_HIDDEN, [...hidden]);
    sendFeedback(r.id, signal);
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    renumber();
    statusEl.textContent = `${label(r)} removed${signal === "seen" ? " (seen it)" : ""}; it will not come back in this visit.`;
    const focusTo = next && next.querySelector("button");
    if (focusTo) focusTo.focus();
    cardsHeading.hidden = cards.children.length === 0;
  }

  function renumber() {
    [...cards.children].forEach((c, i) => {
      const rank = c.querySelector(".rank");
      if (rank) rank.textContent = `${i + 1}.`;
    });
  }

  function renderCards(recs) {
    const shown = recs.filter((r) => !hidden.has(r.id)).slice(0, current.shownK || recs.length);
    cards.replaceChildren(...shown.map((r, i) => {
      const links = filmLinks(r);
      const art = poster(r);
      const card = el("li", { className: "card", dataset: { testid: "card", id: r.id } });
      const other = otherTitle(r);
      card.append(
        // The poster opens the film's page (TMDB first); without a page it is just a picture.
        links.length ? outLink(r, links[0][1], "poster-link", art) : art,
        el("div", { className: "card-body" },
          el("h3", {},
            el("span", { className: "rank", textContent: `${i + 1}.` }),
            el("span", { className: "title", dataset: { testid: "card-title" }, textContent: r.title }),
            r.year ? el("span", { className: "year", textContent: ` (${r.year})` }) : null),
          other ? el("p", { className: "original-title", dataset: { testid: "card-original" }, textContent: other }) : null,
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
          links.length
            ? el("p", { className: "film-links small" }, ...links.flatMap(([name, href, testid], j) => [
              j ? " · " : null, outLink(r, href, testid, `${name} page`)]).filter(Boolean))
            : null,
          el("div", { className: "card-actions" },
            el("button", {
              type: "button", className: "more", dataset: { testid: "more-like-this" },
              textContent: "More like this", "aria-label": `More like ${label(r)}`,
              onclick: () => moreLikeThis(r),
            }),
            el("button", {
              type: "button", className: "quiet", dataset: { testid: "not-for-me" },
              textContent: "Not for me", "aria-label": `Not for me: ${label(r)}`,
              onclick: () => hideFilm(r, "dislike", card),
            }),
            el("button", {
              type: "button", className: "quiet", dataset: { testid: "seen-it" },
              textContent: "Seen it", "aria-label": `Seen it: ${label(r)}`,
              onclick: () => hideFilm(r, "seen", card),
            })),
        ),
      );
      return card;
    }));
    cardsHeading.hidden = shown.length === 0;
    showCredit(shown.some((r) => r.poster_path || r.tmdb_id));
  }

  /** TMDB's terms ask for this credit wherever its data or images are shown. */
  function showCredit(tmdbShown) {
    tmdbCredit.hidden = !(tmdbShown || current.tmdbData);
  }

  function takeCatalog(d) {
    const c = d && d.catalog;
    if (!c) return;
    if (typeof c.image_base === "string" && /^(https?:)?\/\//.test(c.image_base)) current.imageBase = c.image_base;
    current.tmdbData = Boolean(c.tmdb_data);
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
      takeCatalog(d);
      renderUnderstood(d.resolved_liked, d.unresolved_liked, d.unresolved_notes);
      renderCards(d.candidates || []);
      const n = cards.children.length;
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
      takeCatalog(d);
      renderUnderstood(d.resolved_liked, d.unresolved_liked, d.unresolved_notes);
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

  /** Run one recommend request and show its answer. `seed`: the film "More like this" was
   * clicked on (the request is seeded by it alone; the liked list stays as it is). */
  async function run(body, seed) {
    if (inFlight) inFlight.abort();
    resetResults();
    // Hidden films would be filtered out of the answer: ask for that many more.
    current = { ...current, request: body, shownK: body.k };
    const sent = { ...body, k: Math.min(MAX_K, body.k + hidden.size) };
    history.replaceState(null, "", requestUrl(seed));
    if (seed) {
      seedNote.replaceChildren("More like ", el("em", { textContent: label(seed) }),
        body.query ? ` (mood kept: “${body.query}”)` : "", " · ",
        el("button", {
          type: "button", className: "link-button", textContent: "back to your list",
          onclick: () => form.requestSubmit(),
        }));
      seedNote.hidden = false;
    }
    const controller = new AbortController();
    inFlight = controller;
    submit.disabled = true;
    submit.textContent = "Working…";
    form.setAttribute("aria-busy", "true");
    statusEl.textContent = "Finding candidates…";
    try {
      const resp = await fetch("/v1/recommend", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(sent),
        signal: controller.signal,
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
        console.error(err); // a bug on the page lands here too: keep it findable
        showError("Could not reach the server. Check the connection and try again.");
        statusEl.textContent = "";
      }
    } finally {
      // A newer request (More like this during an answer) owns the form now.
      if (inFlight === controller) finish();
    }
  }

  function moreLikeThis(r) {
    const body = buildRequest();
    body.liked = [];
    body.liked_ids = [r.id];
    run(body, { id: r.id, title: r.title, year: r.year });
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
    run(body, null);
  });

  // ---------- start: the URL's request, else the liked list of the last visit ----------

  const fromUrl = restoreFromUrl();
  if (fromUrl) {
    const body = buildRequest();
    if (fromUrl.seed) {
      body.liked = [];
      body.liked_ids = [fromUrl.seed.id];
    }
    if (body.liked.length || body.liked_ids.length || body.query) run(body, fromUrl.seed);
  } else {
    restoreLiked(load(localStorage, STORE_LIKED, []));
  }
})();
