// Edits to a live document's text and the rule that moves its suggestions' spans along
// (docs/protocol.md section 6), as amplify_stream/text/edits.py has them. Offsets are UTF-16
// code units: what JavaScript string indices count, and what the service takes.
//
// A change {start_utf16, end_utf16, text} replaces [start_utf16, end_utf16) of the text the
// change before it left. After each change a span after it moves by what it inserted or
// removed; a change that overlaps the span, or inserts strictly inside it, retracts it; a
// span before it stays. Touching a span's edge is not overlapping it.

export const change = (start, end, text) => ({ start_utf16: start, end_utf16: end, text });

export function applyChange(text, c) {
  return text.slice(0, c.start_utf16) + c.text + text.slice(c.end_utf16);
}

export const applyChanges = (text, changes) => changes.reduce(applyChange, text);

const delta = (c) => c.text.length - (c.end_utf16 - c.start_utf16);

/** The spans ({start, end, ...}) after one change; those it retracts are left out. */
export function shift(spans, c) {
  const [a, b] = [c.start_utf16, c.end_utf16];
  const kept = [];
  for (const span of spans) {
    const overlaps = a < b ? a < span.end && b > span.start : span.start < a && a < span.end;
    if (overlaps) continue;
    kept.push(b <= span.start ? { ...span, start: span.start + delta(c), end: span.end + delta(c) } : span);
  }
  return kept;
}

export const shiftAll = (spans, changes) => changes.reduce(shift, spans);

const isHigh = (unit) => unit >= 0xd800 && unit <= 0xdbff;
const isLow = (unit) => unit >= 0xdc00 && unit <= 0xdfff;

/**
 * The one change that turns `before` into `after`: the differing middle, between their
 * common start and common end. Null when they are equal. Never cuts a surrogate pair in
 * two (the service refuses such offsets): an emoji replaced by another is one change of
 * the whole pair, not of its second half.
 */
export function diff(before, after) {
  if (before === after) return null;
  const most = Math.min(before.length, after.length);
  let head = 0;
  while (head < most && before.charCodeAt(head) === after.charCodeAt(head)) head += 1;
  if (head > 0 && isHigh(before.charCodeAt(head - 1))) head -= 1;
  let tail = 0;
  while (
    tail < most - head &&
    before.charCodeAt(before.length - 1 - tail) === after.charCodeAt(after.length - 1 - tail)
  )
    tail += 1;
  if (tail > 0 && isLow(before.charCodeAt(before.length - tail))) tail -= 1;
  return change(head, before.length - tail, after.slice(head, after.length - tail));
}
