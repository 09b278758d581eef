"""Titles that trip tokenizers up, shared by the tests that compare token ids or counts."""

TRICKY = [
    "Fed raises rates",
    "",
    "   ",
    "double  spaces and trailing ",
    "a\x1cb control char",
    "x\u2028y line separator",
    "Café naïve A\u0301 combining",
    "中文标题 mixed CJK",
    "\u00a0no-break\u00a0spaces",
    "tab\tinside",
    "[CLS] looks special [SEP]",
    " ".join(["supercalifragilistic"] * 30),  # longer than max_length: truncated
]
