"""Sharing a device: clicks before job steps, round-robin between users, positions reported."""

import threading
import time

import pytest

from slicerfm_backend.job_queue import RoundRobinQueue
from slicerfm_backend.scheduler import BACKGROUND, INTERACTIVE, DeviceScheduler


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.002)


def queue_up(scheduler, arrivals):
    """Hold the device, queue ``arrivals`` [(user, priority)] one after another, then let
    them run; returns the order they got the device in and their tickets."""
    order, tickets = [], {}
    scheduler.acquire("holder")
    threads = []
    for index, (user, priority) in enumerate(arrivals):
        def take(user=user, priority=priority, index=index):
            with scheduler.slot(user, priority) as ticket:
                tickets[index] = ticket
                order.append(index)

        thread = threading.Thread(target=take)
        thread.start()
        threads.append(thread)
        wait_for(lambda count=index + 1: sum(scheduler.depth().values()) == count)
    scheduler.release()
    for thread in threads:
        thread.join(10)
    return order, tickets


def test_one_users_requests_are_served_in_arrival_order():
    order, _ = queue_up(DeviceScheduler("cpu"), [("ann", INTERACTIVE)] * 5)
    assert order == [0, 1, 2, 3, 4]


def test_a_waiting_click_goes_before_waiting_job_steps():
    order, _ = queue_up(DeviceScheduler("cpu"), [("job", BACKGROUND), ("job", BACKGROUND), ("ann", INTERACTIVE)])
    assert order[0] == 2


def test_one_users_queued_clicks_cannot_starve_another_users_click():
    """ann queued five clicks (a script), bob one after them: bob goes second, not sixth."""
    arrivals = [("ann", INTERACTIVE)] * 5 + [("bob", INTERACTIVE)]
    order, _ = queue_up(DeviceScheduler("cpu"), arrivals)
    assert order.index(5) == 1
    assert [i for i in order if i != 5] == [0, 1, 2, 3, 4]


def test_each_ticket_knows_how_many_were_ahead_of_it_on_arrival():
    arrivals = [("ann", INTERACTIVE), ("ann", INTERACTIVE), ("bob", INTERACTIVE), ("job", BACKGROUND)]
    order, tickets = queue_up(DeviceScheduler("cpu"), arrivals)
    # the holder is ahead of everyone; bob's click overtakes ann's second one
    assert [tickets[i].ahead for i in range(4)] == [1, 2, 2, 4]
    assert order == [0, 2, 1, 3]
    assert all(tickets[i].wait_s > 0 for i in range(4))


def test_releasing_a_slot_that_is_not_held_is_an_error():
    with pytest.raises(RuntimeError):
        DeviceScheduler("cpu").release()


def test_the_job_queue_takes_jobs_round_robin_between_owners():
    class Job:
        def __init__(self, owner, name):
            self.owner, self.name = owner, name

    queue = RoundRobinQueue()
    batch = [Job("ann", f"a{n}") for n in range(4)]
    for job in batch:
        queue.put(job)
    late = Job("bob", "b0")
    queue.put(late)
    assert queue.position(late) == 1 and queue.position(batch[3]) == 4
    taken = [queue.get().name for _ in range(5)]
    assert taken == ["a0", "b0", "a1", "a2", "a3"]
    queue.close()
    assert queue.get() is None
