"""The text of a dataset's metadata file, whatever editor last saved it.

UTF-8 with or without a byte-order mark, UTF-16 and UTF-32 with one, and any line ends
(``\\n``, ``\\r\\n``, ``\\r``) are read. Anything else is refused with one line naming the
file, the line and what to do: text in another encoding (Latin-1, UTF-16 without a mark)
and binary files. A NUL byte after the first line is left to the reader of the rows,
which skips and lists the row that holds it.
"""

import codecs
import re
from pathlib import Path

from moodscape.errors import DataError

_BYTE_ORDER_MARKS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_LINE_END = re.compile(r"\r\n|\r|\n")
SAVE_AS_UTF8 = "save it as UTF-8 text"


def read_text(path: str | Path) -> str:
    """Decode a metadata file.

    Parameters
    ----------
    path : str or Path
        A text file: UTF-8 (a byte-order mark is dropped), or UTF-16 / UTF-32 with a
        byte-order mark.

    Returns
    -------
    str
        The text, its line ends as written.

    Raises
    ------
    DataError
        ``"<file>[:<line>]: <what is wrong>; <what to do>"`` when the file is missing,
        not a file, unreadable, binary (NUL bytes on its first line) or not in one of
        those encodings.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: cannot read: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: cannot read: a folder, not a file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    encoding = next((name for mark, name in _BYTE_ORDER_MARKS if data.startswith(mark)), "utf-8")
    if encoding == "utf-8" and b"\0" in data.split(b"\n", 1)[0]:
        raise DataError(f"{path}:1: NUL bytes: a binary file, or UTF-16 text without a byte-order mark; "
                        f"give the text file, or {SAVE_AS_UTF8}")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        binary = "; it holds NUL bytes: a binary file?" if b"\0" in data else ""
        raise DataError(f"{path}:{line}: not {encoding.upper().removesuffix('-SIG')} text (byte {data[error.start]:#04x})"
                        f"{binary}; give the text file, or {SAVE_AS_UTF8}") from None


def read_lines(path: str | Path) -> list[str]:
    """The lines of a metadata file (see :func:`read_text`), without their line ends.

    Returns
    -------
    list of str
        Line ``n`` of the file (counted from 1) is item ``n - 1``; a final line end
        adds no empty line.
    """
    lines = _LINE_END.split(read_text(path))
    return lines[:-1] if lines and not lines[-1] else lines
