from __future__ import annotations

from dlmsdoctor.events import CloseHow
from dlmsdoctor.link.clock import FakeClock
from dlmsdoctor.link.scripted import Close, Deliver, Expect, ScriptedChannel


async def test_script_replays_on_fake_clock() -> None:
    clock = FakeClock()
    ch = ScriptedChannel([Expect(b"a"), Deliver(b"b", 0.3), Expect(), Close(CloseHow.RST, 2.0)],
                         clock)
    await ch.send(b"a")
    chunk = await ch.receive(1.0)
    assert chunk is not None and chunk.data == b"b" and chunk.at == 0.3
    assert await ch.receive(1.0) is None  # the peer waits for our next frame: silence
    assert clock.now() == 1.3
    await ch.send(b"zz")
    assert await ch.receive(1.5) is None and ch.closed is None  # close is 2 s away
    assert await ch.receive(1.0) is None
    assert ch.closed is not None and ch.closed.how is CloseHow.RST and ch.closed.by_peer
    assert ch.closed.at == 1.3 + 2.0
    assert ch.mismatches == []


async def test_mismatch_is_recorded() -> None:
    ch = ScriptedChannel([Expect(b"a")], FakeClock())
    await ch.send(b"b")
    assert ch.mismatches
