"""Error and warning types.

Every error custseg raises for bad input is a :class:`CustsegError` whose message is one
line naming the file, column or value at fault and how to fix it. The command line prints
that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class CustsegError(Exception):
    """Base class for custseg's own errors (bad input, bad config, impossible requests)."""


class InputError(CustsegError):
    """A file or database could not be read, or holds no usable rows."""


class MappingError(CustsegError):
    """A needed field could not be matched to a column of the input."""


class ConfigError(CustsegError):
    """A configuration key or value is not valid."""


class DataError(CustsegError):
    """The data was read but cannot produce a result (e.g. every line was dropped)."""


class CustsegWarning(UserWarning):
    """A problem in the data that custseg worked around; also recorded in summary.json."""
