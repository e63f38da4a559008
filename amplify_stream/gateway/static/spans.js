// Text offsets. The service counts code points (Python string indices); JavaScript strings
// count UTF-16 code units. The two differ by one unit per astral character (emoji, rare
// CJK: U+10000 and above) before the offset.

/** Offsets of one text that may grow at its end (a rewrite arriving in pieces). */
export class Utf16Offsets {
  #astral = []; // code point index of every astral character, ascending
  #length = 0; // code points so far

  constructor(text = "") {
    this.append(text);
  }

  /** Only the new piece is scanned: a whole rewrite costs O(n), not O(n) per piece. */
  append(piece) {
    for (const ch of piece) {
      if (ch.length === 2) this.#astral.push(this.#length);
      this.#length += 1;
    }
  }

  get length() {
    return this.#length;
  }

  /** The UTF-16 offset of code point offset `cp` (clamped to the text). */
  toUtf16(cp) {
    const at = Math.max(0, Math.min(cp, this.#length));
    return at + countWhile(this.#astral, (a) => a < at);
  }

  /** The code point offset of UTF-16 offset `u16`; inside a surrogate pair, the one after it. */
  toCodePoint(u16) {
    // The i-th astral character starts at UTF-16 offset a + i and ends 2 units later.
    return Math.max(0, u16) - countWhile(this.#astral, (a, i) => a + i + 2 <= u16);
  }
}

/** How many leading items of the ascending `list` satisfy `test` (a binary search). */
function countWhile(list, test) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (test(list[mid], mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Cuts overlapping spans ({start, end} in one text) into pieces that do not overlap:
 * each piece lists the spans covering it, shortest first. Uncovered text is left out.
 */
export function pieces(spans) {
  const cuts = [...new Set(spans.flatMap((s) => [s.start, s.end]))].sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i + 1 < cuts.length; i += 1) {
    const [start, end] = [cuts[i], cuts[i + 1]];
    const covering = spans
      .filter((s) => s.start <= start && s.end >= end)
      .sort((a, b) => a.end - a.start - (b.end - b.start));
    if (covering.length) out.push({ start, end, spans: covering });
  }
  return out;
}
