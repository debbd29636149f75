"""``chronorec serve``: start the HTTP service (or export its live events and exit)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from chronorec.cli.common import ConfigOpt, field_option, load_config, section_overrides, set_threads
from chronorec.workflows.sections import ServeConfig

S = ServeConfig


def serve(
    model: Annotated[Path | None, field_option(S, "model", "--model", "-m")] = None,
    behavior_model: Annotated[Path | None, field_option(S, "behavior_model")] = None,
    host: Annotated[str | None, field_option(S, "host")] = None,
    port: Annotated[int | None, field_option(S, "port")] = None,
    api_key: Annotated[str | None, field_option(S, "api_key", envvar="CHRONOREC_API_KEY")] = None,
    api_key_file: Annotated[Path | None, field_option(S, "api_key_file", envvar="CHRONOREC_API_KEY_FILE")] = None,
    state_dir: Annotated[Path | None, field_option(S, "state_dir")] = None,
    items: Annotated[Path | None, field_option(S, "items")] = None,
    settings: Annotated[Path | None, field_option(S, "settings")] = None,
    threads: Annotated[int | None, field_option(S, "threads")] = None,
    max_batch: Annotated[int | None, field_option(S, "max_batch")] = None,
    max_wait_ms: Annotated[float | None, field_option(S, "max_wait_ms")] = None,
    max_queue: Annotated[int | None, field_option(S, "max_queue")] = None,
    query_cache: Annotated[int | None, field_option(S, "query_cache")] = None,
    export_events: Annotated[Path | None, field_option(S, "export_events")] = None,
    log_level: Annotated[str | None, field_option(S, "log_level")] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve recommendations over HTTP: POST /recommend, POST /events, GET /health, GET /metrics, /docs."""
    from chronorec.errors import ConfigError

    s = load_config(config, {"serve": section_overrides(S, locals())}).serve
    if s.model is None:
        raise ConfigError("no model: give --model DIR")
    model_dir = Path(s.model)
    state = Path(s.state_dir) if s.state_dir else None
    if s.export_events is not None:
        from chronorec.serving.app import STATE_DIR_NAME
        from chronorec.serving.store import EventStore

        store = EventStore(state if state is not None else model_dir / STATE_DIR_NAME)
        out = store.export(Path(s.export_events))
        typer.echo(f"Wrote {len(store)} live events to {out}")
        return
    import uvicorn

    from chronorec.serving.app import create_app

    set_threads(max(1, s.threads))
    app = create_app(
        model_dir,
        state_dir=state,
        api_key=_api_key(s),
        items_path=Path(s.items) if s.items else None,
        settings_path=Path(s.settings) if s.settings else None,
        max_batch=s.max_batch,
        max_wait_ms=s.max_wait_ms,
        max_queue=s.max_queue,
        query_cache=s.query_cache,
    )
    if s.behavior_model is not None:
        from chronorec.serving.behavior import behavior_router

        app.include_router(behavior_router(Path(s.behavior_model)))
    if s.host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: binding {s.host}: the service is reachable from other machines", err=True)
    typer.echo(f"Serving {app.state.service.model_version} from {model_dir} on http://{s.host}:{s.port} (docs: /docs)")
    uvicorn.run(app, host=s.host, port=s.port, log_level=s.log_level, access_log=False)


def _api_key(s: ServeConfig) -> str | None:
    """The key from --api-key (or CHRONOREC_API_KEY) or from the first line of --api-key-file; an
    empty key is an error, never a silent "no authentication"."""
    from chronorec.errors import ConfigError

    for var in ("CHRONOREC_API_KEY", "CHRONOREC_API_KEY_FILE"):
        if var in os.environ and not os.environ[var].strip():  # click reads an empty variable as unset
            raise ConfigError(f"the API key is empty: {var} is set to nothing; give a key or unset it")
    if s.api_key is not None and s.api_key_file is not None:
        raise ConfigError("give the API key once: --api-key or --api-key-file, not both")
    if s.api_key_file is None:
        return s.api_key
    path = Path(s.api_key_file)
    if not path.is_file():
        raise ConfigError(f"--api-key-file {path}: no such file")
    lines = path.read_text(encoding="utf-8").splitlines()
    key = lines[0].strip() if lines else ""
    if not key:
        raise ConfigError(f"--api-key-file {path}: the first line is empty")
    return key
