"""``cogplane``: run the platform locally, log in, manage tokens, show the account."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cogplane.cli import config
from cogplane.cli.client import Api, ApiError
from cogplane.cli.devstack import DevStack, StackError
from cogplane.cli.push import PushFailed, push
from cogplane.cli.usage import usage_params, usage_table, usage_title, usage_total

app = typer.Typer(
    help="Cogplane: run Cog models behind a Replicate-compatible API.", no_args_is_help=True
)
tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
models_app = typer.Typer(help="Create and list models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
out = Console()
err = Console(stderr=True)

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Gateway URL (default: COGPLANE_URL or login).")
]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="API token (default: COGPLANE_TOKEN or login).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _api(url: str | None, token: str | None) -> Api:
    credentials = config.load(url, token)
    if not credentials.token:
        err.print("No token: run `cogplane login`, or set COGPLANE_TOKEN.")
        raise typer.Exit(2)
    return Api(credentials)


def _call(
    api: Api, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
) -> Any:
    try:
        return api.request(method, path, body, params=params)
    except ApiError as exc:
        err.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        api.close()


def _repo_root() -> Path:
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists() or (candidate / "uv.lock").exists():
            return candidate
    return here


@app.command()
def dev(
    data_dir: Annotated[
        Path | None, typer.Option(help="Where data lives (default: .cogplane/ in the repository).")
    ] = None,
) -> None:
    """Start the whole platform locally; Ctrl-C stops it."""
    root = data_dir or _repo_root() / ".cogplane"
    stack = DevStack(root)
    pid_file = root / "dev.pid"
    stopping = threading.Event()

    def on_signal(signum: int, _: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out.print(f"Starting Cogplane under {root} ...")
    try:
        stack.start()
    except StackError as exc:
        err.print(f"[red]Cogplane did not start:[/red] {exc}")
        raise typer.Exit(1) from exc
    pid_file.write_text(str(os.getpid()))
    out.print(stack.summary())
    try:
        while not stopping.wait(1.0):
            for name, proc in list(stack.procs.items()):
                if proc.poll() is not None:
                    note = f"{name} exited ({proc.returncode}); restarting. Log: {stack.log(name)}"
                    err.print(f"[yellow]{note}[/yellow]")
                    stack.start_service(name)
    finally:
        out.print("Stopping Cogplane ...")
        stack.stop()
        pid_file.unlink(missing_ok=True)
        out.print("Stopped.")


@app.command()
def stop(
    data_dir: Annotated[
        Path | None, typer.Option(help="The data directory of the running `cogplane dev`.")
    ] = None,
) -> None:
    """Stop a running `cogplane dev`."""
    pid_file = (data_dir or _repo_root() / ".cogplane") / "dev.pid"
    if not pid_file.exists():
        out.print("Cogplane is not running.")
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        out.print("Cogplane was not running (stale pid file removed).")
        return
    out.print(f"Asked cogplane dev (pid {pid}) to stop.")


@app.command()
def login(url: UrlOption = None, token: TokenOption = None) -> None:
    """Check a token against the gateway and remember both."""
    credentials = config.load(url, token)
    secret = token or typer.prompt("API token", hide_input=True)
    credentials = config.Credentials(credentials.url, secret)
    account = _call(Api(credentials), "GET", "/v1/account")
    path = config.save(credentials)
    out.print(
        f"Logged in to {credentials.url} as [bold]{account['username']}[/bold] (saved in {path})."
    )


@app.command()
def account(url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False) -> None:
    """Show the account that owns the token."""
    body = _call(_api(url, token), "GET", "/v1/account")
    if as_json:
        out.print_json(json.dumps(body))
        return
    out.print(f"{body['username']} ({body['type']}): {body['name']}")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="A label for the token.")] = "cli",
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token; its secret is printed once."""
    body = _call(_api(url, token), "POST", "/v1/tokens", {"name": name})
    if as_json:
        out.print_json(json.dumps(body))
        return
    out.print(
        f"Created token {body['id']} ({body['name']}). Keep it secret; it is not shown again:"
    )
    print(body["token"])


@tokens_app.command("list")
def tokens_list(
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List your active tokens."""
    body = _call(_api(url, token), "GET", "/v1/tokens")
    if as_json:
        out.print_json(json.dumps(body["results"]))
        return
    table = Table("id", "name", "starts with", "created", "last used")
    for row in body["results"]:
        table.add_row(
            row["id"], row["name"], row["hint"], row["created_at"], row["last_used_at"] or "-"
        )
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="Id of the token (see `cogplane tokens list`).")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a token; it stops working at once."""
    _call(_api(url, token), "DELETE", f"/v1/tokens/{token_id}")
    out.print(f"Revoked {token_id}.")


@app.command("push")
def push_command(
    model: Annotated[str, typer.Argument(help="The model to push to, as OWNER/NAME.")],
    path: Annotated[Path, typer.Option("--path", help="The Cog project directory.")] = Path(),
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Push a Cog project and build it into a new version; prints the version id."""
    try:
        version = push(_api(url, token), model, path, err)
    except PushFailed as exc:
        err.print(f"[red]Push failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    err.print(f"[green]Pushed[/green] {model}:{version}")
    print(version)


@models_app.command("create")
def models_create(
    model: Annotated[str, typer.Argument(help="OWNER/NAME of the new model.")],
    hardware: Annotated[str, typer.Option(help="A SKU from `cogplane hardware`.")] = "cpu",
    visibility: Annotated[str, typer.Option(help="public or private.")] = "private",
    description: Annotated[str | None, typer.Option(help="A one-line description.")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a model."""
    owner, _, name = model.partition("/")
    body = {"owner": owner, "name": name, "hardware": hardware, "visibility": visibility}
    if description is not None:
        body["description"] = description
    created = _call(_api(url, token), "POST", "/v1/models", body)
    if as_json:
        out.print_json(json.dumps(created))
        return
    where = f"{created['owner']}/{created['name']}"
    out.print(f"Created {where} ({created['visibility']}, {created['hardware']})")


@models_app.command("list")
def models_list(
    url: UrlOption = None, token: TokenOption = None, as_json: JsonOption = False
) -> None:
    """List the models you can see."""
    page = _call(_api(url, token), "GET", "/v1/models")
    if as_json:
        out.print_json(json.dumps(page["results"]))
        return
    table = Table("model", "visibility", "hardware", "latest version")
    for m in page["results"]:
        latest = (m["latest_version"] or {}).get("id", "-")
        table.add_row(f"{m['owner']}/{m['name']}", m["visibility"], m["hardware"], latest[:12])
    out.print(table)


@app.command("hardware")
def hardware(url: UrlOption = None, token: TokenOption = None) -> None:
    """List the hardware SKUs."""
    for item in _call(_api(url, token), "GET", "/v1/hardware"):
        out.print(f"{item['sku']:<20} {item['name']}")


@app.command("usage")
def usage(
    since: Annotated[
        str | None, typer.Option(help="ISO 8601 start (default: 30 days before --until).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 end (default: now).")] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by", help="Comma list of day, model, deployment, hardware, kind (day)."
        ),
    ] = None,
    account: Annotated[
        str | None, typer.Option(help="An organization you belong to (default: you).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the seconds and cost charged to your account (or an organization's)."""
    params = usage_params(since, until, group_by, account)
    report = _call(_api(url, token), "GET", "/v1/usage", params=params)
    if as_json:
        out.print_json(json.dumps(report))
        return
    out.print(usage_title(report), soft_wrap=True)
    out.print(usage_table(report))
    out.print(usage_total(report), soft_wrap=True)


def main() -> None:
    """Entry point for ``python -m cogplane.cli``."""
    app(prog_name="cogplane")


if __name__ == "__main__":
    main()
