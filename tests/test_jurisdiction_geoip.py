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


# -- finding databases when none are given (find_geoip_databases) ------------------

from privaudit.jurisdiction import find_geoip_databases  # noqa: E402


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """Every place discovery looks at, as tmp folders holding real MMDBs."""
    out = {}
    for name in ("explicit", "env", "config", "std1", "std2", "home"):
        (tmp_path / name).mkdir()
        out[name] = tmp_path / name
    for name in ("explicit", "env", "config", "std1", "std2"):
        write_mmdb(out[name] / f"{name}-City.mmdb", "GeoLite2-City", {"223.5.5.0/24": {"country": _country("CN")}})
    write_mmdb(out["std2"] / "a-ASN.mmdb", "GeoLite2-ASN", {"8.8.8.0/24": {"autonomous_system_number": 15169}})
    # Other MaxMind types and broken files in a folder are skipped, not fatal.
    write_mmdb(out["std2"] / "anon.mmdb", "GeoIP2-Anonymous-IP", {"8.8.8.0/24": {"is_anonymous": True}})
    (out["std2"] / "broken.mmdb").write_bytes(b"not a database")
    (out["std2"] / "notes.txt").write_text("not an mmdb")
    return out


def _find(places, explicit=(), env=None, **kw):
    env = {"HOME": str(places["home"])} if env is None else {"HOME": str(places["home"]), **env}
    return find_geoip_databases(explicit, env, standard_dirs=[places["std1"], places["std2"]], **kw)


def _names(paths):
    return [p.name for p in paths]


def test_explicit_paths_win(places):
    f = places["explicit"] / "explicit-City.mmdb"
    env = {"PRIVAUDIT_GEOIP": str(places["env"])}
    assert _find(places, [f], env) == [f]
    assert _find(places, [places["explicit"]], env) == [f]  # a folder stands for its files
    missing = places["explicit"] / "missing.mmdb"
    assert _find(places, [missing]) == [missing]  # reported by GeoDatabases, which names the file


def test_environment_variable_next(places, tmp_path):
    import os

    f = places["config"] / "config-City.mmdb"
    env = {"PRIVAUDIT_GEOIP": os.pathsep.join([str(places["env"]), str(f)])}
    assert _names(_find(places, (), env)) == ["env-City.mmdb", "config-City.mmdb"]


def test_environment_variable_with_missing_path_is_config_error(places):
    with pytest.raises(ConfigError, match="PRIVAUDIT_GEOIP.*nope.mmdb"):
        _find(places, (), {"PRIVAUDIT_GEOIP": str(places["home"] / "nope.mmdb")})


def test_empty_environment_variable_means_none(places):
    assert _find(places, (), {"PRIVAUDIT_GEOIP": ""}) == []


def test_config_file_in_home(places):
    cfg = places["home"] / ".config" / "privaudit" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"geoip:\n  - {places['config']}\n")
    assert _names(_find(places)) == ["config-City.mmdb"]


def test_config_file_path_from_environment_and_relative_entries(places, tmp_path):
    cfg = places["config"] / "privaudit.yaml"
    cfg.write_text("geoip: [config-City.mmdb]\n")  # relative to the config file
    assert _find(places, (), {"PRIVAUDIT_CONFIG": str(cfg)}) == [places["config"] / "config-City.mmdb"]


def test_xdg_config_home(places, tmp_path):
    cfg = tmp_path / "xdg" / "privaudit" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"geoip: {places['config'] / 'config-City.mmdb'}\n")  # a single string is fine
    assert _names(_find(places, (), {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})) == ["config-City.mmdb"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("geoip: [unclosed\n", r"config.yaml:\d+:\d+: invalid YAML"),
        ("- just a list\n", "must be a mapping"),
        ("geoip: {a: b}\n", "'geoip' must be a list"),
        ("geoip: [/nowhere/x.mmdb]\n", "config.yaml: GeoIP path '/nowhere/x.mmdb' does not exist"),
    ],
)
def test_bad_config_file_is_config_error(places, text, message):
    cfg = places["home"] / ".config" / "privaudit" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        _find(places)


def test_config_file_without_geoip_key_falls_through(places):
    cfg = places["home"] / ".config" / "privaudit" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("other: 1\n")
    assert _names(_find(places)) == ["std1-City.mmdb", "a-ASN.mmdb", "std2-City.mmdb"]


def test_standard_places_last_skipping_other_types(places):
    warnings: list[str] = []
    found = _find(places, warnings=warnings)
    assert _names(found) == ["std1-City.mmdb", "a-ASN.mmdb", "std2-City.mmdb"]
    assert len(warnings) == 1 and "broken.mmdb" in warnings[0]
    locator = Locator(geoip_paths=found)  # what was found opens
    assert locator.describe("x.example", ["8.8.8.8"]).asn == 15169


def test_nothing_anywhere_is_empty(tmp_path):
    assert find_geoip_databases((), {"HOME": str(tmp_path)}, standard_dirs=[tmp_path / "none"]) == []
