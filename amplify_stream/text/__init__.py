"""Text structure, with exact code point offsets, shared by every part that cuts a text:

- ``paragraphs``: where paragraphs begin and end;
- ``sentences``: the one rule of sentence boundaries, for a whole text and for text that
  arrives in pieces (the enhancer's narration segments, the local analyzer's sentences
  and the speech pieces all follow it);
- ``chunks``: pieces a speech engine takes in one go, cut at sentence ends, then words;
- ``words``: the word at a position (what a word event highlights);
- ``spans``: code point <-> UTF-16 offsets, and finding a provider's quote in the text.
"""
