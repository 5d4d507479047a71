"""A group room split by a network partition, with a removal and a crash on the way, heals.

Five members a..e, each a node process in its own network namespace, all on one bridge
and finding each other with real mDNS. The network splits into {a, b} | {c, d, e}; both
sides post; ``a`` removes ``e`` while ``e`` keeps posting on its side; ``d`` is killed
with SIGKILL and started again, all during the partition. Once the network heals, the
remaining members must agree within 30 s: same members, same messages in the same order,
nothing lost, nothing twice, and nothing of what ``e`` wrote after the split (which ``a``
had not seen when it removed ``e``: concurrent with the removal, so dropped everywhere).

Skipped with a clear reason when not root or without ``ip netns``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.netns import Netns, netns_network, require_netns

pytestmark = pytest.mark.netns

PEER_SCRIPT = Path(__file__).with_name("ns_group_peer.py")
NAMES = ("a", "b", "c", "d", "e")
START = 20.0  # a node process up and listening
FORM = 30.0  # discovery, contacts, invitations and joins
CONVERGE = 30.0  # after healing: the promise under test


class Peer:
    """One ``ns_group_peer.py`` process: commands out, answers and event lines back.

    Event lines of every peer go to one ``wakeups`` queue, so a test can wait for "any
    node changed something" rather than for time.
    """

    def __init__(self, ns: Netns, profile: str, wakeups: queue.Queue[str]) -> None:
        self.profile = profile
        self.proc = ns.popen_python(
            None, "--profile", profile, "--interface", ns.interface, script=PEER_SCRIPT
        )
        self._wakeups = wakeups
        self._answers: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._numbers = iter(range(1, 1_000_000))
        self._ready: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        try:
            ready = self._ready.get(timeout=START)
        except queue.Empty:
            raise AssertionError(f"{profile} did not start: {self.stderr[-20:]}") from None
        self.id: str = ready["peer"]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            if "re" in msg:
                with self._cond:
                    self._answers[msg["re"]] = msg
                    self._cond.notify_all()
            elif msg.get("ev") == "ready":
                self._ready.put(msg)
            else:
                self._wakeups.put(self.profile)
        self._wakeups.put(self.profile)  # exited: whoever waits should look again

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))
            del self.stderr[:-200]

    def request(self, cmd: str, **args: Any) -> int:
        """Send a command; returns its number, for :meth:`answer`."""
        number = next(self._numbers)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"re": number, "cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        return number

    def answer(self, number: int, within: float = 20.0) -> Any:
        """The result of command ``number``; AssertionError on error or timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: number in self._answers, timeout=within):
                raise AssertionError(f"{self.profile}: no answer within {within} s")
            msg = self._answers.pop(number)
        if "error" in msg:
            raise AssertionError(f"{self.profile}: {msg['error']}")
        return msg["ok"]

    def call(self, cmd: str, **args: Any) -> Any:
        """Run a command and wait for its result (a waiting command's own ``seconds``,
        plus a margin, or 20 s)."""
        return self.answer(self.request(cmd, **args), args.get("seconds", 15.0) + 5.0)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()


def on_all(peers: list[Peer], cmd: str, **args: Any) -> list[Any]:
    """Run one command on several peers at once; their results, in order."""
    numbers = [p.request(cmd, **args) for p in peers]
    return [p.answer(n) for p, n in zip(peers, numbers, strict=True)]


def wait_until(
    wakeups: queue.Queue[str], check: Callable[[], bool], within: float, what: Callable[[], str]
) -> None:
    """Re-check whenever any node reports an event (and at least once a second, in case
    a change comes without one) until ``check()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        while not wakeups.empty():
            wakeups.get_nowait()
        if check():
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"not within {within} s: {what()}")
        with contextlib.suppress(queue.Empty):
            wakeups.get(timeout=min(remaining, 1.0))


@contextlib.contextmanager
def running(ns_list: list[Netns], wakeups: queue.Queue[str]) -> Iterator[dict[str, Peer]]:
    peers: dict[str, Peer] = {}
    try:
        for ns, name in zip(ns_list, NAMES, strict=True):
            peers[name] = Peer(ns, name, wakeups)
        yield peers
    finally:
        for peer in peers.values():
            peer.close()
        for peer in peers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                peer.proc.wait(timeout=10)


def test_partition_with_removal_and_kill9_converges_within_30s_of_healing(
    p2pchat_home: Path,
) -> None:
    require_netns()
    wakeups: queue.Queue[str] = queue.Queue()
    with netns_network(len(NAMES)) as net, running(net.members, wakeups) as peers:
        a, b, c, d, e = (peers[n] for n in NAMES)
        everyone = [a, b, c, d, e]
        ids = {p.profile: p.id for p in everyone}

        # Everyone finds everyone over mDNS, then they befriend each other.
        def others(p: Peer) -> list[str]:
            return [i for i in ids.values() if i != p.id]

        waits = [(p, p.request("wait_online", peers=others(p), seconds=FORM)) for p in everyone]
        for p, number in waits:
            p.answer(number, FORM + 5)
        accepts = [(p, p.request("accept", peers=others(p))) for p in everyone]
        for p, number in accepts:
            p.answer(number)

        # a makes the room; everyone is invited and joins.
        room = a.call("create", name="five")
        for p in [b, c, d, e]:
            a.call("invite", room=room, peer=p.id)
            p.call("wait_invited", room=room, seconds=FORM)
            p.call("join", room=room)

        def snapshot(p: Peer) -> dict[str, Any]:
            return p.call("snapshot", room=room)  # type: ignore[no-any-return]

        def all_joined() -> bool:
            return all(
                sum(1 for m in snapshot(p)["members"] if m[2] == "joined") == 5 for p in everyone
            )

        wait_until(wakeups, all_joined, FORM, lambda: "not every member sees five members")

        # Everyone posts while the network is whole; everyone gets everything.
        posted = on_all(everyone, "send", room=room, texts=["hello 1", "hello 2"])
        before = [i for ids_of_one in posted for i in ids_of_one]

        def holds(p: Peer, wanted: list[str]) -> bool:
            return set(wanted) <= {m[0] for m in snapshot(p)["history"]}

        wait_until(
            wakeups,
            lambda: all(holds(p, before) for p in everyone),
            FORM,
            lambda: "the first posts did not reach everyone",
        )

        # Split {a, b} | {c, d, e}. Each side posts; a removes e, who keeps posting.
        net.partition([0, 1], [2, 3, 4])
        kept = list(before)
        split_posts = on_all(everyone, "send", room=room, texts=["split 1", "split 2"])
        for p, posted in zip(everyone, split_posts, strict=True):
            if p is not e:
                kept += posted
        dropped = list(split_posts[-1])  # e's, written after the split
        a.call("remove", room=room, peer=e.id)
        dropped += e.call("send", room=room, texts=["after my removal 1", "after 2"])
        kept += c.call("send", room=room, texts=["c during the removal"])

        # d crashes (kill -9) and comes back, still on the {c, d, e} side.
        d.kill9()
        d = peers["d"] = Peer(net[3], "d", wakeups)
        assert d.id == ids["d"]
        d.call("wait_online", peers=[ids["c"], ids["e"]], seconds=FORM)
        kept += d.call("send", room=room, texts=["d is back"])
        kept += a.call("send", room=room, texts=["a after removing e"])

        # Both sides notice the others are gone (their links time out), so healing means
        # finding each other again and catching up, not just resuming stalled sockets.
        far = [(a, "cde"), (b, "cde"), (c, "ab"), (d, "ab"), (e, "ab")]
        waits = [
            (p, p.request("wait_offline", peers=[ids[n] for n in names], seconds=FORM))
            for p, names in far
        ]
        for p, number in waits:
            p.answer(number, FORM + 5)
        # The cut is real: nothing written on the far side reached a.
        c_split = set(split_posts[2])
        assert c_split.isdisjoint(m[0] for m in snapshot(a)["history"]), "partition leaked"

        net.heal()
        remaining = [a, b, c, d]
        views: dict[str, dict[str, Any]] = {}

        def converged() -> bool:
            views.update({p.profile: snapshot(p) for p in remaining})
            first = views["a"]
            order = [m[0] for m in first["history"]]
            return all(
                v["members"] == first["members"] and [m[0] for m in v["history"]] == order
                for v in views.values()
            ) and set(kept) <= set(order)

        def differences() -> str:
            who = {i: n for n, i in ids.items()}
            lines = []
            for name, v in views.items():
                held = [m[0] for m in v["history"]]
                lines.append(
                    f"{name}: {len(held)} shown, missing {len(set(kept) - set(held))} kept, "
                    f"{len(set(dropped) & set(held))} of e's late posts, members "
                    f"{[(who.get(m[0], m[0][:8]), m[1], m[2]) for m in v['members']]}"
                )
            return "members did not converge after healing:\n" + "\n".join(lines)

        wait_until(wakeups, converged, CONVERGE, differences)
        # And it stays so: the room works for everyone left, and e's posts stay out.
        kept += a.call("send", room=room, texts=["all together again"])
        wait_until(wakeups, converged, CONVERGE, differences)

        view = views["a"]
        shown = [m[0] for m in view["history"]]
        assert [n for n, k in Counter(shown).items() if k > 1] == [], "a message shown twice"
        posts = Counter((m[1], m[3]) for m in view["history"] if m[2] == "text")
        assert [p for p, k in posts.items() if k > 1] == [], "a post stored twice (new id)"
        assert set(kept) <= set(shown), "a post by a remaining member was lost"
        assert set(dropped).isdisjoint(shown), "e's posts after the split must appear nowhere"
        states = {m[0]: m[2] for m in view["members"]}
        assert states[ids["e"]] == "removed"
        assert all(states[ids[n]] == "joined" for n in "abcd")
