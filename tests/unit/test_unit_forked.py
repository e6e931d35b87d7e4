"""kpolicy.forked: functions run in forked copies of the test process."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from kpolicy.errors import KpolicyError
from kpolicy.forked import start_forked, write_in_order


def test_a_forked_function_returns_its_value_or_raises_its_error() -> None:
    assert start_forked(lambda: {"pid": os.getpid()}).result()["pid"] != os.getpid()

    def fail() -> None:
        raise KpolicyError("bad line", file="x.jsonl", line=7)

    with pytest.raises(KpolicyError) as info:
        start_forked(fail).result()
    assert (info.value.message, info.value.file, info.value.line) == ("bad line", "x.jsonl", 7)


def test_a_cancelled_child_is_ended_and_reaped() -> None:
    import time

    child = start_forked(lambda: time.sleep(60))
    pid = child._pid
    child.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)  # already reaped


def test_a_child_that_dies_is_an_error_not_a_hang() -> None:
    with pytest.raises(KpolicyError, match="ended without an answer"):
        start_forked(lambda: os._exit(3)).result()


def _numbers(block: list[int]) -> tuple[list[Any], Optional[Exception]]:
    return [f"{n} pid-free\n".encode() for n in block], None


def _written(tmp_path: Path, blocks: list[list[int]], answer: Any, jobs: int
             ) -> tuple[str, Optional[Exception]]:
    path = tmp_path / f"out-{jobs}"
    with path.open("wb") as out:
        error = write_in_order(blocks, answer, out, jobs)
    return path.read_text(), error


BLOCKS = [list(range(k * 10, k * 10 + 10)) for k in range(9)]


@pytest.mark.parametrize("jobs", [2, 3, 8])
def test_workers_write_every_answer_in_input_order(tmp_path: Path, jobs: int) -> None:
    alone, none = _written(tmp_path, BLOCKS, _numbers, 1)
    together, still_none = _written(tmp_path, BLOCKS, _numbers, jobs)
    assert none is None and still_none is None
    assert together == alone == "".join(f"{n} pid-free\n" for n in range(90))


def _failing_at_55(block: list[int]) -> tuple[list[Any], Optional[Exception]]:
    done = [n for n in block if n < 55]
    error = KpolicyError("bad", line=55) if len(done) < len(block) else None
    return [f"{n}\n".encode() for n in done], error


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_an_error_stops_the_output_right_there(tmp_path: Path, jobs: int) -> None:
    text, error = _written(tmp_path, BLOCKS, _failing_at_55, jobs)
    assert text == "".join(f"{n}\n" for n in range(55))
    assert isinstance(error, KpolicyError) and error.line == 55


def test_a_worker_that_dies_ends_the_output_with_an_error(tmp_path: Path) -> None:
    def dies_at_block_4(block: list[int]) -> tuple[list[Any], Optional[Exception]]:
        if block[0] == 40:
            os._exit(3)
        if block[0] == 30:  # the other worker's block before: still being answered at the death
            time.sleep(0.5)
        return _numbers(block)

    text, error = _written(tmp_path, BLOCKS, dies_at_block_4, 2)
    assert text == "".join(f"{n} pid-free\n" for n in range(40))
    assert isinstance(error, KpolicyError) and "ended without an answer" in error.message


def test_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    pids = tmp_path / "worker.pid"
    script = (
        "import os, sys, time\n"
        "from kpolicy.forked import start_forked\n"
        "def work():\n"
        f"    open({str(pids)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "start_forked(work).result()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker = int(pids.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return  # gone with its parent
        if state == "Z":
            return  # ended; whoever adopted it has not reaped it yet
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the worker outlived its killed parent")


def test_map_in_parts_keeps_order_and_raises_a_part_s_error() -> None:
    from kpolicy.forked import map_in_parts

    results = map_in_parts(lambda part: (os.getpid(), sum(part)), [[1, 2], [3], [4, 5, 6]])
    assert [total for _pid, total in results] == [3, 3, 15]
    assert results[0][0] == os.getpid() and len({pid for pid, _ in results}) == 3

    def fail_on_three(part: list[int]) -> int:
        if 3 in part:
            raise KpolicyError("three", line=3)
        return sum(part)

    with pytest.raises(KpolicyError, match="three"):
        map_in_parts(fail_on_three, [[1, 2], [3], [4]])


def test_pieces_written_through_a_pipe_arrive_whole_and_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """write_pieces() hands the pieces to writev(), which may write only part of them (a
    signal, a socket): the rest, a piece cut in the middle included, must follow in order;
    more pieces than one writev() takes (IOV_MAX); what was buffered before comes first."""
    import io
    import threading

    from kpolicy import forked
    from kpolicy.forked import write_pieces

    real = os.writev
    short = iter([5, 70_001, 3, 200_000] * 1000)

    def writev(fd: int, buffers: list[Any]) -> int:  # the real call, given fewer bytes
        left, taken = next(short), []
        for b in buffers:
            if left <= 0:
                break
            taken.append(memoryview(b)[:left])
            left -= len(b)
        return real(fd, taken)

    monkeypatch.setattr(forked.os, "writev", writev)

    pieces: list[Any] = [bytes([65 + k % 26]) * (k * 997 % 70_000) for k in range(1500)]
    pieces[7] = memoryview(b"<view>" * 3000)[6:]
    want = b"head" + b"".join(bytes(p) for p in pieces)
    read_fd, write_fd = os.pipe()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(os.fdopen(read_fd, "rb").read()))
    reader.start()
    with os.fdopen(write_fd, "wb") as out:
        out.write(b"head")
        write_pieces(out, pieces)
    reader.join()
    assert got[0] == want
    buffer = io.BytesIO()  # no file: its own write()
    write_pieces(buffer, pieces)
    assert buffer.getvalue() == want[4:]
