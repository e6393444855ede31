"""A producer, a queue with one consumer, and a topic with two subscribers (tests of queues
and topics: every message's effect counted in its consumer's state)."""

from __future__ import annotations

from distdev import import_service, resources

jobs = resources.queue("jobs", max_attempts=3, backoff=0.05)
events = resources.topic("events")

producer = import_service("./producer.py")
worker = import_service("./worker.py")
audit = import_service("./subscriber.py", name="audit")
mailer = import_service("./subscriber.py", name="mailer")

jobs.consume(worker.handle)
events.subscribe(audit.on_event)
events.subscribe(mailer.on_event)
producer.connect(jobs, events)


def produce(start: int, count: int) -> int:
    """Push and publish the numbers start .. start + count - 1; how many."""
    return producer.produce(start, count)


def push_poison(n: int) -> int:
    """A message the worker raises on until it is cured; its id."""
    return jobs.push({"n": n, "poison": True})
