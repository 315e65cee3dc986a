"""Input: readers for files and databases, column mapping, value parsing."""

from custseg.io._mapping import (
    FIELDS,
    REQUIRED,
    detect_mapping,
    guess_from_values,
    normalize,
    resolve_mapping,
)
from custseg.io._peek import Peek, peek, peek_source
from custseg.io._readers import Source, load_source, sniff_format, sniff_text

__all__ = ["FIELDS", "REQUIRED", "Peek", "Source", "detect_mapping", "guess_from_values",
           "load_source", "normalize", "peek", "peek_source", "resolve_mapping",
           "sniff_format", "sniff_text"]
