"""A trace drawn as a message sequence chart: one self-contained HTML file with inline SVG.

Each node is a group of lifelines (the node's own, then one per process in the order they
appear); each event of the trace is one row, oldest at the top, its virtual time in the
left margin.  Deliveries, replies and signals are arrows from sender to recipient; spawns,
terminations (with their reason), connections and faults are marks on the lifelines, and
a fault that lasts (a partition until its repair, a crash until the host boots, a hold, a
pause) shades the lifelines of the hosts it cuts off for as long as it lasts.

The file needs nothing but a browser: no CDN, no fetch.  A small inline script filters
lifelines (per node, per process, or by text) and rows (a time range) and scales the rows,
laying the chart out again on the client; without it the chart is the full static
drawing.  Every text taken from the trace (message texts, reasons, names) is escaped, and
the script holds none of it: it reads the drawing's ``data-`` attributes.  The same events
give the same bytes.  See docs/simulation.md, "Sequence chart".
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ergo.gen.errors import Incorrect

from .trace import Trace

__all__ = ["render"]

# the geometry, shared with the script (it reads these from the svg's data- attributes)
_COL = 130      # width of a lifeline's column
_GAP = 24       # space between two nodes' groups
_LEFT = 100     # the time margin
_HEAD = 64      # the lifelines' heads
_ROW = 18       # one event
_STEP = 6       # extra space where the time changes
_LABEL = 44     # characters of a message shown on its arrow (the tooltip has all of it)

#: control characters XML 1.0 does not allow (a trace written by Trace is ASCII-escaped;
#: events made by hand may hold anything)
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

#: faults that last: their kind -> (the fault that ends them, css class)
_SPANS = {"partition": ("repair", "f-part"), "partition_oneway": ("repair", "f-oneway"),
          "hold": ("release", "f-hold"), "crash": ("boot", "f-crash"), "pause": ("resume", "f-pause")}


def _esc(value: Any) -> str:
    return html.escape(_BAD_XML.sub("\ufffd", str(value)), quote=True)


def _short(text: str, n: int = _LABEL) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _num(t: Any) -> str:
    return repr(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else str(t)


def _clock(t: Any) -> str:
    """A time as the margin shows it: to the microsecond (0.019999999999999998 -> 0.02);
    the tooltip keeps the exact value."""
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return f"{t:.6f}".rstrip("0").rstrip(".") if t == t and abs(t) != float("inf") else repr(t)
    return str(t)


def _node_of(ident: str) -> str:
    return ident.split("/", 1)[0]


def _host_of(node: str) -> str:
    return node.split("@", 1)[1] if "@" in node else node


def _hosts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


class _Column:
    __slots__ = ("key", "group", "index", "title", "sub", "lives")

    def __init__(self, key: str, group: int, title: str, sub: str) -> None:
        self.key, self.group, self.title, self.sub = key, group, title, sub
        self.index = 0
        #: its lives, [first row, row it ended or None]: a node stops and starts again, a
        #: process id comes back after a restart (an id does not say its node's creation)
        self.lives: list[list[int | None]] = []

    def begin(self, row: int) -> None:
        if not self.lives or self.lives[-1][1] is not None:
            self.lives.append([row, None])

    def end(self, row: int) -> None:
        if not self.lives:
            self.lives.append([0, row])  # alive since before the window
        elif self.lives[-1][1] is None:
            self.lives[-1][1] = row

    def touch(self) -> None:
        if not self.lives:
            self.lives.append([0, None])


class _Chart:
    def __init__(self, events: list[dict[str, Any]], nodes: set[str] | None, processes: set[str] | None) -> None:
        self.events = events
        self.nodes_filter = nodes
        self.processes_filter = processes
        self.groups: list[str] = []            # node names, in order of appearance
        self.group_index: dict[str, int] = {}
        self.group_cols: list[list[_Column]] = []
        self.columns: dict[str, _Column] = {}
        self.calls: dict[str, str] = {}        # a call's ref -> the process it was delivered to

    # -- lifelines ------------------------------------------------------------------------

    def _shown(self, key: str) -> bool:
        node = _node_of(key)
        if self.nodes_filter is not None and node not in self.nodes_filter:
            return False
        if self.processes_filter is not None and "/" in key and key not in self.processes_filter:
            return False
        return True

    def group(self, node: str) -> int | None:
        if self.nodes_filter is not None and node not in self.nodes_filter:
            return None
        g = self.group_index.get(node)
        if g is None:
            g = self.group_index[node] = len(self.groups)
            self.groups.append(node)
            col = _Column(node, g, node, "node")
            self.group_cols.append([col])
            self.columns[node] = col
        return g

    def column(self, key: str | None, sub: str = "") -> _Column | None:
        if not key:
            return None
        col = self.columns.get(key)
        if col is not None:
            return col
        if not self._shown(key):
            return None
        g = self.group(_node_of(key))
        if g is None:
            return None
        if "/" not in key:
            return self.columns[key]
        col = _Column(key, g, key.split("/", 1)[1], sub)
        self.group_cols[g].append(col)
        self.columns[key] = col
        return col

    def where(self, hosts: Sequence[str], node: str | None) -> list[int]:
        """The groups a fault touches: those of ``node``, else of the nodes on ``hosts``,
        else (a fault of the whole world, as buggify) every group."""
        if node is not None:
            g = self.group_index.get(node)
            return [] if g is None else [g]
        if not hosts:
            return list(range(len(self.groups)))
        wanted = set(hosts)
        return [g for g, name in enumerate(self.groups) if _host_of(name) in wanted]


def _events_of(events: Trace | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(events, Trace):
        return events.events
    if isinstance(events, (list, tuple)) and all(isinstance(e, dict) for e in events):
        return list(events)
    raise Incorrect(f"a chart is drawn from a Trace or a list of event dicts, not {type(events).__name__}")


def _names(value: Iterable[str] | None, what: str) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise Incorrect(f"{what} is a list of names, not {value!r}"[:200])
    names = set()
    for v in value:
        if not isinstance(v, str):
            raise Incorrect(f"{what} is a list of names (str), not one of {type(v).__name__}")
        names.add(v)
    return names


def _time(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise Incorrect(f"{what} is a number of virtual seconds, not {value!r}"[:200])
    return float(value)


def render(events: Trace | Sequence[dict[str, Any]], path: str | os.PathLike[str] | None = None, *,
           nodes: Iterable[str] | None = None, processes: Iterable[str] | None = None,
           start: float | None = None, end: float | None = None, title: str | None = None) -> str:
    """The sequence chart of ``events`` (a ``Trace`` or the list of dicts ``Trace.read``
    returns) as one self-contained HTML document; written to ``path`` too if given.

    Every node of the trace has its group of lifelines, in the order the nodes appear
    (a window keeps the full chart's order, and shows a node that does nothing in it).
    ``start``/``end``: only the events at those virtual times (inclusive); a fault that
    began before ``start`` and lasts into the window is shaded from its top.  ``nodes``:
    only those nodes' lifelines (by name); ``processes``: only those processes' lifelines
    (as the trace writes them, ``node/1001``), with their nodes' own.  An arrow with one
    end filtered out is drawn as a stub naming that end; an event with no end left is
    left out, and so is a fault whose hosts have no node shown.  The same arguments
    give the same bytes."""
    evs = _events_of(events)
    lo, hi = _time(start, "start"), _time(end, "end")
    node_set, proc_set = _names(nodes, "nodes"), _names(processes, "processes")
    if proc_set is not None and node_set is None:
        node_set = {_node_of(p) for p in proc_set}
    if title is not None and not isinstance(title, str):
        raise Incorrect(f"a chart's title is a str, not {type(title).__name__}")
    chart = _Chart(evs, node_set, proc_set)
    for e in evs:  # every node of the trace, in the order they appear: a window keeps the full chart's order
        node = e.get("node")
        if isinstance(node, str) and node and e.get("kind") != "fault":
            chart.group(node)
    rows = _layout(chart, evs, lo, hi)
    text = _html(chart, rows, title if title is not None else "Sequence chart", lo, hi, len(evs))
    if path is not None:
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return text


# -- from events to rows --------------------------------------------------------------------


class _Row:
    """One drawn event: its kind of mark, its ends (column objects or None), its texts."""

    __slots__ = ("t", "kind", "cls", "a", "b", "other", "label", "tip", "where", "groups")

    def __init__(self, t: Any, kind: str, cls: str, a: _Column | None, b: _Column | None,
                 label: str, tip: str, other: str = "", where: tuple[list[str], str | None] = ([], None)) -> None:
        self.t, self.kind, self.cls, self.a, self.b = t, kind, cls, a, b
        self.label, self.tip, self.other = label, tip, other
        self.where = where  # a fault's hosts or node: its groups are known once every lifeline is
        self.groups: list[int] = []


class _Shade:
    __slots__ = ("cls", "hosts", "groups", "r0", "r1", "label")

    def __init__(self, cls: str, hosts: list[str], r0: int, label: str) -> None:
        self.cls, self.hosts, self.r0, self.label = cls, hosts, r0, label
        self.groups: list[int] = []
        self.r1: int | None = None


def _tip(e: dict[str, Any]) -> str:
    return " ".join(f"{k}={e[k]}" for k in sorted(e) if k not in ("t", "kind")) + f" @ t={_num(e.get('t'))}"


def _pairs(a: list[str], b: list[str], both: bool) -> set[tuple[str, str]]:
    out = {(x, y) for x in a for y in b}
    if both:
        out |= {(y, x) for x in a for y in b}
    return out


def _layout(chart: _Chart, evs: list[dict[str, Any]], lo: float | None, hi: float | None) -> tuple[
        list[_Row], list[_Shade]]:
    rows: list[_Row] = []
    shades: list[_Shade] = []
    open_: list[tuple[str, _Shade, set[tuple[str, str]] | str]] = []  # (kind, shade, pairs or host)

    def add(row: _Row) -> int:
        for col in (row.a, row.b):
            if col is not None:
                col.touch()
        rows.append(row)
        return len(rows) - 1

    for e in evs:
        kind = e.get("kind")
        t = e.get("t")
        before = lo is not None and isinstance(t, (int, float)) and t < lo
        after = hi is not None and isinstance(t, (int, float)) and t > hi
        if after:
            break
        if kind == "deliver" and e.get("what") == "call" and e.get("ref"):
            chart.calls[str(e["ref"])] = str(e.get("to"))
        if kind == "fault":
            _fault(chart, e, rows, shades, open_, add, before)
            continue
        if before:
            continue
        node = str(e.get("node", ""))
        tip = _tip(e)
        if kind in ("deliver", "signal", "reply"):
            to, frm = e.get("to"), e.get("from")
            if kind == "reply" and not frm:
                frm = chart.calls.get(str(e.get("ref")))
            b = chart.column(str(to) if to else None)
            a = chart.column(str(frm) if frm else None)
            if a is None and b is None:
                continue
            what = str(e.get("what", "reply"))
            if kind == "signal":
                label = f"{what}: {e.get('reason', e.get('msg', ''))}"
                cls = "exit" if what == "exit" else "down"
            elif kind == "reply":
                label = f"\u21a9 {e['error']}" if "error" in e else f"\u21a9 {e.get('msg', '')}"
                cls = "reply-err" if "error" in e else "reply"
            else:
                label = str(e.get("msg", ""))
                if e.get("via"):
                    label = f"{e['via']}: {label}"
                cls = {"call": "call", "event": "event"}.get(what, "msg")
            other = str(frm) if a is None else str(to) if b is None else ""
            add(_Row(t, "arrow", cls, a, b, label, tip, other or "?"))
        elif kind == "spawn":
            col = chart.column(str(e.get("pid")), str(e.get("name") or e.get("behavior") or ""))
            if col is None:
                continue
            parent = chart.column(str(e["parent"])) if e.get("parent") else None
            col.begin(len(rows))
            add(_Row(t, "spawn", "spawn", parent, col, f"spawn {e.get('behavior', '')}", tip, ""))
        elif kind == "terminate":
            col = chart.column(str(e.get("pid")))
            if col is None:
                continue
            col.end(len(rows))
            add(_Row(t, "end", "term", col, None, str(e.get("reason", "")), tip))
        elif kind in ("connect", "disconnect", "connect_failed"):
            a = chart.column(node)
            b = chart.column(str(e.get("peer"))) if e.get("peer") else None
            if a is None and b is None:
                continue
            label = {"connect": "connect", "disconnect": "disconnect", "connect_failed": "connect failed"}[kind]
            if kind != "connect":
                label += f": {e.get('reason', '')}"
            add(_Row(t, "link", kind.replace("_", "-"), a, b, label, tip, str(e.get("peer", "?")) if a else node))
        elif kind in ("node_start", "node_stop"):
            col = chart.column(node)
            if col is None:
                continue
            if kind == "node_start":
                col.begin(len(rows))
                label = f"node start (creation {e.get('creation', '?')})"
            else:
                for each in chart.group_cols[col.group]:  # its processes went with it
                    each.end(len(rows))
                label = "node stop"
            add(_Row(t, "end" if kind == "node_stop" else "mark", kind.replace("_", "-"), col, None, label, tip))
        elif kind == "call_timeout":
            col = chart.column(str(e.get("to")))
            if col is None:
                continue
            add(_Row(t, "mark", "timeout", col, None, f"\u23f1 call timed out ({e.get('timeout', '?')} s)", tip))
        else:
            col = chart.column(node) if node else None
            if col is None:
                continue
            add(_Row(t, "mark", "other", col, None, str(kind), tip))
    for row in rows:
        if row.kind == "fault":
            row.groups = chart.where(*row.where)
    for shade in shades:  # one still open lasts to the end of the window (r1 None)
        shade.groups = chart.where(shade.hosts, None) if shade.hosts else []
    if chart.nodes_filter is not None:
        # a fault of hosts none of whose nodes is shown is left out (as the script hides it)
        gone = [row.kind == "fault" and not row.groups and bool(row.where[0] or row.where[1]) for row in rows]
        if any(gone):
            rows = _drop(rows, gone, chart, shades)
    return rows, shades


def _drop(rows: list[_Row], gone: list[bool], chart: _Chart, shades: list[_Shade]) -> list[_Row]:
    """``rows`` without those ``gone``; a life or a shade that began or ended at one of them
    now begins or ends at the next row kept."""
    new: list[int] = []
    n = 0
    for g in gone:
        new.append(n)
        n += not g
    new.append(n)
    for cols in chart.group_cols:
        for col in cols:
            for life in col.lives:
                life[:] = [None if r is None else new[r] for r in life]
    for shade in shades:
        shade.r0 = new[shade.r0]
        shade.r1 = None if shade.r1 is None else new[shade.r1]
    return [row for row, g in zip(rows, gone, strict=True) if not g]


def _fault(chart: _Chart, e: dict[str, Any], rows: list[_Row], shades: list[_Shade],
           open_: list[tuple[str, _Shade, Any]], add: Any, before: bool) -> None:
    fault = str(e.get("fault", "?"))
    start = len(rows)
    a, b = _hosts(e.get("a")), _hosts(e.get("b"))
    detail = ", ".join(f"{k}={e[k]}" for k in sorted(e) if k not in ("t", "kind", "fault"))
    label = f"\u26a1 {fault} {detail}".rstrip()
    tip = _tip(e)
    if fault in _SPANS:
        cls = _SPANS[fault][1]
        if fault == "crash" or fault == "pause":
            host = str(e.get("host"))
            hosts = [host]
            shade = _Shade(cls, hosts, start, f"{fault} {host}")
            open_.append((fault, shade, host))
        else:
            hosts = a + b
            shade = _Shade(cls, hosts, start, f"{fault} {' '.join(a)} | {' '.join(b)}")
            open_.append((fault, shade, _pairs(a, b, fault != "partition_oneway")))
        shades.append(shade)
        if not before:
            add(_Row(e.get("t"), "fault", cls, None, None, label, tip, where=(hosts, None)))
        return
    # the faults that end others
    ends = [k for k, (ender, _c) in _SPANS.items() if ender == fault]
    where: tuple[list[str], str | None] = (a + b, None)
    if "host" in e:
        where = ([str(e["host"])], None)
    elif "node" in e:
        where = ([], str(e["node"]))
    if ends:
        gone = _pairs(a, b, True) if (a or b) else None
        keep = []
        for kind, shade, what in open_:
            if kind not in ends:
                keep.append((kind, shade, what))
                continue
            if isinstance(what, str):
                if what == e.get("host"):
                    shade.r1 = start
                    continue
            else:
                if gone is None:
                    what.clear()
                else:
                    what -= gone
                if not what:
                    shade.r1 = start
                    continue
            keep.append((kind, shade, what))
        open_[:] = keep
    if not before:
        add(_Row(e.get("t"), "fault", "f-point", None, None, label, tip, where=where))


# -- drawing -------------------------------------------------------------------------------


def _positions(chart: _Chart, rows: list[_Row]) -> tuple[dict[int, int], list[int], int, int]:
    """x of each column (by its index), y of each row (and of the end), the drawing's size."""
    xs: dict[int, int] = {}
    x = _LEFT
    i = 0
    for cols in chart.group_cols:
        for col in cols:
            col.index = i
            xs[i] = x + _COL // 2
            x += _COL
            i += 1
        x += _GAP
    ys = []
    y = _HEAD + _ROW
    prev: Any = None
    for r, row in enumerate(rows):
        if r and row.t != prev:
            y += _STEP
        prev = row.t
        ys.append(y)
        y += _ROW
    ys.append(y)
    if chart.group_cols:
        x -= _GAP  # none after the last group (as the script lays it out)
    return xs, ys, x + 40, y + _ROW


def _arrow_d(x1: int, x2: int, y: int) -> str:
    if x1 == x2:  # to itself: a loop out to the right
        return f"M{x1} {y - 5}h24v10h-22"
    return f"M{x1} {y}H{x2 - 2 if x2 > x1 else x2 + 2}"


_STUB = 56


def _html(chart: _Chart, layout: tuple[list[_Row], list[_Shade]], title: str, lo: float | None, hi: float | None,
          total: int) -> str:
    rows, shades = layout
    xs, ys, width, height = _positions(chart, rows)
    out: list[str] = []
    w = out.append
    w(f'<svg xmlns="http://www.w3.org/2000/svg" id="chart" width="{width}" height="{height}" '
      f'data-col="{_COL}" data-gap="{_GAP}" data-left="{_LEFT}" data-head="{_HEAD}" data-row="{_ROW}" '
      f'data-step="{_STEP}" data-stub="{_STUB}" font-family="sans-serif" font-size="11">')
    w(f"<style>{_SVG_CSS}</style><defs>")
    for cls, color in _COLORS.items():
        w(f'<marker id="h-{cls}" viewBox="0 0 8 8" refX="7" refY="4" markerUnits="userSpaceOnUse" '
          f'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
          f'<path d="M0 0L8 4L0 8z" fill="{color}"/></marker>')
    w("</defs>")
    # shading first, under everything
    w('<g id="shades">')
    for s in shades:
        r1 = len(rows) if s.r1 is None else s.r1
        if r1 < s.r0 or not s.groups:
            continue
        for g in s.groups:
            cols = chart.group_cols[g]
            x0, x1 = xs[cols[0].index] - _COL // 2 + 2, xs[cols[-1].index] + _COL // 2 - 2
            y0, y1 = ys[s.r0] - _ROW // 2, ys[r1] - _ROW // 2
            w(f'<rect class="shade {s.cls}" data-g="{g}" data-r0="{s.r0}" data-r1="{r1}" x="{x0}" y="{y0}" '
              f'width="{x1 - x0}" height="{max(y1 - y0, 2)}"><title>{_esc(s.label)}</title></rect>')
    w("</g>")
    # lifelines
    w('<g id="lifelines">')
    for cols in chart.group_cols:
        for col in cols:
            for r0, end in col.lives or [[0, len(rows)]]:
                assert r0 is not None
                r1 = len(rows) if end is None else end
                x = xs[col.index]
                w(f'<line class="life{" node" if "/" not in col.key else ""}" data-c="{col.index}" '
                  f'data-g="{col.group}" data-r0="{r0}" data-r1="{r1}" x1="{x}" x2="{x}" '
                  f'y1="{ys[r0] - _ROW // 2}" y2="{ys[r1] - _ROW // 2}"/>')
    w("</g>")
    # the events
    w('<g id="rows">')
    prev: Any = object()
    for r, row in enumerate(rows):
        y = ys[r]
        a = row.a.index if row.a is not None else -1
        b = row.b.index if row.b is not None else -1
        groups = " ".join(map(str, row.groups))
        w(f'<g class="ev {row.kind} {row.cls}" data-r="{r}" data-t="{_esc(_num(row.t))}" data-a="{a}" data-b="{b}"'
          + (f' data-gs="{groups}"' if row.kind == "fault" else "") + ">")
        w(f"<title>{_esc(row.tip)}</title>")
        tick = row.t != prev
        prev = row.t
        w(f'<text class="time{"" if tick else " same"}" x="{_LEFT - 8}" y="{y + 4}" text-anchor="end">'
          f"{_esc(_clock(row.t))}</text>")
        w(_mark(row, xs, y, chart))
        w("</g>")
    w("</g>")
    # heads last, so that the script can keep them on top while scrolling
    w(f'<g id="heads"><rect class="headbg" x="0" y="0" width="{width}" height="{_HEAD}"/>')
    for g, cols in enumerate(chart.group_cols):
        x0 = xs[cols[0].index] - _COL // 2
        x1 = xs[cols[-1].index] + _COL // 2
        w(f'<g class="group" data-g="{g}"><rect x="{x0 + 2}" y="4" width="{x1 - x0 - 4}" height="20" rx="4"/>'
          f'<text x="{(x0 + x1) // 2}" y="18" text-anchor="middle">{_esc(_short(chart.groups[g], 40))}</text></g>')
        for col in cols:
            x = xs[col.index]
            w(f'<g class="head" data-c="{col.index}" data-g="{g}"><title>{_esc(col.key)}</title>'
              f'<text x="{x}" y="40" text-anchor="middle" font-weight="bold">{_esc(_short(col.title, 20))}</text>'
              f'<text x="{x}" y="54" text-anchor="middle">{_esc(_short(col.sub, 20))}</text></g>')
    w("</g></svg>")
    svg = "".join(out)
    return _page(chart, svg, title, lo, hi, total, len(rows))


_COLORS = {"msg": "#333", "call": "#1f5fbf", "reply": "#1f5fbf", "reply-err": "#c0392b", "event": "#16877a",
           "exit": "#c0392b", "down": "#d35400", "spawn": "#777", "connect": "#2e8b57", "disconnect": "#999",
           "connect-failed": "#c0392b"}


def _mark(row: _Row, xs: dict[int, int], y: int, chart: _Chart) -> str:
    label = _esc(_short(row.label))
    if row.kind in ("arrow", "spawn", "link"):
        x1 = xs[row.a.index] if row.a is not None else None
        x2 = xs[row.b.index] if row.b is not None else None
        if x1 is None and x2 is None:
            return ""
        if x1 is None:
            assert x2 is not None
            x1 = x2 - _STUB
        if x2 is None:
            x2 = x1 + _STUB
        marker = f' marker-end="url(#h-{row.cls})"' if row.cls in _COLORS else ""
        parts = [f'<path class="arrow" d="{_arrow_d(x1, x2, y)}"{marker}/>']
        lx = (x1 + x2) // 2 if x1 != x2 else x1 + 28
        anchor = "middle" if x1 != x2 else "start"
        parts.append(f'<text class="label" x="{lx}" y="{y - 3}" text-anchor="{anchor}">{label}</text>')
        if (row.a is None or row.b is None) and row.other:
            sx = x1 if row.a is None else x2
            parts.append(f'<text class="stub" x="{sx}" y="{y + 9}" text-anchor="middle">'
                         f"{_esc(_short(row.other, 30))}</text>")
        return "".join(parts)
    if row.kind in ("mark", "end"):
        assert row.a is not None
        x = xs[row.a.index]
        sym = (f'<path class="cross" d="M{x - 5} {y - 5}l10 10m0 -10l-10 10"/>' if row.kind == "end"
               else f'<circle class="dot" cx="{x}" cy="{y}" r="4"/>')
        return sym + f'<text class="label" x="{x + 8}" y="{y + 4}">{label}</text>'
    # a fault: a line across the groups it touches
    cols = [c for g in row.groups for c in chart.group_cols[g]] if chart.group_cols else []
    if not cols:
        return f'<text class="label" x="{_LEFT + 4}" y="{y + 4}">{label}</text>'
    x0 = min(xs[c.index] for c in cols) - _COL // 2 + 2
    x1 = max(xs[c.index] for c in cols) + _COL // 2 - 2
    return (f'<line class="fline" x1="{x0}" x2="{x1}" y1="{y}" y2="{y}"/>'
            f'<text class="label flabel" x="{x0 + 4}" y="{y - 3}">{label}</text>')


_PAGE_CSS = """
body{font-family:sans-serif;margin:0}
#bar{position:sticky;top:0;z-index:2;background:#f4f4f4;border-bottom:1px solid #ccc;padding:6px 10px;font-size:13px}
#bar fieldset{display:inline-block;vertical-align:top;border:1px solid #ccc;margin:0 6px 0 0;padding:2px 6px;
max-height:7em;overflow:auto}
#bar label{white-space:nowrap;margin-right:8px}
#wrap{overflow:auto;height:calc(100vh - 120px)}
.legend span{margin-right:10px}
"""

# the drawing's own style, inside the svg: it reads the same saved on its own
_SVG_CSS = """
.life{stroke:#bbb;stroke-width:1.5}
.life.node{stroke:#666;stroke-dasharray:2 3}
.arrow{fill:none;stroke-width:1.3}
.msg .arrow{stroke:#333}.call .arrow{stroke:#1f5fbf;stroke-width:2}
.reply .arrow{stroke:#1f5fbf;stroke-dasharray:5 3}.reply-err .arrow{stroke:#c0392b;stroke-dasharray:5 3}
.event .arrow{stroke:#16877a}.exit .arrow{stroke:#c0392b;stroke-width:2}.down .arrow{stroke:#d35400;stroke-width:2}
.spawn .arrow{stroke:#777;stroke-dasharray:1 3}
.connect .arrow{stroke:#2e8b57;stroke-dasharray:6 2}.disconnect .arrow{stroke:#999;stroke-dasharray:6 2}
.connect-failed .arrow{stroke:#c0392b;stroke-dasharray:2 2}
.label{fill:#222;font-size:10px}.stub{fill:#888;font-size:9px}
.exit .label,.term .label,.reply-err .label,.connect-failed .label{fill:#a02020}
.down .label{fill:#b34700}.call .label,.reply .label{fill:#1f5fbf}
.time{fill:#555;font-size:10px}.time.same{fill:#ccc}
.cross{stroke:#c0392b;stroke-width:2}.dot{fill:#555}.timeout .dot{fill:#d35400}
.node-start .dot{fill:#2e8b57}.node-stop .cross{stroke:#333}
.fline{stroke:#8e44ad;stroke-width:1;stroke-dasharray:4 2}.flabel{fill:#8e44ad;font-weight:bold}
.shade{stroke:none}rect.f-part{fill:#e74c3c;fill-opacity:.14}rect.f-oneway{fill:#e67e22;fill-opacity:.14}
rect.f-hold{fill:#f1c40f;fill-opacity:.18}rect.f-crash{fill:#333;fill-opacity:.22}rect.f-pause{fill:#3498db;fill-opacity:.16}
.headbg{fill:#fff;fill-opacity:.95}.group rect{fill:#eef;stroke:#99b}.head text{fill:#222}
"""

# The script holds no text of the trace: it reads the drawing's data- attributes.  It lays
# out again what is shown: visible columns packed left to right per node, visible rows
# packed top to bottom (a row is visible when its time is in range and one of its ends is).
_JS = r"""
(function(){
var svg=document.getElementById('chart');if(!svg)return;
var D=function(k){return +svg.getAttribute('data-'+k)};
var COL=D('col'),GAP=D('gap'),LEFT=D('left'),HEAD=D('head'),ROW0=D('row'),STEP=D('step'),STUB=D('stub');
var q=function(s){return Array.prototype.slice.call(document.querySelectorAll(s))};
var heads=q('#heads .head'),groups=q('#heads .group'),lives=q('#lifelines line'),evs=q('#rows .ev'),
shades=q('#shades rect');
var ncol=heads.length,colGroup=heads.map(function(h){return +h.getAttribute('data-g')}),
colKey=heads.map(function(h){return h.querySelector('title').textContent.toLowerCase()});
function num(id){var v=document.getElementById(id).value;return v===''?null:+v}
function layout(){
 var row=+document.getElementById('zoom').value||ROW0,text=document.getElementById('text').value.toLowerCase();
 var lo=num('from'),hi=num('to');
 var gOn={};q('input.gsel').forEach(function(c){gOn[c.value]=c.checked});
 var pOn={};q('input.psel').forEach(function(c){pOn[c.value]=c.checked});
 var vis=[],x=[],cur=LEFT,gx={},g;
 for(var c=0;c<ncol;c++){g=colGroup[c];
  vis[c]=gOn[g]!==false&&pOn[c]!==false&&(!text||colKey[c].indexOf(text)>=0||colKey[c].split('/')[0].indexOf(text)>=0&&!/\//.test(colKey[c]));
 }
 var prevG=-1;
 for(c=0;c<ncol;c++){if(!vis[c]){x[c]=null;continue}g=colGroup[c];
  if(prevG!==-1&&g!==prevG)cur+=GAP;prevG=g;x[c]=cur+COL/2;cur+=COL;
  if(!(g in gx))gx[g]=[x[c],x[c]];gx[g][1]=x[c];}
 var width=cur+40,ys=[],y=HEAD+row,prevT=null,first=true;
 evs.forEach(function(e,r){var t=+e.getAttribute('data-t'),a=+e.getAttribute('data-a'),b=+e.getAttribute('data-b');
  var on=(lo===null||t>=lo)&&(hi===null||t<=hi);
  if(on){if(e.hasAttribute('data-gs')){var gs=e.getAttribute('data-gs').split(' ');
    on=gs.some(function(k){return k in gx})||gs[0]===''}
   else on=(a>=0&&x[a]!=null)||(b>=0&&x[b]!=null);}
  if(on&&!first&&t!==prevT)y+=STEP*row/ROW0;
  ys[r]=y;e.style.display=on?'':'none';
  if(on){first=false;prevT=t;place(e,x,y,gx);y+=row}
 });
 ys[evs.length]=y;var height=y+row;
 lives.forEach(function(l){var c=+l.getAttribute('data-c');if(x[c]==null){l.style.display='none';return}
  l.style.display='';l.setAttribute('x1',x[c]);l.setAttribute('x2',x[c]);
  l.setAttribute('y1',ys[+l.getAttribute('data-r0')]-row/2);l.setAttribute('y2',ys[+l.getAttribute('data-r1')]-row/2)});
 shades.forEach(function(s){var g=s.getAttribute('data-g'),span=gx[g];if(!span){s.style.display='none';return}
  var y0=ys[+s.getAttribute('data-r0')]-row/2,y1=ys[+s.getAttribute('data-r1')]-row/2;
  s.style.display='';s.setAttribute('x',span[0]-COL/2+2);s.setAttribute('width',span[1]-span[0]+COL-4);
  s.setAttribute('y',y0);s.setAttribute('height',Math.max(y1-y0,2))});
 heads.forEach(function(h,c){if(x[c]==null){h.style.display='none';return}h.style.display='';
  h.querySelectorAll('text').forEach(function(t){t.setAttribute('x',x[c])})});
 groups.forEach(function(gr){var span=gx[gr.getAttribute('data-g')];if(!span){gr.style.display='none';return}
  gr.style.display='';var r=gr.querySelector('rect'),t=gr.querySelector('text');
  r.setAttribute('x',span[0]-COL/2+2);r.setAttribute('width',span[1]-span[0]+COL-4);t.setAttribute('x',(span[0]+span[1])/2)});
 svg.setAttribute('width',width);svg.setAttribute('height',height);
 document.querySelector('#heads .headbg').setAttribute('width',width);
}
function place(e,x,y,gx){
 var a=+e.getAttribute('data-a'),b=+e.getAttribute('data-b'),p=e.querySelector('path.arrow');
 var tm=e.querySelector('text.time');if(tm)tm.setAttribute('y',y+4);
 if(p){var x1=a>=0?x[a]:null,x2=b>=0?x[b]:null;if(x1==null)x1=x2-STUB;if(x2==null)x2=x1+STUB;
  p.setAttribute('d',x1===x2?'M'+x1+' '+(y-5)+'h24v10h-22':'M'+x1+' '+y+'H'+(x2>x1?x2-2:x2+2));
  var l=e.querySelector('text.label');l.setAttribute('x',x1===x2?x1+28:(x1+x2)/2);l.setAttribute('y',y-3);
  var s=e.querySelector('text.stub');if(s){s.setAttribute('x',a>=0&&x[a]!=null?x2:x1);s.setAttribute('y',y+9)}
  return}
 var m=e.querySelector('circle.dot,path.cross');
 if(m){var xc=x[a];if(m.tagName==='circle'){m.setAttribute('cx',xc);m.setAttribute('cy',y)}
  else m.setAttribute('d','M'+(xc-5)+' '+(y-5)+'l10 10m0 -10l-10 10');
  var t=e.querySelector('text.label');t.setAttribute('x',xc+8);t.setAttribute('y',y+4);return}
 var fl=e.querySelector('line.fline'),lb=e.querySelector('text.label');
 if(fl){var gs=e.getAttribute('data-gs').split(' ').filter(function(k){return k in gx});
  var x0=Math.min.apply(null,gs.map(function(k){return gx[k][0]}))-COL/2+2,
  x1=Math.max.apply(null,gs.map(function(k){return gx[k][1]}))+COL/2-2;
  fl.setAttribute('x1',x0);fl.setAttribute('x2',x1);fl.setAttribute('y1',y);fl.setAttribute('y2',y);
  lb.setAttribute('x',x0+4);lb.setAttribute('y',y-3)}
 else if(lb)lb.setAttribute('y',y+4);
}
var wrap=document.getElementById('wrap');
wrap.addEventListener('scroll',function(){document.getElementById('heads').setAttribute('transform','translate(0,'+wrap.scrollTop+')')});
q('#bar input').forEach(function(i){i.addEventListener(i.type==='text'||i.type==='number'?'input':'change',layout)});
q('#bar button.all').forEach(function(bt){bt.addEventListener('click',function(){
 var on=bt.getAttribute('data-on')==='1';
 q('input.'+bt.getAttribute('data-for')).forEach(function(c){c.checked=on});layout()})});
})();
"""


def _page(chart: _Chart, svg: str, title: str, lo: float | None, hi: float | None, total: int, shown: int) -> str:
    out: list[str] = []
    w = out.append
    w(f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
      f"<style>{_PAGE_CSS}</style></head><body>")
    w(f'<div id="bar"><b>{_esc(title)}</b> \u2014 {shown} of {total} events'
      + (f", t \u2265 {_esc(_num(lo))}" if lo is not None else "")
      + (f", t \u2264 {_esc(_num(hi))}" if hi is not None else "") + "<br>")
    w('<label>time from <input id="from" type="number" step="any" size="6"></label>'
      '<label>to <input id="to" type="number" step="any" size="6"></label>'
      f'<label>row height <input id="zoom" type="range" min="6" max="48" value="{_ROW}"></label>'
      '<label>lifelines matching <input id="text" type="text" size="14"></label><br>')
    w('<fieldset><legend>nodes <button class="all" data-for="gsel" data-on="1">all</button>'
      '<button class="all" data-for="gsel" data-on="0">none</button></legend>')
    for g, node in enumerate(chart.groups):
        w(f'<label><input type="checkbox" class="gsel" value="{g}" checked> {_esc(node)}</label>')
    w('</fieldset><fieldset><legend>processes <button class="all" data-for="psel" data-on="1">all</button>'
      '<button class="all" data-for="psel" data-on="0">none</button></legend>')
    for cols in chart.group_cols:
        for col in cols:
            if "/" in col.key:
                w(f'<label><input type="checkbox" class="psel" value="{col.index}" checked> '
                  f"{_esc(col.key)}{' ' + _esc(col.sub) if col.sub else ''}</label>")
    w("</fieldset>")
    w('<fieldset class="legend"><legend>marks</legend>'
      '<span style="color:#333">\u2192 message</span><span style="color:#1f5fbf">\u2192 call</span>'
      '<span style="color:#1f5fbf">\u21a2 reply (dashed)</span><span style="color:#16877a">\u2192 event</span>'
      '<span style="color:#c0392b">\u2192 exit</span><span style="color:#d35400">\u2192 down</span>'
      '<span>\u2716 terminated (reason)</span><span>\u25cf node start / timeout</span><br>'
      '<span style="background:#f8d0cc">partition</span><span style="background:#f8dcc0">one-way</span>'
      '<span style="background:#fbefb0">hold</span><span style="background:#bbb">crash</span>'
      '<span style="background:#cfe3f5">pause</span><span style="color:#8e44ad">\u26a1 fault</span></fieldset>')
    w('</div><div id="wrap">')
    w(svg)
    w(f"</div><script>{_JS}</script></body></html>\n")
    return "".join(out)
