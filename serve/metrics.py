"""Prometheus metrics of the server, in a registry of its own (two apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256)
# Why a request was answered 503 with Retry-After (the shed counter's labels): the batcher's queue_full,
# queue_wait, deadline and stopping; warming_up before the models are ready; concurrency when more requests
# are in progress than server.limit_concurrency.
SHED_REASONS = ("queue_full", "queue_wait", "deadline", "stopping", "warming_up", "concurrency")


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("frontwire_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("frontwire_request_latency_seconds", "Request latency, receipt to response.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.errors = Counter("frontwire_errors", "Requests answered with an error, by kind.",
                              ["route", "kind"], registry=r)
        self.texts = Counter("frontwire_texts", "Texts predicted.", ["route"], registry=r)
        self.batch_size = Histogram("frontwire_batch_size", "Texts per model call (a gathered batch).",
                                    buckets=BATCH_BUCKETS, registry=r)
        # Every 503 the server answers instead of queueing or answering late, by reason (SHED_REASONS): the
        # rate an operator alerts on and the load test checks against.
        self.shed = Counter("frontwire_shed", "Requests answered 503 with Retry-After, by reason.", ["reason"],
                            registry=r)
        self.queue_depth = Gauge("frontwire_queue_depth", "Texts waiting for the inference thread.", registry=r)
        self.queue_wait = Histogram("frontwire_queue_wait_seconds", "Time a request waited before its batch ran.",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.inference_seconds = Histogram("frontwire_inference_seconds", "Model time per batch.",
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.model_info = Gauge("frontwire_model_info", "Loaded model versions (value 1).",
                                ["kind", "name", "version", "alias", "backend"], registry=r)
        self.reloads = Counter("frontwire_reloads", "Model reloads by outcome.", ["outcome"], registry=r)
        self.ready = Gauge("frontwire_ready", "1 when models are loaded and warmed.", registry=r)
