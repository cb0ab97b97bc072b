"""MaxMind-format databases given with ``--geoip``: GeoLite2 / GeoIP2 Country,
City and ASN, and DB-IP's lite editions (same record layout).

The kind of each file is read from its metadata, so the user passes files and
never says which is which. :func:`find_geoip_databases` says where files are
looked for when the user names none.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from privaudit.errors import ConfigError, yaml_location


@dataclass(frozen=True, slots=True)
class GeoResult:
    country: str | None
    registered_country: str | None = None
    city: str | None = None
    source: str = ""
    """Database type and file name, for evidence details."""


@dataclass(frozen=True, slots=True)
class AsnResult:
    asn: int | None
    org: str | None
    source: str = ""


def _kind(database_type: str) -> str | None:
    if "ASN" in database_type or "ISP" in database_type:
        return "asn"
    if "City" in database_type:
        return "city"
    if "Country" in database_type:
        return "country"
    return None


class GeoDatabases:
    """Opened MMDB files, sorted into location and ASN databases."""

    def __init__(self, paths: Iterable[str | Path] = ()):
        paths = list(paths)
        if paths:  # geoip2 is imported only when there are databases to open
            import geoip2.database
            import maxminddb
        self._geo: list[tuple[str, geoip2.database.Reader, str]] = []
        self._asn: list[tuple[str, geoip2.database.Reader]] = []
        self._paths: dict[int, Path] = {}
        for raw in paths:
            path = Path(raw)
            try:
                reader = geoip2.database.Reader(str(path))
                db_type = reader.metadata().database_type
            except FileNotFoundError as exc:
                raise ConfigError(f"{path}: GeoIP database not found") from exc
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
                raise ConfigError(f"{path}: not a readable MaxMind DB (.mmdb) file: {exc}") from exc
            self._paths[id(reader)] = path
            kind = _kind(db_type)
            label = f"{db_type} ({path.name})"
            if kind is None:
                reader.close()
                raise ConfigError(
                    f"{path}: unsupported database type {db_type!r}; "
                    "expected a Country, City or ASN database (GeoLite2, GeoIP2 or DB-IP lite)"
                )
            if kind == "asn":
                self._asn.append((label, reader))
            else:
                self._geo.append((label, reader, kind))

    def __bool__(self) -> bool:
        return bool(self._geo or self._asn)

    @property
    def has_location(self) -> bool:
        return bool(self._geo)

    def close(self) -> None:
        for _, reader, _ in self._geo:
            reader.close()
        for _, reader in self._asn:
            reader.close()

    def locate(self, ip: str) -> GeoResult | None:
        """The first location database (in the order given) that knows ``ip``."""
        if not self._geo:  # (and no import of geoip2: 70 ms of start-up)
            return None
        import geoip2.errors
        import maxminddb

        for label, reader, kind in self._geo:
            try:
                rec = reader.city(ip) if kind == "city" else reader.country(ip)
            except (geoip2.errors.AddressNotFoundError, ValueError):
                continue
            except maxminddb.InvalidDatabaseError as exc:
                raise ConfigError(f"{self._paths[id(reader)]}: corrupt MaxMind DB data: {exc}") from exc
            city = rec.city.name if kind == "city" else None
            if rec.country.iso_code is None and rec.registered_country.iso_code is None:
                continue
            return GeoResult(
                country=rec.country.iso_code,
                registered_country=rec.registered_country.iso_code,
                city=city,
                source=label,
            )
        return None

    def asn(self, ip: str) -> AsnResult | None:
        if not self._asn:
            return None
        import geoip2.errors
        import maxminddb

        for label, reader in self._asn:
            try:
                rec = reader.asn(ip) if "ISP" not in label else reader.isp(ip)
            except (geoip2.errors.AddressNotFoundError, ValueError):
                continue
            except maxminddb.InvalidDatabaseError as exc:
                raise ConfigError(f"{self._paths[id(reader)]}: corrupt MaxMind DB data: {exc}") from exc
            if rec.autonomous_system_number is None:
                continue
            return AsnResult(rec.autonomous_system_number, rec.autonomous_system_organization, label)
        return None


#: Where geoipupdate and distribution packages put MMDB files.
STANDARD_GEOIP_DIRS: tuple[Path, ...] = (
    Path("/usr/share/GeoIP"),
    Path("/var/lib/GeoIP"),
    Path("/usr/local/share/GeoIP"),
)


def _config_path(env: Mapping[str, str]) -> Path:
    if env.get("PRIVAUDIT_CONFIG"):
        return Path(env["PRIVAUDIT_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "privaudit" / "config.yaml"


def _mmdb_in(folder: Path, warnings: list[str] | None) -> list[Path]:
    """The usable ``*.mmdb`` files of a folder, by name: files whose metadata
    says Country, City or ASN. Other MaxMind databases (Anonymous-IP,
    Connection-Type...) and unreadable files lie in such folders legitimately,
    so they are skipped, with a warning for the unreadable ones."""
    import maxminddb

    out: list[Path] = []
    for path in sorted(folder.glob("*.mmdb")):
        try:
            with maxminddb.open_database(str(path)) as reader:
                kind = _kind(reader.metadata().database_type)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            if warnings is not None:
                warnings.append(f"{path}: skipped, not a readable MaxMind DB: {exc}")
            continue
        if kind is not None:
            out.append(path)
    return out


def _expand_listed(items: Sequence[str], origin: str, base: Path | None, warnings: list[str] | None) -> list[Path]:
    out: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        if path.is_dir():
            out.extend(_mmdb_in(path, warnings))
        elif path.is_file():
            out.append(path)
        else:
            raise ConfigError(f"{origin}: GeoIP path {str(path)!r} does not exist")
    return out


def _config_geoip(path: Path) -> list[str] | None:
    """The ``geoip:`` list of the config file, or None without a file or key."""
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the privaudit config file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{yaml_location(str(path), exc)}: invalid YAML in the privaudit config file") from exc
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the privaudit config file must be a mapping, e.g.\n  geoip: [/path/to/GeoLite2-City.mmdb]")
    value = data.get("geoip")
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"{path}: 'geoip' must be a list of MMDB files or folders, e.g.\n  geoip: [/usr/share/GeoIP/GeoLite2-City.mmdb]"
        )
    return value


def find_geoip_databases(
    explicit: Sequence[str | Path],
    env: Mapping[str, str] = os.environ,
    *,
    standard_dirs: Sequence[Path] = STANDARD_GEOIP_DIRS,
    warnings: list[str] | None = None,
) -> list[Path]:
    """The MMDB files to use, from the first of these places that names any:

    1. ``explicit`` (``--geoip`` options), as given (a folder stands for its
       files): a missing or unreadable file is reported later by
       :class:`GeoDatabases` as a ConfigError;
    2. the ``PRIVAUDIT_GEOIP`` environment variable: files or folders separated
       by ``os.pathsep`` (":" on Unix); a path that does not exist is a
       ConfigError naming the variable;
    3. the config file, ``$PRIVAUDIT_CONFIG`` or else
       ``$XDG_CONFIG_HOME/privaudit/config.yaml`` (``~/.config/...``), key
       ``geoip:`` with a list of files or folders (relative paths are relative
       to the config file);
    4. the standard folders (:data:`STANDARD_GEOIP_DIRS`: /usr/share/GeoIP,
       /var/lib/GeoIP, /usr/local/share/GeoIP): every ``*.mmdb`` there.

    A folder stands for its ``*.mmdb`` files in name order that are Country,
    City or ASN databases; others are skipped (unreadable ones with a message
    in ``warnings``). An empty result means no GeoIP data: the locator then
    uses registry countries only. Set ``PRIVAUDIT_GEOIP`` to an empty value to
    get exactly that, skipping the config file and the standard folders.
    """
    if explicit:
        out: list[Path] = []
        for raw in explicit:
            path = Path(raw)
            out.extend(_mmdb_in(path, warnings) if path.is_dir() else [path])
        return out
    if "PRIVAUDIT_GEOIP" in env:
        items = [p for p in env["PRIVAUDIT_GEOIP"].split(os.pathsep) if p.strip()]
        return _expand_listed(items, "PRIVAUDIT_GEOIP", None, warnings)
    config = _config_path(env)
    listed = _config_geoip(config)
    if listed is not None:
        return _expand_listed(listed, str(config), config.parent, warnings)
    found: list[Path] = []
    for folder in standard_dirs:
        if folder.is_dir():
            found.extend(_mmdb_in(folder, warnings))
    return found
