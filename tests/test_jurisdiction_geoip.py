"""GeoIP databases: real MMDB files, written with mmdb-writer in the GeoLite2
record layout into tmp_path, read back through the Locator."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from privaudit.errors import ConfigError
from privaudit.jurisdiction import Locator

NAMES = {"CN": "China", "US": "United States", "KR": "South Korea", "SG": "Singapore"}


def _country(code: str) -> dict:
    return {"iso_code": code, "names": {"en": NAMES[code]}}


def write_mmdb(path: Path, database_type: str, records: dict[str, dict]) -> Path:
    """One MMDB file; GeoLite2 files are IPv6 trees with IPv4 mapped in."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type,
                        languages=["en"], description="privaudit test database")
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture
def country_db(tmp_path: Path) -> Path:
    # 8.8.8.0/24 deliberately says CN while the registry says US, to show
    # which one wins and that the conflict is kept.
    return write_mmdb(tmp_path / "GeoLite2-Country.mmdb", "GeoLite2-Country", {
        "8.8.8.0/24": {"country": _country("CN"), "registered_country": _country("US")},
        "114.114.114.0/24": {"country": _country("CN"), "registered_country": _country("CN")},
    })


@pytest.fixture
def city_db(tmp_path: Path) -> Path:
    return write_mmdb(tmp_path / "dbip-city-lite.mmdb", "DBIP-City-Lite", {
        "223.5.5.0/24": {
            "city": {"names": {"en": "Hangzhou"}},
            "country": _country("CN"),
            "location": {"latitude": 30.29, "longitude": 120.16},
        },
        "2400:3200::/32": {"city": {"names": {"en": "Hangzhou"}}, "country": _country("CN")},
    })


@pytest.fixture
def asn_db(tmp_path: Path) -> Path:
    return write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", {
        "223.5.5.0/24": {"autonomous_system_number": 37963,
                         "autonomous_system_organization": "Hangzhou Alibaba Advertising Co.,Ltd."},
        "8.8.8.0/24": {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"},
    })


def test_country_db_wins_over_registry_and_keeps_both(country_db):
    info = Locator(geoip_paths=[country_db]).describe("dns.example.com", ["8.8.8.8"])
    assert info.hosting_country == "CN"
    assert info.jurisdictions == ("CN", "US")
    geo = [e for e in info.evidence if e.kind == "geoip"]
    assert geo[0].country == "CN"
    assert "GeoLite2-Country" in geo[0].detail and "registered to US" in geo[0].detail
    assert [e.country for e in info.evidence if e.kind == "rir"] == ["US"]
    assert any("GeoIP places the server in CN" in r for r in info.confidence_reasons)
    assert not any("pass --geoip" in r for r in info.confidence_reasons)


@pytest.mark.parametrize("ip", ["223.5.5.5", "2400:3200::1"])
def test_city_db_gives_city(city_db, ip):
    info = Locator(geoip_paths=[city_db]).describe("oss-cn-hangzhou.aliyuncs.com", [ip])
    geo = [e for e in info.evidence if e.kind == "geoip"]
    assert geo and geo[0].country == "CN" and "Hangzhou" in geo[0].detail and "DBIP-City-Lite" in geo[0].detail
    assert info.confidence == "high"


def test_asn_db_fills_asn(asn_db, city_db):
    locator = Locator(geoip_paths=[asn_db, city_db])  # order and type come from metadata
    info = locator.describe("dns.alidns.com", ["223.5.5.5"])
    assert info.asn == 37963
    assert info.as_org == "Hangzhou Alibaba Advertising Co.,Ltd."
    assert any(e.kind == "asn" and "AS37963" in e.detail for e in info.evidence)
    assert info.hosting_country == "CN"


def test_address_missing_from_db_falls_back_to_registry(country_db, asn_db):
    info = Locator(geoip_paths=[country_db, asn_db]).describe("example.net", ["168.126.63.1"])
    assert info.hosting_country == "KR"
    assert [e.kind for e in info.evidence if e.country] == ["rir"]
    assert info.asn is None and info.as_org is None


def test_asn_only_database_leaves_country_to_registry(asn_db):
    info = Locator(geoip_paths=[asn_db]).describe("dns.google", ["8.8.8.8"])
    assert (info.hosting_country, info.asn, info.as_org) == ("US", 15169, "GOOGLE")


def test_missing_mmdb_is_config_error(tmp_path):
    missing = tmp_path / "nope.mmdb"
    with pytest.raises(ConfigError, match="nope.mmdb"):
        Locator(geoip_paths=[missing])


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a MaxMind database\n" * 10, b"\x00" * 4096],
    ids=["empty", "text", "zeros"],
)
def test_corrupt_mmdb_is_config_error(tmp_path, content):
    bad = tmp_path / "corrupt.mmdb"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match="corrupt.mmdb"):
        Locator(geoip_paths=[bad])


def test_truncated_mmdb_is_config_error(tmp_path, country_db):
    data = country_db.read_bytes()
    bad = tmp_path / "truncated.mmdb"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ConfigError, match="truncated.mmdb"):
        Locator(geoip_paths=[bad])


def test_unsupported_database_type_is_config_error(tmp_path):
    db = write_mmdb(tmp_path / "anon.mmdb", "GeoIP2-Anonymous-IP", {"8.8.8.0/24": {"is_anonymous": True}})
    with pytest.raises(ConfigError, match="anon.mmdb.*unsupported database type"):
        Locator(geoip_paths=[db])


def test_corrupt_data_section_is_config_error_at_lookup(tmp_path, country_db):
    # Metadata intact (it sits at the end), search tree and data overwritten.
    data = bytearray(country_db.read_bytes())
    meta_at = data.rfind(b"\xab\xcd\xefMaxMind.com")
    data[:meta_at] = b"\xff" * meta_at
    bad = tmp_path / "scrambled.mmdb"
    bad.write_bytes(bytes(data))
    try:
        locator = Locator(geoip_paths=[bad])
    except ConfigError as exc:
        assert "scrambled.mmdb" in str(exc)
        return
    with pytest.raises(ConfigError, match="scrambled.mmdb"):
        locator.describe("dns.example.com", ["8.8.8.8"])
