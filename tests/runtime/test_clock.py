"""The clocks' absolute-deadline sleeps: ``sleep_until`` / ``asleep_until``."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sedna_core.clock import Clock, ManualClock, SystemClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)


async def test_asleep_until_wakes_at_the_deadline_not_before() -> None:
    clock = ManualClock(start=2.0)
    task = asyncio.ensure_future(clock.asleep_until(10.0))
    await asyncio.sleep(0)  # registered
    assert clock.sleepers == 1
    clock.advance(7.5)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.5)
    await asyncio.wait_for(task, 5)
    assert clock.monotonic() == 10.0
    assert clock.sleepers == 0


async def test_asleep_until_a_deadline_already_passed_returns_at_once() -> None:
    clock = ManualClock()
    clock.advance(5)
    await asyncio.wait_for(clock.asleep_until(5.0), 5)
    await asyncio.wait_for(clock.asleep_until(-1.0), 5)
    assert clock.sleepers == 0


async def test_an_advance_before_the_sleeper_registers_is_not_lost() -> None:
    """The race that hung the FL deadline test: the deadline is read, time moves, then the
    sleeper registers. An absolute deadline still wakes; a relative sleep is pushed back."""
    clock = ManualClock()
    deadline = clock.monotonic() + 10
    absolute = asyncio.ensure_future(clock.asleep_until(deadline))
    relative = asyncio.ensure_future(clock.asleep(deadline - clock.monotonic()))
    clock.advance(10)  # before either task's first step
    await asyncio.wait_for(absolute, 5)
    await asyncio.sleep(0)
    assert not relative.done() and clock.sleepers == 1  # it now waits for 20: the lost advance
    clock.advance(10)
    await asyncio.wait_for(relative, 5)


async def test_asleep_until_wakes_sleepers_in_deadline_order() -> None:
    clock = ManualClock()
    late = asyncio.ensure_future(clock.asleep_until(5.0))
    early = asyncio.ensure_future(clock.asleep_until(3.0))
    await asyncio.sleep(0)
    clock.advance(3)
    await asyncio.wait_for(early, 5)
    assert not late.done() and clock.sleepers == 1
    clock.advance(2)
    await asyncio.wait_for(late, 5)


async def test_a_cancelled_asleep_until_is_no_longer_a_sleeper() -> None:
    clock = ManualClock()
    task = asyncio.ensure_future(clock.asleep_until(1.0))
    await asyncio.sleep(0)
    assert clock.sleepers == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    clock.advance(1)  # waking a cancelled sleeper is harmless


async def test_asleep_stays_relative_to_the_time_it_is_called() -> None:
    clock = ManualClock(start=2.0)
    task = asyncio.ensure_future(clock.asleep(5))
    await asyncio.sleep(0)
    clock.advance(4.5)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.5)
    await asyncio.wait_for(task, 5)
    assert clock.monotonic() == 7.0


async def test_asleep_until_from_another_thread_advance() -> None:
    clock = ManualClock()
    task = asyncio.ensure_future(clock.asleep_until(4.0))
    await asyncio.sleep(0)
    thread = threading.Thread(target=clock.advance, args=(4,))
    thread.start()
    await asyncio.wait_for(task, 5)
    thread.join(5)


def test_sleep_until_in_a_thread_wakes_whatever_the_order_of_advance() -> None:
    clock = ManualClock()
    woke: list[float] = []
    deadline = clock.monotonic() + 10

    def sleeper() -> None:
        clock.sleep_until(deadline)
        woke.append(clock.monotonic())

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    clock.advance(9.5)  # the sleeper may or may not be waiting yet: both must work
    clock.advance(0.5)
    thread.join(5)
    assert not thread.is_alive()
    assert woke == [10.0]
    assert clock.sleepers == 0


def test_sleep_until_a_passed_deadline_returns_at_once() -> None:
    clock = ManualClock(start=3.0)
    clock.sleep_until(3.0)
    clock.sleep_until(1.0)
    assert clock.sleepers == 0


def test_system_clock_sleep_until_reaches_the_deadline() -> None:
    clock = SystemClock()
    clock.sleep_until(clock.monotonic() - 1)  # already passed: no wait
    deadline = clock.monotonic() + 0.005
    clock.sleep_until(deadline)
    assert time.monotonic() >= deadline


async def test_system_clock_asleep_until_reaches_the_deadline() -> None:
    clock = SystemClock()
    await asyncio.wait_for(clock.asleep_until(clock.monotonic() - 1), 5)
    deadline = clock.monotonic() + 0.005
    await asyncio.wait_for(clock.asleep_until(deadline), 5)
    assert time.monotonic() >= deadline
