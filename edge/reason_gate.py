"""The one place that decides whether a model-written reason may be shown.

A reason is shown only if it is a sentence about this movie. Small models put many other things
where a reason belongs: other candidates' titles, "[3]" list markers, genre lists, genres the
movie does not have, names the catalog never mentions, the prompt echoed back, the user's voice
("I loved it"), the line before repeated. Each is a named rejection; the caller keeps the
catalog reason and counts the name. The tests run this gate over a corpus of real SmolLM2
output (tests/data/reason_corpus.jsonl).

Over 400 lines on purpose: every rule sits beside the word lists it reads, so one file says
all that decides whether a model sentence reaches a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher

import msgspec

from moviemind_core.catalog import Movie, lookup_key, title_names

MIN_WORDS = 5
MAX_WORDS = 45
MAX_CHARS = 280
# Claims (words beyond film talk) the catalog does not back that make a sentence fiction rather
# than a reason. Read off SmolLM2's sentences on the benchmark set: from 7 on, every one was
# invented detail or filler ("humans controlled by powerful corporations" for The Matrix); at 6
# true sentences start to fall ("a gritty portrayal of racial violence" for American History X).
MAX_UNBACKED = 7

# Rejection names (the `reason` label of the edge's rejection counter).
EMPTY = "empty"
TRUNCATED = "truncated"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
LIST_MARKER = "list_marker"
OTHER_TITLE = "other_title"
FIRST_PERSON = "first_person"
KEYWORD_LIST = "keyword_list"
WRONG_GENRE = "wrong_genre"
UNKNOWN_NAME = "unknown_name"
UNKNOWN_WORD = "unknown_word"
UNBACKED = "unbacked"
WRONG_YEAR = "wrong_year"
NUMBER = "number"
ECHO = "echo"
REPEAT = "repeat"
UNSUPPORTED = "unsupported"
INVENTED_PLOT = "invented_plot"
META = "meta"
CHATTY = "chatty"
REJECTIONS = (
    EMPTY,
    TRUNCATED,
    TOO_SHORT,
    TOO_LONG,
    LIST_MARKER,
    OTHER_TITLE,
    FIRST_PERSON,
    KEYWORD_LIST,
    WRONG_GENRE,
    UNKNOWN_NAME,
    UNKNOWN_WORD,
    WRONG_YEAR,
    NUMBER,
    ECHO,
    REPEAT,
    UNSUPPORTED,
    INVENTED_PLOT,
    UNBACKED,
    META,
    CHATTY,
)

# Words that claim a genre, by the catalog genre (or keyword) that makes them true. "War" and
# "family" are left out on purpose: they are also plain topics ("a movie about war").
_GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "adventure": ("adventure",),
    "crime": ("crime", "heist", "gangster", "mob", "detective", "police", "cop"),
    "drama": ("drama",),
    "dramatic": ("drama",),
    "kids": ("children", "animation", "family"),
    "comedy": ("comedy",),
    "comedies": ("comedy",),
    "comedic": ("comedy",),
    "funny": ("comedy",),
    "laughs": ("comedy",),
    "laugh": ("comedy",),
    "laughing": ("comedy",),
    "laughter": ("comedy",),
    "humor": ("comedy",),
    "humour": ("comedy",),
    "humorous": ("comedy",),
    "hilarious": ("comedy",),
    "rom-com": ("comedy",),
    "scary": ("horror",),
    "terrifying": ("horror",),
    "horror": ("horror",),
    "romance": ("romance",),
    "romantic": ("romance",),
    "thriller": ("thriller",),
    "thrillers": ("thriller",),
    "sci-fi": ("sci-fi", "science fiction"),
    "animated": ("animation",),
    "animation": ("animation",),
    "cartoon": ("animation",),
    "western": ("western",),
    "musical": ("musical", "music"),
    "documentary": ("documentary",),
    "fantasy": ("fantasy",),
    "mystery": ("mystery",),
    "superhero": ("superhero",),
}

_LIST_MARKER = re.compile(
    r"\[\d{1,3}\]|\(\d{4}\)|^\s*(?:\d{1,2}[.)]|[-*•])\s|(?:^|\s)\d{1,2}[.)]\s+[A-Z\"“]|\*\*|\|"
)
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I’m|I've|I’ve|I'd|I’d|me|my|myself)\b")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)s?\b")
# Talk about the film as a product (its genre, release, remakes) instead of about the film:
# SmolLM2's way of filling a line ("reimagined in various ways to fit different genres").
_META = re.compile(
    r"\b(?:genres?|released|DVD|remake|remade|reimagined|box office|sequels?|franchises?)\b", re.I
)
# Trailing off and exclaiming: the model chatting ("... it was hilarious!"), not describing.
_CHATTY = re.compile(r"\.\.\.|…|!")
# Letters of any script: "Ramón Menéndez" is two words, not "Ram", "n", "Men", "ndez".
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-])*")
_SENTENCE_END = re.compile(r"[.!?](?=[\"'”’)]?(?:\s|$))")
# Capitalised words that are ordinary at any position (not names a model could invent).
_COMMON_CAPS = frozenset(
    [
        "A",
        "An",
        "The",
        "It",
        "Its",
        "It's",
        "This",
        "That",
        "These",
        "Those",
        "Their",
        "They",
        "He",
        "She",
        "His",
        "Her",
        "Both",
        "Each",
        "Every",
        "With",
        "And",
        "But",
        "Or",
        "If",
        "As",
        "In",
        "On",
        "At",
        "Of",
        "For",
        "From",
        "To",
        "By",
        "Like",
        "Unlike",
        "Fans",
        "Here",
        "There",
        "What",
        "When",
        "While",
        "Where",
        "Who",
        "Why",
        "How",
        "One",
        "Two",
        "Three",
        "Part",
        "Also",
        "Not",
        "No",
        "Yes",
        "OK",
    ]
)


class GateContext(msgspec.Struct, frozen=True):
    """What the gate knows about one answer: the picks, the liked movies, the prompt."""

    picks: tuple[Movie, ...]
    liked: tuple[Movie, ...]
    prompt: str = ""
    # Lower-case words known to exist (see known_words); empty turns the unknown-word rule off.
    vocabulary: frozenset[str] = frozenset()


META_WORDS = (
    "genre", "genres", "released", "DVD", "franchise", "franchises", "sequel", "sequels", "remake",
    "remade", "reimagined",
)  # fmt: skip
FIRST_PERSON_WORDS = ("I", "I'm", "I've", "I'd", "me", "my", "My", "myself")


def forbidden_words(m: Movie) -> list[str]:
    """Words a reason about `m` can only use to break a rule: genre claims the catalog does not
    back for it, talk about the film as a product, the user's voice. The edge steers the model
    away from them (edge/steering.py); the rules below still judge whatever it writes."""
    return [*_unbacked_genre_words(m), *META_WORDS, *FIRST_PERSON_WORDS]


def _unbacked_genre_words(m: Movie) -> list[str]:
    """The genre claims ("funny", "horror") that no genre or keyword of `m` backs."""
    have = _genre_names(m) | {k.lower() for k in m.keywords}
    return [w for w, needs in _GENRE_WORDS.items() if not any(n in h for n in needs for h in have)]


def _norm(text: str) -> str:
    return " " + lookup_key(text) + " "


def _title_keys(m: Movie) -> set[str]:
    """Lookup keys a mention of `m` may take: its display, original and alternate titles."""
    keys = {lookup_key(name) for name in title_names(m)}
    # A one-word title that is also an ordinary word ("Heat", "Smoke") cannot be told from the
    # word; only titles of two words or a long single word count as mentions.
    return {k for k in keys if len(k) >= 6 or " " in k}


def _capitalised(m: Movie, text: str) -> bool:
    """`m`'s title appears in `text` with its own capitals: "About Time" the film, not "about
    time travel" (a title of ordinary words is only a title when written as one)."""
    words = [w for w in re.findall(r"\w+", m.title) if w[:1].isupper()]
    return all(re.search(rf"\b{re.escape(w)}\b", text) for w in words)


def _genre_names(m: Movie) -> set[str]:
    return {g.lower() for g in m.genres}


def _genre_terms(m: Movie) -> set[str]:
    """Words that name one of `m`'s genres: "war", "noir" (Film-Noir), "family" (Children)."""
    terms = {part for g in _genre_names(m) for part in re.split(r"[-\s]+", g)}
    if terms & {"children", "family"}:
        terms.add("family")
    return terms - {"film"}


def _allowed_names(m: Movie, ctx: GateContext) -> set[str]:
    """Capitalised words the catalog supports for a reason about `m`."""
    texts = [m.title, m.overview, " ".join(m.keywords), " ".join(m.genres), " ".join(m.cast)]
    texts += [m.director or ""] + [lm.title for lm in ctx.liked]
    return {w.lower().strip("'’") for t in texts for w in _WORD.findall(t)}


def clean(raw: str, finished: bool) -> str:
    """The shown form of a model's line: trimmed, an unfinished last sentence cut off (when the
    answer hit its token cap), first letter capitalised. "" when no whole sentence remains."""
    text = raw.strip().strip("\"'“”").strip()
    text = re.sub(r"^[:\-–—]\s*", "", text)
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not finished or not ends or ends[-1] < len(text.rstrip("\"'”’) ")):
        # Keep whole sentences only: a reason cut mid-word reads as broken.
        text = text[: ends[-1]] if ends else ""
    text = text.strip()
    return text[:1].upper() + text[1:]


def check(reason: str, movie: Movie, ctx: GateContext, earlier: Sequence[str] = ()) -> str | None:
    """None if `reason` may be shown for `movie`, else the name of the first rule it breaks."""
    if not reason.strip():
        return EMPTY
    words = _WORD.findall(reason)
    if len(words) < MIN_WORDS:
        return TOO_SHORT
    if len(words) > MAX_WORDS or len(reason) > MAX_CHARS:
        return TOO_LONG
    # The movie's own title may hold digits, a year in brackets or six words of the prompt
    # ("2001: A Space Odyssey is ..."), and a clause copied from its own plot may name years,
    # numbers or words a reason could not otherwise use ("released from prison"): the rules
    # below judge what is said about the movie beyond the catalog's own words.
    body = _without_own_title(_without_copies(reason, movie.overview), movie)
    if _LIST_MARKER.search(body):
        return LIST_MARKER
    padded = _norm(reason)
    own = _title_keys(movie)
    # A one-word title ("Dinosaur") is a word of the movie's own catalog text as often as a
    # mention: "Jurassic World ... a genetically engineered dinosaur escapes".
    own_words = set(_norm(" ".join((movie.overview, *movie.keywords))).split())
    for other in (*ctx.picks, *ctx.liked):
        if other.id == movie.id:
            continue
        if any(
            f" {k} " in padded and not any(k in o for o in own) and (" " in k or k not in own_words)
            for k in _title_keys(other)
        ) and _capitalised(other, reason):
            return OTHER_TITLE
    if _FIRST_PERSON.search(body):
        return FIRST_PERSON
    if _is_keyword_list(_without_own_title(reason, movie), movie):
        return KEYWORD_LIST
    lacks = set(_unbacked_genre_words(movie))
    for w in (w.lower() for w in re.findall(r"[A-Za-z][A-Za-z\-]*", body)):
        if any(part in lacks for part in (w, *w.split("-"))):
            return WRONG_GENRE
    if _unknown_name(reason, movie, ctx):
        return UNKNOWN_NAME
    if ctx.vocabulary and _unknown_word(body, ctx.vocabulary):
        return UNKNOWN_WORD
    years = {int(y) for y in _YEAR.findall(body)}
    if years - {movie.year}:
        return WRONG_YEAR
    if re.search(r"\d", _YEAR.sub("", body)):
        # Counts, ages, percentages: the catalog gives the model none, so they are made up.
        return NUMBER
    # Copying the prompt is an echo even where the prompt holds the plot.
    if _echoes(_without_own_title(reason, movie), ctx.prompt):
        return ECHO
    if not _supported(reason, movie):
        return UNSUPPORTED
    if _invents_plot(body, movie):
        return INVENTED_PLOT
    if len(_unbacked_claims(body, movie)) >= MAX_UNBACKED:
        return UNBACKED
    if _META.search(body):
        return META
    if _CHATTY.search(body):
        return CHATTY
    if repeats(reason, earlier):
        return REPEAT
    return None


def repeats(reason: str, earlier: Sequence[str]) -> bool:
    """`reason` reads almost like one shown before it in the same answer (80% alike)."""
    key = lookup_key(reason)
    for e in earlier:
        sm = SequenceMatcher(None, key, lookup_key(e))
        # The quick upper bounds rule most pairs out before the full comparison.
        if sm.real_quick_ratio() >= 0.8 and sm.quick_ratio() >= 0.8 and sm.ratio() >= 0.8:
            return True
    return False


def _without_own_title(reason: str, movie: Movie) -> str:
    """`reason` with mentions of the movie's own title (full or short) replaced by "It"."""
    out = reason
    # Alternate names only when they cannot be ordinary words ("Hate" is La Haine's).
    names = {n for n in title_names(movie) if n == movie.title or " " in n or len(n) >= 6}
    for title in sorted(names, key=len)[::-1]:
        if title:
            # Whole words only: "M" is a title, and the m of "film" is not a mention of it.
            pattern = (r"\b" if title[0].isalnum() else "") + re.escape(title)
            pattern += r"\b" if title[-1].isalnum() else ""
            out = re.sub(pattern, "It", out, flags=re.I)
    return out


def _without_copies(text: str, source: str, min_words: int = 6) -> str:
    """`text` with every run of `min_words` or more words copied from `source` (the movie's
    plot) replaced by "it", longest runs first."""
    words = source.rstrip(".").split()
    if len(words) < min_words:
        return text
    low = text.lower()
    for n in range(len(words), min_words - 1, -1):
        for i in range(len(words) - n + 1):
            span = " ".join(words[i : i + n]).rstrip(".,;:").lower()
            at = low.find(span)
            while at >= 0:
                text = text[:at] + "it" + text[at + len(span) :]
                low = text.lower()
                at = low.find(span)
    return text


# Words that hold a sentence together; a bare list of keywords has almost none.
_GLUE = frozenset(
    {"a", "an", "the", "is", "are", "about", "with", "of", "in", "from", "for", "that"}
)


def _is_keyword_list(reason: str, movie: Movie) -> bool:
    """A bare list ("Action, adventure; space marines, sequel") rather than a sentence. A
    sentence that ends in a list ("... offers a blend of humor, adventure, and heart") has one
    long clause before it, and is not one."""
    segments = [s.strip() for s in re.split(r"[,;]", reason.rstrip(".")) if s.strip()]
    short = sum(len(s.split()) <= 3 for s in segments)
    if (
        len(segments) >= 3
        and short >= len(segments) - 1
        and max(len(s.split()) for s in segments) <= 6
    ):
        return True
    facts = {w.lower() for t in (*movie.genres, *movie.keywords) for w in _WORD.findall(t)}
    words = [w.lower() for w in _WORD.findall(reason)]
    glue = sum(w in _GLUE for w in words)
    return bool(words) and glue < 3 and sum(w in facts for w in words) / len(words) > 0.6


def _stems(text: str) -> set[str]:
    return {w.lower()[:5] for w in _WORD.findall(text) if len(w) >= 4}


def _supported(reason: str, movie: Movie) -> bool:
    """At least one word of the reason is backed by the catalog's facts about this movie (its
    genres, keywords, overview): "You will enjoy its plot and characters" says nothing."""
    facts = _stems(" ".join((*movie.genres, *movie.keywords, movie.overview)))
    facts -= _GENERIC_STEMS
    # Short genre names ("war") are below the stem length; as whole words they are facts too.
    named = {w.lower() for w in re.findall(r"[A-Za-z]+", reason)} & _genre_terms(movie)
    return bool(_stems(reason) & facts or named)


# People a plot summary is about. A small model invents them freely ("a young woman who can
# control water"); one the catalog's own text does not mention makes the reason fiction.
_PERSONS = frozenset(
    [
        "man",
        "men",
        "woman",
        "women",
        "girl",
        "girls",
        "boy",
        "boys",
        "couple",
        "friends",
        "friend",
        "teenager",
        "teenagers",
        "teen",
        "teens",
        "student",
        "students",
        "child",
        "mathematician",
        "scientist",
        "doctor",
        "detective",
        "hero",
        "heroes",
        "heroine",
        "soldier",
        "soldiers",
        "family",
        "daughter",
        "son",
        "mother",
        "father",
        "brother",
        "sister",
        "wife",
        "husband",
        "king",
        "queen",
        "prince",
        "princess",
        "robot",
        "creature",
        "monster",
        "monsters",
        "group",
        "team",
        "character",
        "characters",
        "people",
        "person",
        "kids",
        "orphan",
        "orphans",
        "genius",
    ]
)


def _invents_plot(reason: str, movie: Movie) -> bool:
    """Names a person the catalog does not, or says what the movie is about with a word the
    catalog does not back ("a documentary about music" for one about a family trial)."""
    text = " ".join((movie.title, *movie.keywords, movie.overview, *movie.genres))
    facts = _stems(text) | {w.lower() for w in _WORD.findall(text)}
    # A "family film" is its genre, not a person in its plot.
    facts |= {t[:5] for t in _genre_terms(movie)}
    # Capitalised words are names ("Adrienne King"): the name rule judges those.
    words = [w for w in _WORD.findall(reason) if not w[0].isupper()]
    for w in words:
        if w in _PERSONS and w[:5] not in facts and w.rstrip("s")[:5] not in facts:
            return True
    for m in re.finditer(
        r"\b(?:about|follows|on|explores)\s+((?:[A-Za-z'’\-]+\s+){0,3}?)([A-Za-z'’\-]{4,})", reason
    ):
        if m.group(2).lower()[:5] not in facts | _GENERIC_STEMS:
            return True
    return False


# Film talk: words any reason may use without the catalog backing them ("a gripping,
# timeless classic"). Every other word of four letters or more is a claim about the movie.
_FILM_TALK = frozenset((
    "about", "acclaimed", "across", "action-packed", "adventure", "adventures", "after",
    "against", "also", "anybody", "anyone", "anything", "atmosphere", "atmospheric", "audience",
    "audiences", "been", "before", "beginning", "being", "beloved", "best", "between", "blend",
    "blending", "blends", "both", "bring", "brings", "buff", "buffs", "captivate", "captivated",
    "captivates", "captivating", "cast", "character", "characters", "charming", "choice",
    "cinema", "cinematic", "cinematography", "classic", "classics", "clever", "combine",
    "combined", "combines", "combining", "comedic", "compelling", "complex", "complexities",
    "complexity", "critics", "cult", "dark", "darker", "darkest", "darkly", "deep", "delightful",
    "depth", "detailed", "direction", "drama", "dramatic", "during", "each", "edge", "element",
    "elements", "emotional", "emotionally", "ending", "enduring", "engaging", "enjoyable",
    "entertaining", "entertainment", "epic", "even", "evening", "every", "everything",
    "excellent", "excitement", "exciting", "experience", "explore", "explores", "exploring",
    "family", "family-friendly", "fans", "fast-paced", "favorite", "favourite", "film", "films",
    "fine", "friday", "from", "funny", "genre", "genres", "good", "grand", "great", "greatest",
    "gripping", "haunting", "have", "heart", "hearted", "heartfelt", "heartwarming", "here",
    "high-stakes", "humor", "humorous", "humour", "iconic", "ideal", "intense", "intensity",
    "into", "intriguing", "it's", "journey", "just", "keep", "keeping", "keeps", "kind",
    "layered", "leave", "leaves", "leaving", "light", "light-hearted", "lighthearted", "little",
    "lots", "lover", "lovers", "made", "make", "makes", "making", "many", "masterful",
    "masterfully", "masterpiece", "memorable", "mixture", "moment", "moments", "more", "most",
    "movie", "movies", "moving", "much", "must", "must-see", "must-watch", "narrative", "night",
    "nothing", "nuanced", "offer", "offering", "offers", "ones", "over", "paced", "packed",
    "perfect", "performance", "performances", "picture", "plot", "plots", "poignant", "powerful",
    "praised", "provoking", "recommendation", "resonant", "rich", "richly", "ride", "romance",
    "romantic", "scope", "score", "seat", "seats", "smart", "some", "something", "sort",
    "soundtrack", "stakes", "still", "stories", "story", "storytelling", "stunning", "style",
    "stylish", "stylishly", "such", "suspense", "suspenseful", "sweeping", "tale", "tales",
    "tense", "tension", "than", "that", "their", "them", "theme", "themes", "then", "there",
    "these", "they", "this", "those", "thought", "thought-provoking", "thrill", "thriller",
    "thrilling", "thrills", "through", "time", "timeless", "times", "touching", "trope", "tropes",
    "twist", "twists", "type", "underbelly", "undercurrent", "undertones", "unforgettable",
    "unique", "very", "viewer", "viewers", "visual", "visuals", "want", "wants", "watch",
    "watched", "watching", "ways", "what", "when", "where", "which", "while", "whom", "widely",
    "with", "within", "without", "witty", "worldwide", "you'll", "you're", "your", "yourself",

    "that's", "there's", "they're", "it'll", "themselves", "himself", "herself", "itself",
    "example", "face", "sure", "same", "right", "years", "come", "comes", "ever", "never",
    "always", "often", "until", "along", "among", "alike", "adds", "extra", "layer", "touch",
    "dash", "like", "love", "loves", "looking", "world", "life", "really", "truly", "become",
    "becomes", "part", "lots", "afraid", "laugh", "laughs", "hilarious", "amazing",
))  # fmt: skip


def _unbacked_claims(reason: str, movie: Movie) -> list[str]:
    """Words of the reason that are neither film talk nor backed by the catalog's facts."""
    facts = _stems(
        " ".join(
            (movie.title, *movie.genres, *movie.keywords, movie.overview, *movie.cast)
            + ((movie.director,) if movie.director else ())
        )
    )
    return [
        w
        for w in _WORD.findall(reason)
        if len(w) >= 4
        and not w[0].isupper()
        and w.lower() not in _FILM_TALK
        and w.lower()[:5] not in facts
    ]


# Words so general that sharing them with the catalog shows nothing (prefixes of 5 letters).
_GENERIC_STEMS = frozenset(
    w[:5]
    for w in [
        "movie",
        "movies",
        "film",
        "films",
        "story",
        "stories",
        "about",
        "their",
        "there",
        "where",
        "which",
        "while",
        "with",
        "this",
        "that",
        "these",
        "those",
        "from",
        "into",
        "when",
        "what",
        "have",
        "been",
        "will",
        "your",
        "they",
        "them",
        "other",
    ]
)


def _unknown_name(reason: str, movie: Movie, ctx: GateContext) -> bool:
    """A capitalised word mid-sentence that nothing in the catalog says about this movie or the
    liked ones: the model inventing a director, a character or another film."""
    allowed = _allowed_names(movie, ctx)
    for sentence in re.split(r"(?<=[.!?])\s+", reason):
        for i, w in enumerate(_WORD.findall(sentence)):
            if i == 0 or not w[0].isupper() or w in _COMMON_CAPS:
                continue
            if w.lower().strip("'’") not in allowed and w.lower().split("'")[0] not in allowed:
                return True
    return False


def _echoes(reason: str, prompt: str) -> bool:
    """Six words in a row copied from the prompt, or the prompt's own labels."""
    if re.match(r"\s*(?:I enjoyed|Mood|Picked for me)\b", reason):
        return True
    if not prompt:
        return False
    words = lookup_key(reason).split()
    source = _norm(prompt)
    return any(f" {' '.join(words[i : i + 6])} " in source for i in range(len(words) - 5))


# Words of film talk that neither MiniLM's word pieces nor a catalog's text need to hold.
_REVIEW_WORDS = frozenset((
    "captivate", "captivated", "captivating", "underbelly", "resonant", "poignant", "immersive",
    "romp", "unnerving", "relatable", "evoke", "mystique", "heartache", "heartwarming", "clunky",
    "classy", "subculture", "undertones", "understated", "unrelenting", "unforgiving",
    "unspeakable", "unimaginable", "undercurrent", "misdirection", "wrenching", "heartfelt",
    "bittersweet", "masterfully", "seamlessly", "whimsical", "swashbuckling", "tearjerker",
    "slapstick", "zany", "skit", "irreverent", "irreverence", "disparate", "tyranny",
    "gunslinger", "relativism",
))  # fmt: skip
_PREFIXES = ("un", "re", "mis", "under", "over", "non", "dis", "in", "im", "out", "self")
_SUFFIXES = (
    "ingly", "edly", "ness", "ment", "ments", "able", "ally", "ing", "ers", "est", "ful", "ity",
    "ism", "ist", "ous", "ive", "ian", "ies", "ied", "ed", "es", "er", "ly", "al", "ic", "s", "d",
    "y",
)  # fmt: skip


def known_words(texts: Iterable[str], extra: Iterable[str] = ()) -> frozenset[str]:
    """The vocabulary the unknown-word rule accepts: every word of `texts` (a catalog's titles,
    overviews, keywords, people), `extra` (e.g. the embedder's word pieces) and film talk."""
    words = {w.lower() for t in texts for w in _WORD.findall(t)}
    words |= {w.lower() for w in extra if w.isalpha()}
    return frozenset(words | _REVIEW_WORDS)


def _is_word(part: str, vocabulary: frozenset[str], depth: int = 0) -> bool:
    """`part` or what is left of it after common affixes is a known word."""
    if part in vocabulary or (depth == 0 and len(part) <= 3):
        return True
    if depth > 2:
        return False
    for suf in _SUFFIXES:
        if part.endswith(suf) and len(part) - len(suf) >= 3:
            base = part[: -len(suf)]
            for b in (
                base,
                base + "e",
                base[:-1] if base[-1:] == base[-2:-1] else "",
                base[:-1] + "y" if base.endswith("i") else "",
            ):
                if b and _is_word(b, vocabulary, depth + 1):
                    return True
    return any(
        part.startswith(pre)
        and len(part) - len(pre) >= 4
        and _is_word(part[len(pre) :], vocabulary, depth + 1)
        for pre in _PREFIXES
    )


def _unknown_word(reason: str, vocabulary: frozenset[str]) -> bool:
    """A word no dictionary here knows ("a delightful rompione"): a small model's typing error
    or an invented word. Capitalised words are the name rule's business."""
    for w in _WORD.findall(reason):
        if w[0].isupper():
            continue
        for part in re.split(r"[-'’]", w.lower()):
            if part and not _is_word(part, vocabulary):
                return True
    return False
