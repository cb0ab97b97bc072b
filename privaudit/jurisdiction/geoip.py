"""MaxMind-format databases given with ``--geoip``: GeoLite2 / GeoIP2 Country,
City and ASN, and DB-IP's lite editions (same record layout).

The kind of each file is read from its metadata, so the user passes files and
never says which is which.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb

from privaudit.errors import ConfigError


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
