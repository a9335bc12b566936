"""``--profile NAME``: connection settings kept in a TOML file, never a secret.

The file is ``config.toml`` in the user's config directory
(``~/.config/ameyo-callbacks/`` on Linux, as ``click.get_app_dir`` says for
other systems), or the file ``AMEYO_CONFIG`` names::

    [profiles.prod]
    base_url = "https://ameyo.example.com:8443"
    ca_bundle = "/etc/ssl/ameyo-ca.pem"          # optional
    session_id_file = "~/.ameyo/prod.session"    # optional

Relative paths are relative to the config file's directory; ``~`` is
expanded. A session id or a token written in the file is refused: keep it in
the ``session_id_file`` (readable by you only) or the environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import attrs
import click

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ._errors import ConfigError

__all__ = ["KEYS", "Profile", "config_path", "load_profile"]

KEYS = ("base_url", "ca_bundle", "session_id_file")
_SECRETS = ("session_id", "sessionid", "token", "password", "secret")


@attrs.frozen
class Profile:
    """One profile's settings (None: not set in the profile)."""

    name: str
    base_url: str | None = None
    ca_bundle: str | None = None
    session_id_file: str | None = None


def config_path() -> Path:
    """Where profiles are read from: ``AMEYO_CONFIG``, else config.toml in the config dir."""
    named = os.environ.get("AMEYO_CONFIG", "").strip()
    if named:
        return Path(named).expanduser()
    return Path(click.get_app_dir("ameyo-callbacks")) / "config.toml"


def _path(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def load_profile(name: str) -> Profile:
    """The profile ``name``, or a ConfigError saying what is wrong with the file."""
    path = config_path()
    try:
        with path.open("rb") as f:
            data: dict[str, Any] = tomllib.load(f)
    except FileNotFoundError:
        msg = (
            f"--profile {name}: there is no config file {path}. Create it with a "
            f"[profiles.{name}] table (base_url, ca_bundle, session_id_file), or set "
            "AMEYO_CONFIG to the file to use"
        )
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"--profile {name}: cannot read {path}: {exc.strerror or exc}"
        raise ConfigError(msg) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        msg = f"--profile {name}: {path} is not valid TOML: {exc}"
        raise ConfigError(msg) from None
    profiles = data.get("profiles", {})
    table = profiles.get(name) if isinstance(profiles, dict) else None
    if not isinstance(table, dict):
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"
        msg = f"--profile {name}: {path} has no [profiles.{name}] table (profiles there: {known})"
        raise ConfigError(msg)
    secrets = [key for key in table if key.lower().replace("-", "_") in _SECRETS]
    if secrets:
        msg = (
            f"--profile {name}: {path} holds {', '.join(secrets)}: keep secrets out of the "
            "config file; name a session_id_file instead, or use AMEYO_SESSION_ID"
        )
        raise ConfigError(msg)
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        msg = (
            f"--profile {name}: unknown setting {', '.join(unknown)} in {path}; "
            f"a profile takes {', '.join(KEYS)}"
        )
        raise ConfigError(msg)
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            msg = f"--profile {name}: {key} in {path} must be a non-empty string"
            raise ConfigError(msg)
    base = path.parent
    return Profile(
        name,
        base_url=table.get("base_url"),
        ca_bundle=_path(base, table["ca_bundle"]) if "ca_bundle" in table else None,
        session_id_file=(
            _path(base, table["session_id_file"]) if "session_id_file" in table else None
        ),
    )
