"""The identity commands: `identity add | list | remove | import-docker`.

Secrets go straight to the OS keyring; the config file gets labels and usernames only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pullwatch.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    Command,
    add_common_options,
    find_identity,
    load_runtime,
    non_negative,
    note,
    out,
    seconds,
)

if TYPE_CHECKING:
    from pullwatch.identities.model import Identity
    from pullwatch.runtime import Runtime


def register(command: Command) -> None:
    identity = command("identity", "manage identities (secrets go to the OS keyring)")
    actions = identity.add_subparsers(
        dest="identity_command", metavar="ACTION", parser_class=type(identity)
    )
    actions.required = True

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        add_common_options(parser, suppress=True)
        return parser

    add = action("add", "add an identity (no --username: anonymous)")
    add.add_argument("label", metavar="LABEL")
    add.add_argument(
        "--username", metavar="USER", help="the login: on Docker Hub the Docker ID, not the e-mail"
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the personal access token (or password) from stdin, like `docker login`",
    )
    add.add_argument("--warn-below", metavar="N", type=non_negative, help="low when remaining <= N")
    add.add_argument(
        "--check",
        action="store_true",
        help="first ask the registry for a token with this login (one request); save nothing "
        "if it is refused",
    )
    add.set_defaults(handler=cmd_identity_add)

    lst = action("list", "list identities and whether their secret is in the keyring")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_identity_list)

    rm = action("remove", "remove an identity and its keyring entry")
    rm.add_argument("label", metavar="LABEL")
    rm.set_defaults(handler=cmd_identity_remove)

    imp = action("import-docker", "import the Docker Hub login from Docker's config.json")
    imp.add_argument("--label", metavar="LABEL", help="identity label (default: the Docker ID)")
    imp.add_argument("--update", action="store_true", help="replace an existing identity's token")
    imp.add_argument("--dry-run", action="store_true", help="say what would be imported")
    imp.add_argument(
        "--docker-config",
        metavar="DIR",
        type=Path,
        help="Docker's config directory (default $DOCKER_CONFIG or ~/.docker)",
    )
    imp.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds(),
        default=30.0,
        help="how long a credential helper may take (default 30)",
    )
    imp.set_defaults(handler=cmd_import_docker)


def _read_secret(args: argparse.Namespace) -> str:
    if args.password_stdin:
        secret = sys.stdin.read()
        secret = secret[:-1] if secret.endswith("\n") else secret
        secret = secret[:-1] if secret.endswith("\r") else secret
    elif sys.stdin.isatty():
        import getpass

        secret = getpass.getpass(f"Personal access token for {args.username}: ")
    else:
        raise CliError("stdin is not a terminal: pass the token with --password-stdin", EXIT_USAGE)
    if not secret:
        raise CliError("empty secret: nothing stored", EXIT_USAGE)
    return secret


def same_login(identities: Iterable[Identity], identity: Identity) -> list[str]:
    """The other identities that log in as `identity` does: they share one account's bucket."""
    if identity.username is None:
        return []
    folded = identity.username.casefold()
    return [
        other.label
        for other in identities
        if other.label != identity.label
        and other.username is not None
        and other.username.casefold() == folded
    ]


def shared_login_warning(identity: Identity, others: list[str]) -> str:
    names = ", ".join(others)
    return (
        f"{identity.label} and {names} all log in as {identity.username}: one account, one "
        "bucket - their pulls are counted together"
        if len(others) > 1
        else f"{identity.label} and {names} both log in as {identity.username}: one account, "
        "one bucket - their pulls are counted together"
    )


def _check_login(runtime: Runtime, identity: Identity, secret: str | None) -> None:
    """One token request with the login about to be added. Raises CliError (nothing stored)
    unless the registry issues a token."""
    import asyncio

    from pullwatch.hub.client import Credentials, Target
    from pullwatch.reading import State
    from pullwatch.redact import one_line

    credentials = Credentials(identity.username, secret) if identity.username and secret else None
    target = Target(identity.label, credentials)

    async def ask() -> Any:
        async with runtime.client() as client:
            return await client.check_token(target)

    result = asyncio.run(ask())
    who = identity.username or "anonymous"
    if result.ok:
        expiry = f" (it expires in {result.expires_in} s)" if result.expires_in else ""
        note(f"login checked: {runtime.registry} issued a token for {who}{expiry}")
        return
    said = one_line(result.detail or result.state.label, 200)
    if result.state is State.AUTH_FAILED:
        way_out = (
            "Use the Docker ID (not the e-mail) and a personal access token"
            if runtime.store.docker_hub
            else "Check the username and the password or token"
        )
        raise CliError(
            f"not added: the registry refused the login of {who} ({said}); nothing was stored. "
            + way_out
        )
    raise CliError(
        f"not added: the login could not be checked ({said}); nothing was stored. Try again, "
        f"or add it without --check and check it later with `pullwatch token {identity.label}`"
    )


def cmd_identity_add(args: argparse.Namespace) -> int:
    from pullwatch.identities.model import Identity, check_change, first_problem

    if args.password_stdin and not args.username:
        raise CliError(
            "--password-stdin needs --username (an anonymous identity has no secret)", EXIT_USAGE
        )
    runtime = load_runtime(args)
    secret = _read_secret(args) if args.username else None
    identity = Identity(label=args.label, username=args.username, warn_below=args.warn_below)
    if args.check:  # the store's own checks first: no request for what it would refuse
        problem = first_problem(
            check_change(
                identity,
                secret,
                existing=None,
                taken=runtime.config.labels,
                docker_hub=runtime.store.docker_hub,
            )
        )
        if problem:
            raise CliError(problem)
        _check_login(runtime, identity, secret)
    config = runtime.store.add(identity, secret)
    where = (
        f"secret stored in the keyring ({runtime.secrets.SERVICE}/{args.label})"
        if secret
        else "anonymous"
    )
    print(f"added {args.label}: {where}", file=sys.stderr)
    if config.warning:
        note(f"warning: {config.warning}")
    others = same_login(config.identities, identity)
    if others:
        note(f"warning: {shared_login_warning(identity, others)}")
    if secret and not args.check:
        note(f"check the login (one token request) with `pullwatch token {args.label}`")
    return 0


def cmd_identity_list(args: argparse.Namespace) -> int:
    from pullwatch.identities.secrets import KeyringStatus

    runtime = load_runtime(args)
    rows: list[dict[str, Any]] = []
    for identity in runtime.config.identities:
        if identity.username is None:
            secret = "not needed"
        else:
            lookup = runtime.store.secret_for(identity)
            if lookup.status is KeyringStatus.OK:
                secret = "in keyring" if lookup.secret else "missing"
            else:
                secret = f"unavailable ({lookup.status.value})"
        row: dict[str, Any] = {
            "label": identity.label,
            "username": identity.username,
            "secret": secret,
            "warn_below": identity.warn_below,
        }
        shared = same_login(runtime.config.identities, identity)
        if shared:
            row["same_login_as"] = shared  # one account: one bucket
        rows.append(row)
    if args.json:
        import json

        out(json.dumps({"identities": rows}, indent=2))
        return 0
    headers = ("LABEL", "USERNAME", "SECRET")
    table = [(r["label"], r["username"] or "(anonymous)", r["secret"]) for r in rows]
    widths = [
        max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)
    ]
    for line in [headers, *table]:
        out("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    warned: set[str] = set()
    for identity in runtime.config.identities:
        shared = same_login(runtime.config.identities, identity)
        if shared and identity.label not in warned:
            warned |= {identity.label, *shared}
            note(f"warning: {shared_login_warning(identity, shared)}")
    return 0


def cmd_identity_remove(args: argparse.Namespace) -> int:
    runtime = load_runtime(args)
    find_identity(runtime, args.label)
    result = runtime.store.remove(args.label)
    if result.warning:
        note(f"warning: {result.warning}")
    print(f"removed {args.label}", file=sys.stderr)
    return 0


def cmd_import_docker(args: argparse.Namespace) -> int:
    from pullwatch.identities.docker_config import (
        DockerConfigError,
        docker_config_path,
        find_hub_login,
        import_login,
        load_docker_config,
        plan_import,
    )
    from pullwatch.identities.model import Identity

    path = (
        args.docker_config.expanduser() / "config.json"
        if args.docker_config
        else docker_config_path()
    )
    try:
        config = load_docker_config(path)
    except DockerConfigError as exc:
        raise CliError(str(exc)) from None
    runtime = load_runtime(args)  # a broken config fails first
    # The CLI owns the terminal: a helper may prompt (gpg for `pass`) within the timeout.
    result = find_hub_login(config, timeout=args.timeout)
    if result.login is None:
        raise CliError("no importable Docker Hub login: " + "; ".join(result.notes))
    login = result.login
    for message in result.notes[:-1]:
        note(message)
    if args.dry_run:  # what the real run would do - or refuse, and the label it would take
        plan = plan_import(runtime.config, login, args.label, update=args.update)
        found = f"Docker ID {login.username} from {login.where} ({path})"
        if plan.problem:
            out(f"would not import {found}: {plan.problem}")
            if plan.instead:
                out(f"as a new identity it would be: --label {plan.instead}")
            return EXIT_FAILURE
        if plan.replaces:
            out(f"would replace the login of identity {plan.label!r} with {found}")
            return 0
        out(f"would import {found} as identity {plan.label!r}")
        imported = Identity(plan.label, login.username)
        others = same_login(runtime.config.identities, imported)
        if others:
            note(f"warning: {shared_login_warning(imported, others)}")
        return 0
    outcome = import_login(runtime.store, login, args.label, update=args.update)
    verb = "updated" if outcome.replaced else "imported"
    note(
        f"{verb} identity {outcome.label!r}: Docker ID {login.username} from {login.where}; "
        f"token stored in the keyring ({runtime.secrets.SERVICE}/{outcome.label})"
    )
    if not login.looks_like_pat:
        note(
            "warning: the imported secret is not a personal access token (dckr_pat_...); if it "
            "is a password, Docker Hub refuses it when two-factor authentication is on"
        )
    if outcome.config.warning:
        note(f"warning: {outcome.config.warning}")
    return 0
