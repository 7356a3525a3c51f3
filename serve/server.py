"""`frontwire serve`: resolve and load the models first (a bad source fails before the port opens), then
run uvicorn. SIGTERM/SIGINT stop accepting connections, finish open and queued requests (at most
`server.graceful_timeout_s`), then exit.
"""

from __future__ import annotations

import ipaddress
import logging
import os

from frontwire.serve.settings import ServeConfig

log = logging.getLogger(__name__)


def build_app(config: ServeConfig):
    from transformers.utils import logging as hf_logging

    from frontwire.serve.app import create_app
    from frontwire.serve.runtime import load_bundle, resolve_refs

    # Tokenizers' own thread pool would fight the model's threads for the same cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    hf_logging.disable_progress_bar()  # a progress bar per model load garbles the structured log
    forward_size = config.batching.forward_size(config.models.backend)
    bundle = load_bundle(config.models, resolve_refs(config.models), batch_size=forward_size)
    token = config.auth.resolved_token()
    log.info("serve_config backend=%s batching=%s max_batch_size=%d forward_batch_size=%d max_wait_ms=%.1f "
             "auth=%s cors=%s", config.models.backend, config.batching.enabled, config.batching.max_batch_size,
             forward_size,
             config.batching.max_wait_ms, "on" if token else "off", bool(config.cors.allow_origins))
    return create_app(config, bundle, token)


class UnsafeBind(ValueError):
    """A non-loopback bind without a token: anyone who can reach the port could use and reload the server."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def check_bind(config: ServeConfig, insecure: bool = False) -> None:
    """Raise UnsafeBind for a non-loopback host without a token, unless `insecure` says it is meant."""
    host = config.server.host
    if is_loopback(host) or config.auth.resolved_token():
        return
    if not insecure:
        raise UnsafeBind(f"refusing to serve on {host!r} without a token: anyone who can reach it could predict "
                         f"and reload models. Set ${config.auth.token_env} (or auth.token), bind 127.0.0.1, or "
                         "pass --insecure if the network in front of it is trusted")
    log.warning("serve_insecure_bind host=%s auth=OFF", host)


def serve(config: ServeConfig, insecure: bool = False) -> None:
    import uvicorn

    check_bind(config, insecure)
    if not is_loopback(config.server.host):
        log.warning("serve_public_bind host=%s: put TLS in front of it", config.server.host)
    app = build_app(config)
    uvicorn_config = uvicorn.Config(
        app, host=config.server.host, port=config.server.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=config.server.graceful_timeout_s,
        limit_concurrency=config.server.max_connections,  # the app sheds below it (guards.Admission)
        lifespan="on", proxy_headers=False, server_header=False,
    )
    uvicorn.Server(uvicorn_config).run()
