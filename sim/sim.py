"""``Sim``: the one object a simulation test holds.

It owns the world (SimPy environment, seed, hosts) and drives the clock.  A test reads as
a story: make hosts, start nodes on them, send, run the clock, look at what happened.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from ergo.gen.errors import Incorrect, NameUnknown, NotAllowed, Timeout
from ergo.gen.options import NodeOptions
from ergo.node.node import Node, validate_node_name
from ergo.scheduler import check_delay

from .faults import POINTS, Buggify
from .host import Host
from .trace import Trace
from .transport import Link
from .world import EPOCH, World

__all__ = ["DEFAULT_RUN_LIMIT", "Sim"]

#: how many virtual seconds ``Sim.run()`` goes on without going quiet before it gives up
DEFAULT_RUN_LIMIT = 3600.0

#: how many of the known hosts the error for an unknown one lists (the rest are counted)
_HOSTS_LISTED = 8


def _no_such_host(name: str, hosts: Iterable[str]) -> str:
    """The error text for a verb naming host ``name``, which nobody made: the name, a
    close match, the known hosts (a bounded list) and how to make one."""
    known = sorted(hosts)
    close = difflib.get_close_matches(name, known, n=1)
    guess = f" (did you mean {close[0][:40]!r}?)" if close else ""
    shown = ", ".join(h[:40] for h in known[:_HOSTS_LISTED]) or "none yet"
    if len(known) > _HOSTS_LISTED:
        shown += f" and {len(known) - _HOSTS_LISTED} more"
    return (f"no host named {name[:40]!r} in the simulation{guess}; its hosts: {shown}. "
            "A host is made by Sim.host(name) or by starting a node on it")


class Sim:
    def __init__(self, seed: int = 0, epoch: float = EPOCH, *, trace: bool = False) -> None:
        """A simulation determined by ``seed``.  ``trace``: record what happens from the
        start (``self.trace``; see ``sim.trace``); it can also be started later."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise Incorrect(f"a seed is an int, not {type(seed).__name__}")
        self.world = World(seed, epoch)
        if trace:
            self.world.trace.start()

    @property
    def trace(self) -> Trace:
        """What happened: deliveries, signals, spawns, terminations, connections, faults
        (empty unless recording: ``Sim(seed, trace=True)`` or ``sim.trace.start()``)."""
        return self.world.trace

    @property
    def seed(self) -> int:
        return self.world.seed

    @property
    def events(self) -> int:
        """How many simulation events (a message's hop, a timer, a delivery ...) have run."""
        return self.world.steps[0]

    @property
    def now(self) -> float:
        """Virtual seconds since the simulation began."""
        return self.world.env.now

    @staticmethod
    def _host_name(name: object) -> str:
        if not isinstance(name, str) or not name or "@" in name:
            shown = repr(name[:40]) if isinstance(name, str) else type(name).__name__
            # a node's name where its host's is meant: say which host that is
            hint = f" (the host of node {name[:40]} is {name.rsplit('@', 1)[1][:40]!r})" \
                if isinstance(name, str) and name.count("@") == 1 and not name.endswith("@") else ""
            raise Incorrect(f"a host name is a non-empty str without '@', not {shown}{hint}")
        return name

    def host(self, name: str = "localhost") -> Host:
        """The host called ``name``, made on first use (as ``start_node`` makes its node's
        host).  The fault verbs name only hosts made so: make one here to set its links
        up (latency, partitions) before its first node starts."""
        self._host_name(name)
        host = self.world.hosts.get(name)
        if host is None:
            host = self.world.hosts[name] = Host(self.world, name)
        return host

    def link(self, a: str, b: str) -> Link:
        """The link between hosts ``a`` and ``b`` (either order; ``a == b``: a host's loopback).
        ``Incorrect`` if either host was never made (``host``, ``start_node``)."""
        return self.world.link(self._existing(a).name, self._existing(b).name)

    def set_latency(self, a: str, b: str, seconds: float) -> None:
        """Bytes and datagrams between hosts ``a`` and ``b`` take ``seconds`` each way from now
        on (what is already in flight keeps its time and order).  The default is
        ``sim.transport.DEFAULT_LATENCY`` (1 ms), loopback included.  ``Incorrect`` if
        either host was never made (``host``, ``start_node``)."""
        self.link(a, b).latency = check_delay(seconds, "a latency")
        self.world.note_fault("latency", a=a, b=b, seconds=seconds)

    def start_node(self, name: str, options: NodeOptions | None = None) -> Node:
        """Start ``name@host`` on its host (made on first use)."""
        atom = validate_node_name(name)  # says what is wrong with the name ("app": no @host) first
        return self.host(atom.value.split("@", 1)[1]).start_node(name, options)

    def node(self, name: str) -> Node:
        """The node called ``name`` last started (after a restart: the new one); ``NameUnknown``
        if no node of that name was ever started."""
        atom = validate_node_name(name)
        host = self.world.hosts.get(atom.value.split("@", 1)[1])
        node = host.nodes.get(atom.value) if host is not None else None
        if node is None:
            raise NameUnknown(f"no node named {atom.value} was started in this simulation")
        return node

    # -- faults (docs/simulation.md, "Faults") -----------------------------------------

    # Every verb names hosts that were made (``host``, ``start_node``, ``on_start``): a
    # typo would otherwise make a new host nobody uses, and the fault would silently
    # act on nothing the test meant.

    def _existing(self, name: object) -> Host:
        """The host called ``name``; ``Incorrect`` (naming it and the known hosts) if it was never made."""
        host = self.world.hosts.get(self._host_name(name))
        if host is None:
            raise Incorrect(_no_such_host(str(name), self.world.hosts))
        return host

    def _group(self, group: str | Iterable[str]) -> list[str]:
        """The host names of ``group``, in its order; a set's sorted, as a set has no order
        of its own (a set of strings iterates in an order ``PYTHONHASHSEED`` decides, which
        would decide the order of the trace's fault and of what flows first on release).
        Every name is checked before a verb changes anything."""
        names = [group] if isinstance(group, str) else list(group) if isinstance(group, Iterable) else None
        if not names:
            raise Incorrect(f"hosts are named by a str or a non-empty list of them, not {group!r}"[:200])
        hosts = [self._existing(n).name for n in names]
        return sorted(hosts) if isinstance(group, AbstractSet) else hosts

    def _directions(self, a: str | Iterable[str], b: str | Iterable[str], what: str) -> list[tuple[Link, str]]:
        """(link, sending end) for every direction from group ``a`` to group ``b``."""
        out = []
        for x in self._group(a):
            for y in self._group(b):
                if x == y:
                    raise Incorrect(f"{what} is between two different hosts, not {x!r} and itself")
                out.append((self.world.link(x, y), x))
        return out

    def set_jitter(self, a: str, b: str, seconds: float) -> None:
        """Every item crossing between hosts ``a`` and ``b`` (both ways) takes up to
        ``seconds`` more than the latency, drawn from the seed; it never overtakes what was
        sent before it in the same direction (bytes of a stream never reorder)."""
        self.link(a, b).jitter = check_delay(seconds, "a jitter")
        self.world.note_fault("jitter", a=a, b=b, seconds=seconds)

    def hold(self, a: str | Iterable[str], b: str | Iterable[str]) -> None:
        """Everything between hosts (or groups) ``a`` and ``b``, both ways, waits on the link
        (bytes, connects, datagrams) until ``release``; then it flows in order."""
        a, b = self._group(a), self._group(b)  # once: an iterator gives its names only once
        for link, source in self._directions(a, b, "a hold") + self._directions(b, a, "a hold"):
            link.block(source, "held", True)
        self.world.note_fault("hold", a=a, b=b)

    def release(self, a: str | Iterable[str] | None = None, b: str | Iterable[str] | None = None) -> None:
        """End a ``hold`` between ``a`` and ``b`` (without arguments: every hold)."""
        if a is None and b is None:
            directions = [(link, s) for link in self.world.links.values() for s in sorted(link.held)]
        elif a is None or b is None:
            raise Incorrect("release takes two hosts (or groups), or none for every hold")
        else:
            a, b = self._group(a), self._group(b)
            directions = self._directions(a, b, "a release") + self._directions(b, a, "a release")
        for link, source in directions:
            link.block(source, "held", False)
        self.world.note_fault("release", a=a, b=b)

    def partition(self, a: str | Iterable[str], b: str | Iterable[str]) -> None:
        """Cut hosts (or groups) ``a`` and ``b`` apart, both ways, until ``repair``.

        As a black hole in a real network: a stream's bytes are not delivered meanwhile and
        its connection is *not* reset (TCP retransmits; what waited is delivered in order
        after the repair if both ends still hold the connection); the nodes find out by
        their heartbeats (``NetworkOptions.heartbeat_timeout``) and close it themselves.
        A new connect across waits too, so the dial times out (``connect_timeout``), never
        refused at once.  Datagrams across are lost."""
        a, b = self._group(a), self._group(b)
        for link, source in self._directions(a, b, "a partition") + self._directions(b, a, "a partition"):
            link.block(source, "cut", True)
        self.world.note_fault("partition", a=a, b=b)

    def partition_oneway(self, a: str | Iterable[str], b: str | Iterable[str]) -> None:
        """Cut the direction from ``a`` to ``b`` only (as ``partition``); ``b`` to ``a`` flows."""
        a, b = self._group(a), self._group(b)
        for link, source in self._directions(a, b, "a partition"):
            link.block(source, "cut", True)
        self.world.note_fault("partition_oneway", a=a, b=b)

    def repair(self, a: str | Iterable[str] | None = None, b: str | Iterable[str] | None = None) -> None:
        """End the partitions between ``a`` and ``b``, both directions (without arguments:
        every partition); what waited is delivered in order."""
        if a is None and b is None:
            directions = [(link, s) for link in self.world.links.values() for s in sorted(link.cut)]
        elif a is None or b is None:
            raise Incorrect("repair takes two hosts (or groups), or none for every partition")
        else:
            a, b = self._group(a), self._group(b)
            directions = self._directions(a, b, "a repair") + self._directions(b, a, "a repair")
        for link, source in directions:
            link.block(source, "cut", False)
        self.world.note_fault("repair", a=a, b=b)

    def crash(self, host: str) -> None:
        """Host ``host`` goes down at once: every node on it vanishes (no FIN, no Terminate
        frames, its processes and timers stop, its ports are freed), and it sends and
        answers nothing until ``restart``; peers learn it only through their heartbeats."""
        h = self._existing(host)
        h._crash()
        self.world.note_fault("crash", host=h.name)

    def restart(self, host: str, start: Callable[[Host], Any] | None = None) -> None:
        """Boot host ``host`` again (after ``crash``): at this moment, or once its clock is
        past the second of its nodes' last creation, so that the new nodes' creation is new.
        Its nodes then start with ``start(host)`` (given here or by ``on_start``), or else
        the nodes that ran at the crash start again with their options (no processes).
        ``host.up`` says when it is back; ``node(name)`` gives the new node."""
        h = self._existing(host)
        h._restart(start)
        self.world.note_fault("restart", host=h.name)

    def on_start(self, host: str, start: Callable[[Host], Any]) -> None:
        """How the nodes of ``host`` start: ``start(host)`` (it calls ``host.start_node``),
        run now and again at every restart."""
        if not callable(start):
            raise Incorrect(f"a host's start function is a callable taking the host, not {start!r}"[:200])
        h = self.host(host)
        h.start = start
        if h.up:
            start(h)

    def kill_node(self, name: str) -> None:
        """Kill node ``name`` at once, as ``kill -9`` kills its process: nothing of it runs
        any more and it sends nothing (no Terminate frames), and its host, which lives on,
        resets its connections (peers hear ``NoConnection`` at once) and frees its ports."""
        atom = validate_node_name(name)
        self._existing(atom.value.split("@", 1)[1])._kill(atom.value)
        self.world.note_fault("kill_node", node=atom.value)

    def kill_registrar(self, host: str, port: int = 4499) -> str:
        """Kill the node that serves the registrar of ``host`` (on ``port``): the other
        nodes there fail over (one of them serves).  Returns the killed node's name."""
        h = self._existing(host)
        if type(port) is not int or not 0 < port < 65536:
            raise Incorrect(f"kill_registrar takes a port number from 1 to 65535, not {port!r}"[:200])
        server = h.ports.stream.get(port)
        owner = getattr(server, "_transport", None)
        for name, (_options, _scheduler, transport) in h._runs.items():
            if transport is owner and h.nodes[name].is_alive():
                self.kill_node(name)
                return name
        raise NotAllowed(f"no node serves the registrar of host {h.name} on port {port}")

    def pause(self, host: str) -> None:
        """Freeze host ``host`` (a slow machine, not a dead one): nothing on it runs, what
        reaches it waits (its sockets fill, its senders' flow control pushes back), timers
        falling due wait; ``resume`` runs it all in the order it came."""
        self._existing(host).machine.paused = True
        self.world.note_fault("pause", host=host)

    def resume(self, host: str) -> None:
        """Let a paused host run again: what waited runs now, in order."""
        m = self._existing(host).machine
        if m.paused:
            m.paused = False
            self.world.env.timeout(0).callbacks.append(lambda _event: m.thaw())
        self.world.note_fault("resume", host=host)

    def set_clock_skew(self, host: str, *, rate: float | None = None, offset: float | None = None) -> None:
        """Skew the clock of ``host`` (its nodes' ``now`` and ``time``; the world keeps
        virtual time).  ``rate``: from now on it advances ``rate`` seconds per virtual
        second (2.0: twice as fast), and so do its timers (a 1 s timer fires after 0.5
        virtual s).  ``offset``: it reads ``offset`` seconds more than virtual time from
        now on (a step, forward or back; timers already set keep their virtual time)."""
        m = self._existing(host).machine
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < math.inf:
                raise Incorrect(f"a clock rate is a finite number > 0, not {rate!r}"[:200])
        if offset is not None:
            if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not -math.inf < offset < math.inf:
                raise Incorrect(f"a clock offset is a finite number of seconds, not {offset!r}"[:200])
        now = self.world.env.now
        local = m.local(now) if m.skewed else now
        if offset is not None:
            local = now + offset
        m.base_local, m.base_virtual = local, now
        if rate is not None:
            m.rate = float(rate)
        m.skewed = m.rate != 1.0 or m.base_local != m.base_virtual
        self.world.note_fault("clock_skew", host=host, rate=m.rate, offset=local - now)

    def buggify(self, *points: str, enable: bool = True, probability: float | None = None) -> None:
        """Activate fault points of the runtime for this run (``sim.faults.POINTS``).

        Without names every point is activated with chance 1/2, drawn from the seed (each
        seed its own mix); named points are activated for sure.  An active point fires with
        ``probability`` (else its own default), drawn from the seed.  ``enable=False``
        turns the named points (or all) off.  Off by default."""
        names = [Buggify.check(p) for p in points] or None
        if probability is not None and (isinstance(probability, bool) or not isinstance(probability, (int, float))
                                        or not 0.0 <= probability <= 1.0):
            raise Incorrect(f"a probability is a number in 0..1, not {probability!r}"[:200])
        if enable:
            self.world.buggify.enable(names, probability)
        else:
            self.world.buggify.disable(names)
        self.world.note_fault("buggify", points=sorted(self.world.buggify.points), enable=enable)

    @staticmethod
    def buggify_points() -> dict[str, str]:
        """Every fault point's name and what it does when it fires."""
        return {name: doc for name, (_p, doc) in POINTS.items()}

    def run(self, until: float | None = None, *, limit: float = DEFAULT_RUN_LIMIT) -> None:
        """Run the clock until virtual time ``until``, or until nothing is left to happen.

        With ``until``, everything due at or before it runs (a timer due exactly then
        included) and the clock then reads ``until``; a time the clock has passed already
        runs nothing and leaves the clock as it is (it never goes back).  Without it the clock stops at the
        last thing that happened: timers that were cancelled (a call's timeout once its
        reply came) do not drag it forward.  A simulation that never goes quiet (a periodic
        timer, an endless exchange) raises ``Timeout`` once ``limit`` virtual seconds have
        passed, instead of hanging: use ``run_for`` or ``run_until`` for those.
        """
        env = self.world.env
        if until is not None:
            self._run_to(check_delay(until, "a time to run until"))
            return
        deadline = env.now + check_delay(limit, "a run limit")
        quiet = self.world.quiet
        steps = self.world.steps
        while not quiet():
            if env.peek() > deadline:
                raise Timeout(
                    f"the simulation is still busy after {limit} virtual seconds (a periodic timer or "
                    "an endless exchange keeps it going): use run_for(seconds) or run_until(predicate), "
                    "or pass a larger limit"
                )
            env.step()
            steps[0] += 1

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``, running everything due meanwhile, a timer due
        exactly at the end included."""
        self._run_to(self.world.env.now + check_delay(seconds, "a time to run for"))

    def run_until(self, predicate: Callable[[], object], timeout: float | None = None) -> None:
        """Run the clock until ``predicate()`` is true (it is checked before each event).

        Raises ``Timeout`` if nothing is left to run while it is still false (it never will
        be), or once ``timeout`` virtual seconds have passed.
        """
        if not callable(predicate):
            raise Incorrect(f"run_until takes a function returning a truth value, not {predicate!r}")
        env = self.world.env
        deadline = math.inf if timeout is None else env.now + check_delay(timeout, "a timeout")
        quiet = self.world.quiet
        while not predicate():
            if quiet():
                raise Timeout(f"the condition is still false and nothing is left to run (at {env.now} s)")
            if env.peek() > deadline:
                self._run_to(deadline)
                raise Timeout(f"the condition is still false after {timeout} virtual seconds")
            env.step()
            self.world.steps[0] += 1

    def _run_to(self, t: float) -> None:
        env = self.world.env
        n = 0
        while env.peek() <= t:
            env.step()
            n += 1
        self.world.steps[0] += n
        if t > env.now:
            env.run(until=t)  # nothing is due before t: this only moves the clock

    def step(self) -> bool:
        """Run one event; False if there was none."""
        env = self.world.env
        if env.peek() == float("inf"):
            return False
        env.step()
        self.world.steps[0] += 1
        return True
