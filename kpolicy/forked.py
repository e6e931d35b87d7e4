"""Running kpolicy's own functions in forked copies of this process, to use every core.

A fork executes no program: a child is kpolicy itself, with the same inputs, settings and
restrictions (a tree's `$(shell,...)` stays unanswered there too). What a child returns or
raises comes back pickled through a pipe from a process this one created, never from the tree.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, Generic, Optional, TypeVar

from kpolicy.errors import KpolicyError

T = TypeVar("T")
R = TypeVar("R")

_LENGTH = 8  # bytes of the length before each pickled frame


def _send(pipe: BinaryIO, call: Callable[[], object]) -> bool:
    """Write CALL's outcome as one frame, (True, value) or (False, exception); True if it
    returned."""
    returned = True
    try:
        frame = pickle.dumps((True, call()))
    except Exception as exc:
        returned = False
        try:
            frame = pickle.dumps((False, exc))
        except Exception:  # an exception that does not pickle
            frame = pickle.dumps((False, KpolicyError(f"worker failed: {exc!r}")))
    pipe.write(len(frame).to_bytes(_LENGTH, "little") + frame)
    return returned


def _receive(pipe: BinaryIO) -> object:
    """The value of the next frame; its exception is raised here."""
    head = pipe.read(_LENGTH)
    if len(head) < _LENGTH:
        raise KpolicyError("a worker process ended without an answer")
    ok, value = pickle.loads(pipe.read(int.from_bytes(head, "little")))
    if not ok:
        raise value
    return value


def _fork(body: Callable[[BinaryIO], None]) -> tuple[int, BinaryIO]:
    """Fork a child that runs BODY on the write end of a pipe and exits; (pid, read end)."""
    sys.stdout.flush()
    sys.stderr.flush()  # else what is buffered now would be printed twice
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        status = 0
        try:
            _end_with(parent)
            os.close(read_end)
            with os.fdopen(write_end, "wb") as pipe:
                body(pipe)
        except BaseException:  # a parent reading this child then sees no answer and says so
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, os.fdopen(read_end, "rb")


# prctl(2) option: the signal this process gets when its parent ends
_PR_SET_PDEATHSIG = 1


def _end_with(parent: int) -> None:
    """Have this child killed when PARENT ends (killed by a signal, say), so that no worker goes
    on parsing or answering for nobody. Linux only; elsewhere a worker finishes its work."""
    import ctypes  # here, in the child: not on any command's start-up

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)


def _end(pid: int, pipe: BinaryIO) -> None:
    pipe.close()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)  # a child whose answer is no longer wanted
    os.waitpid(pid, 0)


class Forked(Generic[T]):
    """A function running in a child process; result() waits for what it returned or raised."""

    def __init__(self, fn: Callable[[], T]) -> None:
        def body(pipe: BinaryIO) -> None:
            _send(pipe, fn)

        self._pid, self._pipe = _fork(body)

    def fileno(self) -> int:
        """The pipe the answer comes through: readable once the child has answered or ended."""
        return self._pipe.fileno()

    def result(self) -> T:
        """The child's return value; its exception is raised here."""
        try:
            return _receive(self._pipe)  # type: ignore[return-value]
        finally:
            self._pipe.close()
            os.waitpid(self._pid, 0)

    def cancel(self) -> None:
        """End the child now; its answer is no longer wanted."""
        _end(self._pid, self._pipe)


def start_forked(fn: Callable[[], T]) -> Forked[T]:
    """Start FN in a forked child of this process."""
    return Forked(fn)


def map_in_parts(fn: Callable[[T], R], parts: Sequence[T]) -> list[R]:
    """FN of each of PARTS, in order: the first computed in this process, each other one in a
    forked child at the same time."""
    others = [start_forked(functools.partial(fn, part)) for part in parts[1:]]
    try:
        mine = fn(parts[0])
    except BaseException:
        for worker in others:
            worker.cancel()
        raise
    return [mine, *(worker.result() for worker in others)]


# A block's answer: the bytes-like pieces to write, and the error that cut it short, if any.
Answer = tuple[list[Any], Optional[Exception]]


def write_pieces(out: BinaryIO, pieces: Sequence[Any]) -> None:
    """Write PIECES (bytes-like) to OUT in order: straight to its file with writev(), so a
    batch's ~70 KB answers are not first copied into OUT's buffer; OUT's own write() for a
    stream with no file."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # io.BytesIO and the like
        out.writelines(pieces)
        return
    out.flush()
    at, limit = 0, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
    todo = list(pieces)
    while at < len(todo):
        chunk = todo[at:at + limit]
        done = os.writev(fd, chunk)
        if done == sum(map(len, chunk)):  # the usual case, without a Python step per piece
            at += len(chunk)
            continue
        while done >= len(todo[at]):  # a pipe may take only part: resume in the first piece
            done -= len(todo[at])  # not written whole (DONE is less than CHUNK's length)
            at += 1
        if done:
            todo[at] = memoryview(todo[at])[done:]


def write_in_order(blocks: Sequence[T], answer: Callable[[T], Answer], out: BinaryIO,
                   jobs: int) -> Optional[Exception]:
    """Write the answer to each of BLOCKS to OUT, in order; return the first block's error, once
    everything before it is written (nothing after it is).

    With JOBS > 1, up to JOBS forked workers answer the blocks (block k by worker k mod JOBS)
    and write them to OUT themselves, taking turns: a baton passed round a ring of pipes says
    whose turn it is, so answers never travel between processes and a worker answers its next
    block while the others write."""
    if jobs <= 1 or len(blocks) <= 1:
        for block in blocks:
            pieces, error = answer(block)
            write_pieces(out, pieces)
            if error is not None:
                return error
        return None
    out.flush()
    count = min(jobs, len(blocks))
    batons = [os.pipe() for _ in range(count)]

    def serve(first: int) -> Callable[[BinaryIO], None]:
        def body(result: BinaryIO) -> None:
            mine, following = batons[first][0], batons[(first + 1) % count][1]
            for fd in {fd for pair in batons for fd in pair} - {mine, following}:
                os.close(fd)
            for block in blocks[first::count]:
                try:
                    pieces, error = answer(block)
                except Exception as exc:  # a bug: reported by the parent, in its place
                    pieces, error = [], exc
                if os.read(mine, 1) != _GO:  # an earlier block failed, or its worker died
                    _pass(following, _STOP)
                    break
                try:
                    write_pieces(out, pieces)
                    out.flush()
                except OSError as exc:  # the reader went away (| head): the parent says so
                    error = exc
                if error is not None:
                    _pass(following, _STOP)
                    _send(result, functools.partial(_reraise, error))
                    return
                _pass(following, _GO)
            _send(result, lambda: None)

        return body

    workers: list[tuple[int, BinaryIO]] = []
    try:
        for first in range(count):
            workers.append(_fork(serve(first)))
        os.write(batons[0][1], _GO)
        for pair in batons:
            for fd in pair:
                os.close(fd)
        batons.clear()
        # Every worker is heard out, not ended at the first failure: the one before a worker
        # that died may still be writing the blocks that come before its place. None waits
        # forever, since a dead worker's baton reads as the end of its pipe.
        first_error: Optional[Exception] = None
        for _pid, pipe in workers:
            try:
                _receive(pipe)
            except Exception as exc:
                first_error = first_error or exc
        return first_error
    finally:
        for pair in batons:  # when forking failed midway
            for fd in pair:
                os.close(fd)
        for pid, pipe in workers:
            _end(pid, pipe)


_GO, _STOP = b"G", b"S"


def _pass(fd: int, token: bytes) -> None:
    with contextlib.suppress(BrokenPipeError):  # the next worker has no block left
        os.write(fd, token)


def _reraise(error: Exception) -> None:
    raise error
