"""Options and helpers shared by every command."""
import datetime
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias, TypeVar

import click

if TYPE_CHECKING:
    from strongroom.appliance.app import App
    from strongroom.appliance.keysource import Ask
    from strongroom.appliance.service import Session

T = TypeVar("T")
V = TypeVar("V")
# A JSON object as the service layer returns it and --json prints it.
Json: TypeAlias = dict[str, Any]
# A click command function, as a decorator adding options takes and returns it.
F = TypeVar("F", bound=Callable[..., Any])


def default_data_dir() -> str:
    env = os.environ.get("STRONGROOM_DATA_DIR")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/strongroom"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "strongroom")


def _as_owner(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Run the command as the data directory's owner (appliance.cli.owner)."""
    from strongroom.appliance.cli.owner import become_owner
    become_owner(value)
    return value


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, readable=False, path_type=Path),
    default=default_data_dir, callback=_as_owner, is_eager=False,
    show_default="$STRONGROOM_DATA_DIR, else /var/lib/strongroom (root) or ~/.local/share/strongroom",
    help="The appliance's data directory. Commands run as its owner: started as root, "
         "they switch to that user.")

def iso_time(ts: float | None) -> str:
    """A timestamp as ISO 8601 in UTC to the second; '-' for none."""
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds")


def converted(convert: Callable[[str], V]
              ) -> Callable[[click.Context, click.Parameter, str | None], V | None]:
    """A click callback running a config converter (size, duration, ...) on an option;
    a value it refuses is one line naming the option (not click's usage text)."""
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> V | None:
        from strongroom.appliance.errors import BadRequest
        if value is None:
            return None
        try:
            return convert(value)
        except ValueError as e:
            raise BadRequest(f"{max(param.opts, key=len)}: {e}") from None
    return callback


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


# The passphrase of a master key sealed by one ([keys] master_key_source = passphrase):
# `strongroom --passphrase-file F COMMAND`, else $STRONGROOM_PASSPHRASE_FILE, else asked
# on a terminal, and only by a command that opens the key.
PASSPHRASE_ENV = "STRONGROOM_PASSPHRASE_FILE"
_passphrase_file: list[Path] = []


def _remember_passphrase_file(ctx: click.Context, param: click.Parameter,
                              value: Path | None) -> None:
    _passphrase_file[:] = [value] if value is not None else []   # one invocation's


passphrase_file_option = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
    callback=_remember_passphrase_file, envvar=PASSPHRASE_ENV,
    help="File whose first line is the passphrase of a master key sealed by one ([keys] "
         f"master_key_source = passphrase); also ${PASSPHRASE_ENV}. Without it, commands "
         "that need the key ask on a terminal.")


def chosen_passphrase_file(given: Path | None = None) -> Path | None:
    """`given` (a command's own --passphrase-file), else the main group's, else None."""
    return given or (_passphrase_file[0] if _passphrase_file else None)


def passphrase_asker(given: Path | None = None, *, confirm: bool = False) -> "Ask":
    """How a PassphraseSource gets its passphrase: the file, else a terminal prompt
    (twice with `confirm`), else KeyUnavailable saying how to give it."""
    from strongroom.appliance.keysource import KeyUnavailable, read_passphrase_file

    def ask() -> str:
        path = chosen_passphrase_file(given)
        if path is not None:
            return read_passphrase_file(path)
        if not sys.stdin.isatty():
            raise KeyUnavailable(
                "the master key is sealed by a passphrase and there is no terminal to ask "
                f"it on: give --passphrase-file FILE (strongroom --passphrase-file FILE "
                f"COMMAND ...) or set ${PASSPHRASE_ENV}")
        return prompt_passphrase(confirm)
    return ask


def prompt_passphrase(confirm: bool) -> str:
    import getpass
    from strongroom.appliance.errors import BadRequest
    passphrase = getpass.getpass("Passphrase of the master key: ")
    if not passphrase:
        raise BadRequest("an empty passphrase")
    if confirm and getpass.getpass("The same passphrase again: ") != passphrase:
        raise BadRequest("the two passphrases differ; nothing was made")
    return passphrase


_opened: list["App"] = []


def open_app(data_dir: Path) -> "App":
    """The App of `data_dir`; closed (and its audit events anchored) when the command
    ends (close_apps). A passphrase-sealed master key is asked for (passphrase_asker)."""
    from strongroom import config as configmod
    from strongroom.appliance.app import App
    from strongroom.appliance.keysource import from_config
    source = from_config(configmod.load(Path(data_dir).resolve()), passphrase_asker())
    app = App(data_dir, key_source=source)
    app.admin_name = cli_admin_name()
    _opened.append(app)
    return app


def close_apps() -> None:
    while _opened:
        _opened.pop().close()


def cli_admin_name() -> str:
    """How audit events name the admin running this command (appliance.cli.owner)."""
    from strongroom.appliance.cli.owner import invoker
    return f"admin:{invoker()}"


def tree_session(data_dir: Path, *tree_paths: str) -> "Session":
    """The administrator's Session, which sees full tree paths ('/<client>/...',
    '/<library>/...'), after checking that each of `tree_paths` starts with a client or
    library, so that a typo, or a path in a user's view, is named as such."""
    app = open_app(data_dir)
    for path in tree_paths:
        app.admin().tree_of(path)
    return app.session(app.admin_principal(), "cli")


def emit(data: T, as_json: bool, human: Callable[[T], Iterable[str]]) -> None:
    """Print `data` as JSON, or through `human(data)` which returns lines."""
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for line in human(data):
            click.echo(line)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"strongroom: error: {message}", err=True)
    sys.exit(code)


def human_size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
