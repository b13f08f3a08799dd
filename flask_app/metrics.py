"""Prometheus: HTTP request metrics (flask_app.http_metrics), and zart's own gauges read at scrape time.

Each app gets a private registry, so several apps in one process (tests, a host app) never collide, and
HTTP metrics are grouped by URL rule so execution IDs cannot explode the label space.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flask_app.http_metrics import HttpMetrics
from flask_app.waiting import WaitSlots
from zart.schedule_service import ScheduleService
from zart.service import ZartService
from zart.store.tables import EXECUTION_STATUSES


class ZartCollector(Collector):
    """Executions by status, the age of the oldest pending one, stranded executions, long-polls in flight."""

    def __init__(self, service: ZartService, wait_slots: WaitSlots) -> None:
        self._service = service
        self._wait_slots = wait_slots

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "zart_wait_requests_in_flight", "Long-poll /wait requests currently held.", value=self._wait_slots.in_flight
        )
        up = GaugeMetricFamily("zart_database_up", "1 when the database answered this scrape.")
        try:
            counts = self._service.stats()
            oldest = self._service.oldest_pending_age()
            stranded = self._service.count_stranded()
            queues = self._service.pending_by_task()
            firing = ScheduleService(self._service).firing_figures()
        except Exception:  # a scrape must still answer when the database does not
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        executions = GaugeMetricFamily("zart_executions", "Executions by status.", labels=["status"])
        for status in EXECUTION_STATUSES:
            executions.add_metric([status], counts.get(status, 0))
        yield executions
        yield GaugeMetricFamily(
            "zart_oldest_pending_age_seconds",
            "Seconds the oldest pending execution has waited for a worker (0 when none).",
            value=oldest,
        )
        depth = GaugeMetricFamily("zart_queue_depth", "Pending executions by task.", labels=["task"])
        age = GaugeMetricFamily(
            "zart_queue_oldest_pending_age_seconds",
            "Seconds the oldest pending execution of each task has waited.",
            labels=["task"],
        )
        for queue in queues:
            depth.add_metric([queue["task"]], queue["pending"])
            age.add_metric([queue["task"]], queue["oldest_age"])
        yield depth
        yield age
        yield GaugeMetricFamily(
            "zart_stranded_executions",
            "Executions that nothing will ever move again (no live reason to progress); must stay 0.",
            value=stranded,
        )
        yield GaugeMetricFamily(
            "zart_schedule_firing_lag_seconds",
            "Largest delay between a schedule tick's fire time and its execution's creation, over the last 5 minutes.",
            value=firing["recent_lag"],
        )
        yield GaugeMetricFamily(
            "zart_schedule_overdue_seconds",
            "How long the most overdue schedule tick has been waiting to fire (0 when none: the sweepers keep up).",
            value=firing["overdue"],
        )


def init_metrics(app: Flask, service: ZartService, wait_slots: WaitSlots) -> CollectorRegistry:
    registry = CollectorRegistry()
    HttpMetrics(app, registry)
    registry.register(ZartCollector(service, wait_slots))
    return registry
