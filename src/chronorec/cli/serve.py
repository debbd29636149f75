"""``chronorec serve``: start the HTTP service (or export its live events and exit)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from chronorec.cli.common import load_config, set_threads
from chronorec.cli.options import ConfigOpt, field_option, grouped, option_group, section
from chronorec.settings import ServeSettings

S = ServeSettings


@option_group
class ServeArgs:
    """The options of ``serve``, named like the fields of :class:`~chronorec.settings.ServeSettings`
    (the ``serve`` config section)."""

    model: Annotated[Path | None, field_option(S, "model", "--model", "-m")] = None
    behavior_model: Annotated[Path | None, field_option(S, "behavior_model")] = None
    host: Annotated[str | None, field_option(S, "host")] = None
    port: Annotated[int | None, field_option(S, "port")] = None
    api_key: Annotated[str | None, field_option(S, "api_key", envvar="CHRONOREC_API_KEY")] = None
    api_key_file: Annotated[Path | None, field_option(S, "api_key_file", envvar="CHRONOREC_API_KEY_FILE")] = None
    state_dir: Annotated[Path | None, field_option(S, "state_dir")] = None
    items: Annotated[Path | None, field_option(S, "items")] = None
    settings: Annotated[Path | None, field_option(S, "settings")] = None
    threads: Annotated[int | None, field_option(S, "threads")] = None
    max_batch: Annotated[int | None, field_option(S, "max_batch")] = None
    max_wait_ms: Annotated[float | None, field_option(S, "max_wait_ms")] = None
    max_queue: Annotated[int | None, field_option(S, "max_queue")] = None
    query_cache: Annotated[int | None, field_option(S, "query_cache")] = None
    export_events: Annotated[Path | None, field_option(S, "export_events")] = None
    log_level: Annotated[str | None, field_option(S, "log_level")] = None


@grouped
def serve(opts: ServeArgs, config: ConfigOpt = None) -> None:
    """Serve recommendations over HTTP: POST /recommend, POST /events, GET /health, GET /metrics, /docs."""
    from chronorec.errors import ConfigError

    s = load_config(config, {"serve": section(S, opts)}).serve
    if s.model is None:
        raise ConfigError("no model: give --model DIR")
    if s.export_events is not None:
        _export_events(s)
        return
    import uvicorn

    app = _create_app(s)
    if s.host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: binding {s.host}: the service is reachable from other machines", err=True)
    typer.echo(
        f"Serving {app.state.service.model_version} from {Path(s.model)} on http://{s.host}:{s.port} (docs: /docs)"
    )
    uvicorn.run(app, host=s.host, port=s.port, log_level=s.log_level, access_log=False)


def _export_events(s: ServeSettings) -> None:
    """``--export-events FILE``: write the live events the service stored, and stop."""
    from chronorec.serving.store import LiveEventStore

    store = LiveEventStore(s.live_dir)
    out = store.export(Path(s.export_events))
    typer.echo(f"Wrote {len(store)} live events to {out}")


def _create_app(s: ServeSettings) -> Any:
    """The HTTP application of the serve settings (with the behaviour routes when a behaviour model is given)."""
    from pydantic import SecretStr

    from chronorec.serving.app import create_app

    set_threads(max(1, s.threads))
    key = _api_key(s)
    app = create_app(
        s.model_copy(update={"api_key": SecretStr(key) if key is not None else None, "api_key_file": None})
    )
    if s.behavior_model is not None:
        from chronorec.serving.behavior import behavior_router

        app.include_router(behavior_router(Path(s.behavior_model)))
    return app


def _api_key(s: ServeSettings) -> str | None:
    """The key from --api-key (or CHRONOREC_API_KEY) or from the first line of --api-key-file; an
    empty key is an error, never a silent "no authentication"."""
    from chronorec.errors import ConfigError

    for var in ("CHRONOREC_API_KEY", "CHRONOREC_API_KEY_FILE"):
        if var in os.environ and not os.environ[var].strip():  # click reads an empty variable as unset
            raise ConfigError(f"the API key is empty: {var} is set to nothing; give a key or unset it")
    if s.api_key is not None and s.api_key_file is not None:
        raise ConfigError("give the API key once: --api-key or --api-key-file, not both")
    if s.api_key_file is None:
        return s.key()
    path = Path(s.api_key_file)
    if not path.is_file():
        raise ConfigError(f"--api-key-file {path}: no such file")
    from chronorec.settings import clean_api_key

    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise ConfigError(f"--api-key-file {path}: not UTF-8 text") from e
    try:
        return clean_api_key(lines[0] if lines else "", f"--api-key-file {path}: the first line")
    except ValueError as e:
        raise ConfigError(str(e)) from e
