"""``chronorec serve``: start the HTTP service (or export its live events and exit)."""

from pathlib import Path
from typing import Annotated

import typer


def serve(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Saved model folder (JSON + safetensors + Parquet only).")
    ],
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind (default: 127.0.0.1, local only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="CHRONOREC_API_KEY", help="Require this X-API-Key for POST /events and export."
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Folder of the live-event store (default: <model>/live/)."),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option("--items", help="Item table (.parquet/.csv: item_id, category, available, price, name)."),
    ] = None,
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings", help="RecommendSettings JSON (temperature, blend, ...; default <model>/recommend.json)."
        ),
    ] = None,
    threads: Annotated[int, typer.Option("--threads", help="torch threads per request (default 1).")] = 1,
    export_events: Annotated[
        Path | None,
        typer.Option("--export-events", help="Write the stored live events to this .parquet/.csv/.jsonl and exit."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "warning",
) -> None:
    """Serve recommendations over HTTP: POST /recommend, POST /events, GET /health, GET /metrics, /docs."""
    try:
        if export_events is not None:
            from chronorec.serving.app import STATE_DIR_NAME
            from chronorec.serving.store import EventStore

            store = EventStore(state_dir if state_dir is not None else model / STATE_DIR_NAME)
            out = store.export(export_events)
            typer.echo(f"Wrote {len(store)} live events to {out}")
            return
        import torch
        import uvicorn

        from chronorec.serving.app import create_app

        torch.set_num_threads(max(1, threads))
        app = create_app(model, state_dir=state_dir, api_key=api_key, items_path=items, settings_path=settings)
    except (FileNotFoundError, ValueError, KeyError) as e:
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.secho(f"warning: binding {host}: the service is reachable from other machines", err=True)
    typer.echo(f"Serving {app.state.service.model_version} from {model} on http://{host}:{port} (docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
