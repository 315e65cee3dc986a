"""Segment migration between two snapshots (``custseg track OLD_DIR NEW_DIR``).

Each snapshot is the output folder of ``custseg run`` or ``custseg rfm`` (for example two
runs with different ``--as-of`` dates). Customers are matched by id; those on one side
only are "new" (row) or "gone" (column), so the matrix adds up to every customer of both
snapshots.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from custseg.core.config import SETTINGS, default_rfm_segments
from custseg.core.exceptions import InputError
from custseg.outputs.rundir import atomic_file, read_segments

NEW, GONE = "new", "gone"


def read_snapshot(folder: str | Path, by: str) -> pd.Series:
    """customer_id -> segment label of one snapshot, as a categorical in segment order
    (segment number for clusters, the segment map's order for RFM)."""
    path = Path(folder) / "segments.csv"
    column = {"cluster": "segment_name", "rfm": "rfm_segment"}[by]
    table = read_segments(folder)
    if column not in table:
        raise InputError(f"{path} has no {column} column; use --by "
                         f"{'rfm' if by == 'cluster' else 'cluster'}.")
    if by == "cluster":
        order = table.sort_values("segment")[column].astype(str).drop_duplicates().tolist()
    else:
        known = list(default_rfm_segments())
        seen = table[column].astype(str).unique().tolist()
        order = [s for s in known if s in seen] + sorted(set(seen) - set(known))
    labels = table.set_index("customer_id")[column].astype(str)
    labels.attrs["order"] = order
    return labels


def migration(old: pd.Series, new: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The count matrix (old rows x new columns, plus "new" and "gone") and the movers."""
    both = old.index.union(new.index)
    pairs = pd.DataFrame({"old": old.reindex(both).fillna(NEW),
                          "new": new.reindex(both).fillna(GONE)})
    pairs.index.name = "customer_id"
    rows = [*old.attrs.get("order", dict.fromkeys(old.tolist())), NEW]
    cols = [*new.attrs.get("order", dict.fromkeys(new.tolist())), GONE]
    matrix = pd.crosstab(pairs["old"], pairs["new"]).reindex(index=rows, columns=cols,
                                                               fill_value=0)
    movers = pairs[pairs["old"] != pairs["new"]].reset_index().sort_values("customer_id")
    return matrix, movers


def top_movements(matrix: pd.DataFrame, n: int = 8) -> list[str]:
    """The largest moves between different segments, in words."""
    moves = [(int(matrix.loc[a, b]), a, b) for a in matrix.index for b in matrix.columns
             if a != b and matrix.loc[a, b] > 0]
    words = []
    for count, a, b in sorted(moves, key=lambda m: (-m[0], m[1], m[2]))[:n]:
        if a == NEW:
            words.append(f"{count:,} new customers joined {b}")
        elif b == GONE:
            words.append(f"{count:,} {a} are gone (no longer in the data)")
        else:
            words.append(f"{count:,} {a} became {b}")
    return words


def sankey_svg(matrix: pd.DataFrame, width: int = 900, height: int = 520) -> str:
    """A plain SVG Sankey diagram of the matrix (old on the left, new on the right)."""
    total = float(matrix.to_numpy().sum()) or 1.0
    gap, node_w, top = 6, 14, 10
    usable = height - 2 * top - gap * (max(len(matrix.index), len(matrix.columns)) - 1)

    def stack(sizes):
        pos, y = {}, top
        for key, size in sizes.items():
            h = max(1.0, usable * size / total)
            pos[key] = [y, y + h, y]  # start, end, cursor
            y += h + gap
        return pos

    left, right = stack(matrix.sum(axis=1)), stack(matrix.sum(axis=0))
    x0, x1 = 230, width - 230
    parts = []
    for a in matrix.index:
        for b in matrix.columns:
            count = matrix.loc[a, b]
            if not count:
                continue
            h = usable * count / total
            ya, yb = left[a][2], right[b][2]
            left[a][2] += h
            right[b][2] += h
            mid = (x0 + node_w + x1) / 2
            path = (f"M{x0 + node_w},{ya} C{mid},{ya} {mid},{yb} {x1},{yb} "
                    f"L{x1},{yb + h} C{mid},{yb + h} {mid},{ya + h} {x0 + node_w},{ya + h} Z")
            colour = "#9fb3c8" if a == b else "#f0b429"
            parts.append(f'<path d="{path}" fill="{colour}" fill-opacity="0.55">'
                         f"<title>{html.escape(a)} → {html.escape(b)}: {count:,}</title></path>")
    for side, pos, x, anchor, dx in ((matrix.index, left, x0, "end", -6),
                                     (matrix.columns, right, x1, "start", node_w + 6)):
        for key in side:
            y0, y1, _ = pos[key]
            parts.append(f'<rect x="{x}" y="{y0}" width="{node_w}" height="{y1 - y0}" '
                         'fill="#243b53"/>')
            parts.append(f'<text x="{x + dx}" y="{(y0 + y1) / 2 + 4}" text-anchor="{anchor}" '
                         f'font-size="12">{html.escape(str(key))}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            + "".join(parts) + "</svg>")


def track(old_dir: str | Path, new_dir: str | Path, out_dir: str | Path,
          by: str = "cluster", model: str | Path | None = None) -> dict:
    """Write migration_matrix.csv, migration_share.csv, movers.csv and track.html.

    With ``model`` (the old run's model.json) the new snapshot's customers are assigned
    with that model, so segments keep their meaning across snapshots.
    """
    SETTINGS["track.by"].check_param("track", "by", by)
    old = read_snapshot(old_dir, by)
    if model is not None:
        from custseg.outputs.model import assign, load_model

        saved = load_model(model)
        table = read_segments(new_dir)
        scored = assign(saved, table)
        column = {"cluster": "segment_name", "rfm": "rfm_segment"}[by]
        new = scored.set_index("customer_id")[column].astype(str)
        new.attrs["order"] = old.attrs.get("order", [])
        new.attrs["order"] = [*new.attrs["order"],
                              *sorted(set(new) - set(new.attrs["order"]))]
    else:
        new = read_snapshot(new_dir, by)
    matrix, movers = migration(old, new)
    share = matrix.div(matrix.sum(axis=1).replace(0, 1), axis=0).round(4)
    words = top_movements(matrix)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"migration_matrix.csv": matrix.rename_axis("old \\ new").to_csv(),
             "migration_share.csv": share.rename_axis("old \\ new").to_csv(),
             "movers.csv": movers.to_csv(index=False),
             "track.html": _page(old_dir, new_dir, matrix, words)}
    for name, text in files.items():
        with atomic_file(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return {"customers": int(matrix.to_numpy().sum()), "movers": len(movers),
            "top_movements": words}


def _page(old_dir, new_dir, matrix: pd.DataFrame, words: list[str]) -> str:
    items = "".join(f"<li>{html.escape(w)}</li>" for w in words)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in matrix.columns)
    rows = "".join(f"<tr><th>{html.escape(str(i))}</th>"
                   + "".join(f"<td>{v:,}</td>" for v in matrix.loc[i]) + "</tr>"
                   for i in matrix.index)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Segment migration</title><style>
body {{ font-family: system-ui, sans-serif; margin: 32px; color: #1f2933; }}
td, th {{ padding: 3px 8px; border-bottom: 1px solid #e4e7eb; text-align: right; }}
th {{ text-align: left; }}</style></head><body>
<h1>Segment migration</h1>
<p>From {html.escape(str(old_dir))} to {html.escape(str(new_dir))}:
{int(matrix.to_numpy().sum()):,} customers in either snapshot.</p>
<h2>Largest movements</h2><ul>{items}</ul>
{sankey_svg(matrix)}
<h2>Counts (old segment in rows, new in columns)</h2>
<table><tr><th></th>{head}</tr>{rows}</table></body></html>
"""
