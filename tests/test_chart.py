"""The sequence chart of a trace (``sim.chart.render``): drawn from real simulated runs with
calls, links and monitors, a partition, a crash and terminations; checked as a document
(the HTML parses, the SVG is well-formed XML), for what it shows (every lifeline, every
arrow, the faults' shading), its filters, its escaping of the trace's texts, its
determinism and its size on a few thousand events.

Not checked here: how it looks in a browser (the issue asks for a headless Chromium
screenshot; this machine and CI have no Chromium to install)."""

from __future__ import annotations

import html.parser
import re
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from network_support import options
from support import Collector

import ergo
import sim
from ergo.gen.errors import Incorrect
from ergo.gen.options import AcceptorOptions
from ergo.network import NetworkRoute
from sim.chart import render

HOSTILE = "<script>alert('x')</script>"
SVG = "{http://www.w3.org/2000/svg}"


class Echo(ergo.Actor):
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return ("echo", request)

    def handle_message(self, from_: Any, message: Any) -> None:
        if message == "boom":  # a reason of the user's: its text is the reason's
            raise ergo.TerminateReason(f"</text>{HOSTILE}")


class Caller(ergo.Actor):
    def init(self, report: Any) -> None:
        self.report = report

    async def handle_message(self, from_: Any, message: Any) -> None:
        target, request = message
        try:
            answer = await self.call(target, request, timeout=2.0)
        except Exception as e:
            answer = type(e).__name__
        self.send(self.report, answer)


class Watcher(ergo.Actor):
    def init(self, target: Any) -> None:
        self.trap_exit = True
        self.link(target)
        self.monitor(target)


def _cluster(s: sim.Sim, n: int) -> list[ergo.Node]:
    nodes = [s.start_node(f"n{i}@host{i}", options(acceptors=(AcceptorOptions(port=11144),),
                                                     heartbeat_interval=1.0, heartbeat_timeout=5.0))
             for i in range(1, n + 1)]
    for a in nodes:
        for b in nodes:
            if a is not b:
                name = str.__str__(b.name)
                a.network().add_route(f"^{name}$", NetworkRoute(name.split("@")[1], 11144))
    return nodes


def faulty_run(seed: int = 3) -> sim.Sim:
    """Three networked nodes: calls across, a link and a monitor across, a hostile message,
    a partition found by heartbeats and repaired, a crash and a restart, a panic."""
    s = sim.Sim(seed, trace=True)
    n1, n2, n3 = _cluster(s, 3)
    report = n1.spawn_register("report", Collector)
    echo2 = n2.spawn_register("echo", Echo)
    echo3 = n3.spawn_register("echo", Echo)
    caller = n1.spawn(Caller, report)
    n1.spawn(Watcher, echo3)
    for target in (n2, n3):
        n1.send(caller, (ergo.ProcessID("echo", target.name), "ping"))
    n1.send(echo2, HOSTILE)
    s.run_for(1.0)
    s.partition("host1", "host3")   # both sides' heartbeats declare the other down: exit and down
    s.run_for(8.0)
    s.repair("host1", "host3")
    n1.send(caller, (ergo.ProcessID("echo", n3.name), "after repair"))
    s.run_for(1.0)
    s.crash("host2")
    s.run_for(8.0)
    s.restart("host2")
    s.run_for(2.0)
    n3.send(echo3, "boom")          # a termination whose reason carries markup
    s.run_for(1.0)
    return s


@pytest.fixture(scope="module")
def run() -> sim.Sim:
    return faulty_run()


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)


def _svg(page: str) -> ET.Element:
    match = re.search(r"<svg\b.*</svg>", page, re.S)
    assert match is not None
    return ET.fromstring(match.group(0))


def _rows(svg: ET.Element) -> list[ET.Element]:
    rows = svg.find(f".//{SVG}g[@id='rows']")
    assert rows is not None
    return list(rows)


def _heads(svg: ET.Element) -> list[str]:
    return [g.findtext(f"{SVG}title") or "" for g in svg.iter(f"{SVG}g") if g.get("class") == "head"]


def _classes(el: ET.Element) -> set[str]:
    return set((el.get("class") or "").split())


def test_the_chart_is_html_that_parses_with_well_formed_svg_and_no_outside_resource(run):
    page = render(run.trace, title="seed 3")
    parser = _Tags()
    parser.feed(page)
    parser.close()
    assert parser.tags[:3] == ["html", "head", "meta"] and "svg" in parser.tags
    assert parser.tags.count("script") == 1  # ours, inline
    svg = _svg(page)
    assert svg.tag == f"{SVG}svg" and int(svg.get("height", "0")) > 20 * len(run.trace.events)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and " src=" not in page and "<link" not in page


def test_every_lifeline_and_every_delivery_reply_and_signal_is_drawn(run):
    events = run.trace.events
    svg = _svg(render(run.trace))
    heads = _heads(svg)
    processes = {e["pid"] for e in events if e["kind"] in ("spawn", "terminate")}
    processes |= {e["parent"] for e in events if e["kind"] == "spawn"}
    processes |= {e[k] for e in events if e["kind"] in ("deliver", "signal", "reply") for k in ("to", "from")
                  if e.get(k)}
    nodes = {e["node"] for e in events if "node" in e and e["kind"] != "fault"}
    assert set(heads) == processes | nodes and len(heads) == len(set(heads))
    arrows = [r for r in _rows(svg) if "arrow" in _classes(r)]
    for kind, marks in (("deliver", {"msg", "call", "event"}), ("signal", {"exit", "down"}),
                        ("reply", {"reply", "reply-err"})):
        expected = sum(e["kind"] == kind for e in events)
        assert expected and sum(bool(_classes(r) & marks) for r in arrows) == expected, kind
    calls = [r for r in arrows if "call" in _classes(r)]
    assert len(calls) == 3 and all(r.get("data-a") != "-1" and r.get("data-b") != "-1" for r in calls)
    assert sum("reply" in _classes(r) for r in arrows) == 3  # the answers, dashed, back to the caller
    signals = {(r.get("data-t"), "exit" in _classes(r)) for r in arrows if _classes(r) & {"exit", "down"}}
    assert {kind for _t, kind in signals} == {True, False}
    assert len(_rows(svg)) == len(events)  # nothing filtered: every event is a row


def test_terminations_are_marked_with_their_reason_and_connections_are_drawn(run):
    svg = _svg(render(run.trace))
    ends = [r for r in _rows(svg) if "term" in _classes(r)]
    assert len(ends) == sum(e["kind"] == "terminate" for e in run.trace.events) >= 1
    texts = ["".join(r.itertext()) for r in ends]
    assert any(HOSTILE in t for t in texts)
    kinds = {c for r in _rows(svg) for c in _classes(r)}
    assert {"connect", "disconnect", "node-start"} <= kinds


def test_faults_are_shaded_across_the_lifelines_of_their_hosts_for_their_duration(run):
    svg = _svg(render(run.trace))
    shades = [r for r in svg.iter(f"{SVG}rect") if "shade" in _classes(r)]
    groups = {g.findtext(f"{SVG}text"): g.get("data-g") for g in svg.iter(f"{SVG}g") if g.get("class") == "group"}
    part = [r for r in shades if "f-part" in _classes(r)]
    crash = [r for r in shades if "f-crash" in _classes(r)]
    assert {r.get("data-g") for r in part} == {groups["n1@host1"], groups["n3@host3"]}
    assert {r.get("data-g") for r in crash} == {groups["n2@host2"]}
    rows = _rows(svg)
    faults = [r for r in rows if "fault" in _classes(r)]
    texts = ["".join(r.itertext()) for r in faults]
    assert any("partition" in t for t in texts) and any("repair" in t for t in texts)
    # the shading spans from the fault's row to the row of what ended it
    start = next(r for r in faults if "f-part" in _classes(r))
    end = next(r for r in faults if "repair" in "".join(r.itertext()))
    assert part[0].get("data-r0") == start.get("data-r") and part[0].get("data-r1") == end.get("data-r")
    boot = next(r for r in faults if "boot" in "".join(r.itertext()))
    assert crash[0].get("data-r1") == boot.get("data-r")
    assert all(float(r.get("height", "0")) > 20 for r in part + crash)


def test_filtering_by_node_keeps_only_its_lifelines_and_stubs_the_arrows_from_elsewhere(run):
    svg = _svg(render(run.trace, nodes=["n1@host1"]))
    heads = _heads(svg)
    assert heads and all(h.split("/")[0] == "n1@host1" for h in heads)
    page = render(run.trace, nodes=["n1@host1"])
    assert "n2@host2/" not in "".join(_heads(svg)) and 'value="1"' not in page.split('class="psel"')[0]
    rows = _rows(svg)
    arrows = [r for r in rows if "arrow" in _classes(r)]
    on_n1 = sum(e["kind"] in ("deliver", "signal", "reply")
                and any((e.get(k) or "").startswith("n1@host1/") for k in ("to", "from"))
                for e in run.trace.events)
    assert len(arrows) == on_n1 > 0
    stubs = [r for r in arrows if r.get("data-a") == "-1"]
    assert stubs and all(r.find(f".//{SVG}text[@class='stub']") is not None for r in stubs)
    # the faults on hosts shown are still shaded; the crash of host2 shades nothing here
    classes = {c for r in svg.iter(f"{SVG}rect") if "shade" in _classes(r) for c in _classes(r)}
    assert "f-part" in classes and "f-crash" not in classes


def test_filtering_by_process_and_time_window(run):
    events = run.trace.events
    caller = next(e["pid"] for e in events if e["kind"] == "spawn" and e["behavior"] == "Caller")
    svg = _svg(render(run.trace, processes=[caller]))
    assert _heads(svg) == ["n1@host1", caller]
    assert all(caller in (r.findtext(f"{SVG}title") or "") or "fault" in _classes(r)
               or r.get("data-a") == "0" or r.get("data-b") == "0" for r in _rows(svg))
    lo, hi = 9.0, 20.0
    svg = _svg(render(run.trace, start=lo, end=hi))
    rows = [r for r in _rows(svg)]
    assert rows and all(lo <= float(r.get("data-t", "nan")) <= hi for r in rows)
    def groups(svg: ET.Element) -> list[str | None]:
        return [g.findtext(f"{SVG}text") for g in svg.iter(f"{SVG}g") if g.get("class") == "group"]

    # every node, in the full chart's order, even one that does nothing in the window
    late = _svg(render(run.trace, start=19.5))  # only n3 does anything then
    assert {r.findtext(f"{SVG}title").split("node=")[1].split()[0] for r in _rows(late)} == {"n3@host3"}
    assert groups(late) == groups(svg) == groups(_svg(render(run.trace))) == ["n1@host1", "n2@host2", "n3@host3"]
    # the partition began before the window and lasts into it: shaded from the top
    part = [r for r in svg.iter(f"{SVG}rect") if "f-part" in _classes(r)]
    assert part and all(r.get("data-r0") == "0" for r in part)


def test_texts_from_the_trace_are_escaped(run):
    page = render(run.trace, title=f"run {HOSTILE}")
    assert HOSTILE not in page and "</text><script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    parser = _Tags()
    parser.feed(page)
    assert parser.tags.count("script") == 1
    # hand-made events too: a fault's detail, a node's name, a control character
    events = [{"t": 0.0, "kind": "node_start", "node": "a@h<i>", "creation": 1},
              {"t": 1.0, "kind": "fault", "fault": "partition", "a": ["h<i>"], "b": ['x"y'], "note": "\x00\x1b"},
              {"t": 2.0, "kind": "deliver", "node": "a@h<i>", "to": "a@h<i>/1", "from": None, "what": "message",
               "msg": "'&amp;'"}]
    page = render(events)
    _svg(page)  # well-formed XML: nothing raw got through
    assert "<i>" not in page and "&amp;amp;" in page and "x&quot;y" in page


def test_the_same_trace_gives_the_same_bytes(run, tmp_path):
    first = render(run.trace, tmp_path / "chart.html")
    again = faulty_run()
    assert again.trace.hash() == run.trace.hash()
    assert render(again.trace) == first
    run.trace.write(tmp_path / "trace.jsonl")
    assert render(sim.Trace.read(tmp_path / "trace.jsonl")) == first
    assert (tmp_path / "chart.html").read_text(encoding="utf-8") == first


class Ping(ergo.Actor):
    def init(self, peer: Any = None, n: int = 0) -> None:
        if peer is not None:
            for i in range(n):
                self.send(peer, i)

    def handle_message(self, from_: Any, message: Any) -> None:
        if isinstance(message, int) and message % 2 == 0:
            self.send(from_, message + 1)


def test_a_trace_of_a_few_thousand_events_renders_to_a_sane_size():
    s = sim.Sim(1, trace=True)
    n1, n2 = _cluster(s, 2)
    pongs = [n2.spawn(Ping) for _ in range(10)]
    for p in pongs:
        n1.spawn(Ping, p, 300)
    s.run_for(5.0)
    s.partition("host1", "host2")
    s.run_for(10.0)
    events = s.trace.events
    assert len(events) > 4000
    began = time.perf_counter()
    page = render(s.trace)
    took = time.perf_counter() - began
    svg = _svg(page)
    assert len(_rows(svg)) == len(events)
    assert len(page) < 600 * len(events)  # a few hundred bytes an event
    print(f"{len(events)} events: {len(page)} bytes in {took:.2f} s")


def test_bad_arguments_are_incorrect(run):
    with pytest.raises(Incorrect, match="Trace or a list"):
        render("trace.jsonl")  # type: ignore[arg-type]
    with pytest.raises(Incorrect, match="list of names"):
        render(run.trace, nodes="n1@host1")
    with pytest.raises(Incorrect, match="virtual seconds"):
        render(run.trace, start="1")  # type: ignore[arg-type]
    with pytest.raises(Incorrect, match="title"):
        render(run.trace, title=3)  # type: ignore[arg-type]


def test_render_chart_is_exported_from_sim():
    assert sim.render_chart is render


# -- the page's script, run in jsdom where it is installed (not in CI: no browser there) -----

_DRIVER = r"""
const {JSDOM, VirtualConsole} = require('jsdom');
const errors = [];
const vc = new VirtualConsole().on('jsdomError', e => errors.push(String(e.stack || e)));
const text = require('fs').readFileSync(process.argv[2], 'utf8');
const dom = new JSDOM(text, {runScripts: 'dangerously', virtualConsole: vc});
const d = dom.window.document, W = dom.window;
const chart = () => d.getElementById('chart').outerHTML;
const shown = sel => [...d.querySelectorAll(sel)].filter(e => e.style.display !== 'none');
const fire = (el, kind) => el.dispatchEvent(new W.Event(kind));
const out = {};
const before = chart();
fire(d.getElementById('text'), 'input');
out.same = before === chart();
const box = d.querySelectorAll('input.gsel')[1];
box.checked = false; fire(box, 'change');
out.heads = shown('#heads .head').map(h => h.querySelector('title').textContent);
out.rows = shown('#rows .ev').length;
box.checked = true; fire(box, 'change');
d.getElementById('from').value = '9'; d.getElementById('to').value = '12'; fire(d.getElementById('to'), 'input');
out.times = shown('#rows .ev').map(e => +e.getAttribute('data-t'));
out.errors = errors;
console.log(JSON.stringify(out));
"""


def _jsdom() -> str | None:
    import shutil
    import subprocess
    node = shutil.which("node")
    if node is None:
        return None
    found = subprocess.run([node, "-e", "require.resolve('jsdom')"], capture_output=True)
    return node if found.returncode == 0 else None


@pytest.mark.skipif(_jsdom() is None, reason="needs node with jsdom (NODE_PATH) to run the page's script")
def test_the_page_script_lays_out_as_the_python_side_and_filters(run, tmp_path):
    import json
    import subprocess
    page = tmp_path / "chart.html"
    render(run.trace, page)
    driver = tmp_path / "driver.js"
    driver.write_text(_DRIVER)
    node = _jsdom()
    assert node is not None
    done = subprocess.run([node, str(driver), str(page)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["errors"] == []
    assert out["same"]  # laid out again with nothing filtered: the very drawing Python made
    assert out["heads"] and not any(h.startswith("n2@host2") for h in out["heads"])
    assert out["rows"] == sum(1 for r in _rows(_svg(render(run.trace, nodes=["n1@host1", "n3@host3"]))))
    assert out["times"] and all(9 <= t <= 12 for t in out["times"])
