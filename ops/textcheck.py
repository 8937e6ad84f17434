"""Names people type and others read: refuse characters that hide or reorder text."""
import unicodedata

# Cc: controls (NUL, ESC, newlines); Cf: format characters, among them the bidi overrides
# (U+202A-U+202E, U+2066-U+2069) that make 'gpj.exe' read as 'exe.jpg'; Co/Cn: private, unassigned.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Co", "Cn"}


def hidden_characters(text: str) -> list[str]:
    """The code points of ``text`` a reader would not see as typed, e.g. ['U+202E RIGHT-TO-LEFT OVERRIDE']."""
    found = []
    for ch in dict.fromkeys(text):
        if unicodedata.category(ch) in HIDDEN_CATEGORIES:
            found.append(f"U+{ord(ch):04X} {unicodedata.name(ch, 'control character')}")
    return found


def refuse_hidden(text: str, field: str) -> str | None:
    """A message naming the field and the characters, or None when ``text`` is clean."""
    bad = hidden_characters(text)
    if not bad:
        return None
    return f"{field} contains characters that hide or reorder text ({', '.join(bad[:3])}); type it without them"
