"""Run the API with uvicorn (``fakenews serve``)."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from fakenews_ml.config import ServeConfig

log = logging.getLogger(__name__)


def run_server(
    model: Path | str | None = None,
    log_url: str | None = None,
    config: ServeConfig | None = None,
    variant: str = "auto",
    access_log: bool = False,
) -> None:
    """Serve until SIGINT/SIGTERM; queued prediction-log rows are flushed on the way out."""
    import torch
    import uvicorn

    from fakenews_ml.monitoring.prediction_log import PredictionLog
    from fakenews_ml.serving.app import create_app

    config = config or ServeConfig()
    if config.torch_threads:
        # One process, requests serialised on the model: a few threads per forward pass give the best
        # single-headline latency; more only add synchronisation cost on small inputs.
        torch.set_num_threads(config.torch_threads)
    if not _is_loopback(config.host):
        from fakenews_ml.environment import API_TOKEN_ENV, api_token

        log.warning(
            "binding %s: the API is reachable from the network; %s; clients must use a Host in %s",
            config.host,
            "POST /feedback needs the token" if api_token() else f"set {API_TOKEN_ENV} to protect POST /feedback",
            config.allowed_hosts or f"the defaults ({config.host}, localhost, 127.0.0.1): see --allowed-hosts",
        )
    store = PredictionLog(log_url)
    store.check_available()
    app = create_app(model, store, config, variant=variant)
    log.info("prediction log: %r", store)
    try:
        # One worker: the model, the reload watcher and the log writer live in this process.
        uvicorn.run(
            app,
            host=config.host,
            port=config.port,
            access_log=access_log,
            log_level="info",
            timeout_graceful_shutdown=10,
        )
    finally:
        store.close()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
