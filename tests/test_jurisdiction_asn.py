"""The ASN map (rules/asn/*.yaml): shipped data, schema errors with file:line,
and how the network operator's country counts, read through real MMDB files
written with mmdb-writer (see test_jurisdiction_geoip.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from test_jurisdiction_geoip import write_mmdb

from privaudit.errors import RuleError
from privaudit.jurisdiction import AsnMap, Locator, check_data_files, user_asn_files
from privaudit.jurisdiction.asn import load_asn_file, shipped_asn_files
from privaudit.jurisdiction.countries import is_country


@pytest.fixture(scope="module")
def shipped() -> AsnMap:
    return AsnMap([shipped_asn_files()])


# -- the shipped map ----------------------------------------------------------------

@pytest.mark.parametrize(
    "asn, country, name_part",
    [
        # Chinese backbones and research network
        (4134, "CN", "China Telecom"), (4812, "CN", "China Telecom"), (23764, "CN", "China Telecom"),
        (4809, "CN", "China Telecom"),
        (4837, "CN", "China Unicom"), (9929, "CN", "China Unicom"),
        (9808, "CN", "China Mobile"), (56040, "CN", "China Mobile"),
        (4538, "CN", "CERNET"),
        # Chinese clouds
        (37963, "CN", "Alibaba"), (45102, "CN", "Alibaba"),
        (45090, "CN", "Tencent"), (132203, "CN", "Tencent"),
        (136907, "CN", "Huawei Cloud"), (55990, "CN", "Huawei Cloud"),
        (38365, "CN", "Baidu"), (55967, "CN", "Baidu"),
        (137718, "CN", "Volcano Engine"), (138699, "CN", "ByteDance"), (396986, "CN", "ByteDance"),
        (59019, "CN", "Kingsoft"),
        # Western
        (16509, "US", "Amazon"), (14618, "US", "Amazon"), (15169, "US", "Google"), (396982, "US", "Google"),
        (8075, "US", "Microsoft"), (13335, "US", "Cloudflare"), (20940, "US", "Akamai"), (16625, "US", "Akamai"),
        (54113, "US", "Fastly"), (32934, "US", "Meta"), (14061, "US", "DigitalOcean"),
        (16276, "FR", "OVH"), (24940, "DE", "Hetzner"),
        # Korean carriers
        (4766, "KR", "KT"), (9318, "KR", "SK Broadband"), (3786, "KR", "LG Uplus"),
    ],
)
def test_required_asns(shipped, asn, country, name_part):
    entry = shipped.lookup(asn)
    assert entry is not None, f"AS{asn} missing"
    assert entry.country == country
    assert name_part in entry.name


def test_bytedance_us_network_is_its_us_arm(shipped):
    entry = shipped.lookup(396986)
    assert entry.as_country == "US" and entry.countries == ("US", "CN")
    assert "US arm" in entry.describe()


def test_every_shipped_entry_is_sourced_and_valid(shipped):
    assert len(shipped) >= 50
    for e in shipped.entries():
        assert e.source.startswith("https://"), e.origin
        assert all(is_country(c) for c in e.countries), e.origin
        assert e.parent_country is None or e.parent, e.origin


def test_shipped_network_operators_link_to_the_operator_map():
    """Family matching goes through names; every shipped cloud/CDN/content
    network's operator should be found in the operator map by name or alias."""
    locator = Locator()
    missing = []
    for e in locator.asns.entries():
        if e.kind in ("cloud", "cdn", "content", "hosting"):
            names = [e.name, *e.aliases, e.parent]
            if not any(n and locator.operators.lookup_name(n) for n in names):
                missing.append(f"AS{e.asn} {e.name}")
    assert missing == []


# -- bad files ----------------------------------------------------------------------

GOOD = """\
networks:
  - name: Example Networks
    country: KR
    kind: hosting
    source: https://example.com/about
    asns: [64500, {asn: 64501, name: EXAMPLE-2}]
"""


def _write(tmp_path: Path, text: str, name: str = "nets.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, where, message",
    [
        (GOOD.replace("country: KR", "country: XX"), ":3", "ISO 3166-1"),
        (GOOD.replace("country: KR", "country: kr"), ":3", "does not match"),
        (GOOD.replace("    source: https://example.com/about\n", ""), ":2", "'source' is a required property"),
        (GOOD.replace("kind: hosting", "kind: datacenter"), ":4", "is not one of"),
        (GOOD.replace("[64500,", "[AS64500,"), ":6", "AS64500"),
        (GOOD.replace("[64500,", "[0,"), ":6", ""),
        (GOOD.replace("name: EXAMPLE-2", "nme: EXAMPLE-2"), ":6", ""),
        (GOOD + "    parent_country: CN\n", ":7", "parent_country given without parent"),
        (GOOD.replace("[64500, ", "[64501, "), ":6", "AS64501 is already listed"),
        (GOOD + "  - name: [unclosed\n", ":8", "invalid YAML"),  # PyYAML notices at the end
        ("networks: {}\n", ":1", "is not of type 'array'"),
        ("operators: []\n", ":1", "'networks' is a required property"),
    ],
)
def test_bad_asn_file_is_rule_error_with_line(tmp_path, text, where, message):
    path = _write(tmp_path, text)
    with pytest.raises(RuleError) as err:
        AsnMap([[path]])
    assert f"{path}{where}" in str(err.value)
    assert message in str(err.value)


def test_schema_error_shows_an_example(tmp_path):
    path = _write(tmp_path, GOOD.replace("    kind: hosting\n", ""))
    with pytest.raises(RuleError, match="an ASN map entry looks like"):
        load_asn_file(path)


def test_user_layer_overrides_shipped_entry(tmp_path):
    path = _write(tmp_path, GOOD.replace("[64500,", "[4134,"))
    amap = AsnMap.default([path])
    assert amap.lookup(4134).name == "Example Networks"
    assert amap.lookup(4837).name.startswith("China United")


def test_user_asn_files_found_in_rules_folders(tmp_path):
    one, two, none = tmp_path / "one", tmp_path / "two", tmp_path / "none"
    for d in (one / "asn", two / "asn", none):
        d.mkdir(parents=True)
    _write(one / "asn", GOOD, "a.yaml")
    _write(two / "asn", GOOD.replace("64500", "64510").replace("64501", "64511"), "b.yml")
    (two / "asn" / "README.txt").write_text("not yaml")
    assert user_asn_files([one, none, two]) == [one / "asn" / "a.yaml", two / "asn" / "b.yml"]
    locator = Locator(asn_files=user_asn_files([one, two]))
    assert locator.asns.lookup(64511).name == "Example Networks"


def test_check_data_files_covers_asn_folder(tmp_path):
    (tmp_path / "asn").mkdir()
    _write(tmp_path / "asn", GOOD, "good.yaml")
    _write(tmp_path / "asn", GOOD, "repeat.yaml")
    _write(tmp_path / "asn", GOOD.replace("country: KR", "country: XX"), "bad.yaml")
    errors = check_data_files(tmp_path)
    assert len(errors) == 2
    assert any("asn/bad.yaml:3" in e and "ISO 3166-1" in e for e in errors)
    assert any("AS64500 is already listed" in e for e in errors)


# -- how the network operator counts (real MMDBs) -----------------------------------

def _asn_record(asn: int, org: str) -> dict:
    return {"autonomous_system_number": asn, "autonomous_system_organization": org}


@pytest.fixture
def asn_db(tmp_path: Path) -> Path:
    # Addresses chosen by their registry country (iptocc): 101.126.0.10 and
    # 114.114.114.114 CN, 8.8.8.8 US, 168.126.63.1 KR. The AS assignments are
    # made up for the test, to put one address in each situation.
    return write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", {
        "101.126.0.0/24": _asn_record(396986, "BYTEDANCE"),
        "114.114.114.0/24": _asn_record(4134, "CHINANET-BACKBONE"),
        "8.8.8.0/24": _asn_record(16509, "AMAZON-02"),
        "168.126.63.0/24": _asn_record(64500, "EXAMPLE"),
    })


@pytest.mark.parametrize(
    "host, ip, jurisdictions, asn_country, reason",
    [
        # No service operator known: the network operator is the best answer; the
        # ByteDance US arm names US and the parent CN.
        ("api.chatapp-test.example", "101.126.0.10", ("CN", "US"), "US", "no service operator is known"),
        # The service operator's own family: Volcengine (parent ByteDance) on ByteDance's US network.
        ("gator.volces.com", "101.126.0.10", ("CN", "US"), "US", "the service operator's own network"),
        # Another company's cloud: evidence, not a jurisdiction; the reason says why.
        ("chat.deepseek.com", "8.8.8.8", ("CN", "US"), "US", None),
        ("chat.deepseek.com", "114.114.114.114", ("CN",), "CN", None),
        # A backbone carrier's address for a known operator: evidence only, no reason.
        ("api.openai.com", "114.114.114.114", ("CN", "US"), "CN", None),
    ],
)
def test_network_operator_country_rules(asn_db, host, ip, jurisdictions, asn_country, reason):
    info = Locator(geoip_paths=[asn_db]).describe(host, [ip])
    assert info.jurisdictions == jurisdictions
    asn = [e for e in info.evidence if e.kind == "asn"]
    assert len(asn) == 1 and asn[0].country == asn_country and "the network is run by" in asn[0].detail
    if reason:
        assert any(reason in r for r in info.confidence_reasons)


def test_other_companys_cloud_names_its_operator(asn_db):
    # DeepSeek's name on an AWS-announced address the registry lists for US:
    # US is a jurisdiction through the address, so no extra reason is needed.
    info = Locator(geoip_paths=[asn_db]).describe("chat.deepseek.com", ["8.8.8.8"])
    assert info.asn == 16509 and info.as_org == "AMAZON-02"
    assert any("Amazon Web Services" in e.detail for e in info.evidence if e.kind == "asn")
    assert not any("another company" in r for r in info.confidence_reasons)  # US already counted via the address


def test_other_companys_cloud_in_uncounted_country_gets_reason(tmp_path):
    db = write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", {
        "114.114.114.0/24": _asn_record(16509, "AMAZON-02"),
    })
    info = Locator(geoip_paths=[db]).describe("chat.deepseek.com", ["114.114.114.114"])
    assert info.jurisdictions == ("CN",)
    assert [e.country for e in info.evidence if e.kind == "asn"] == ["US"]
    assert any("cloud network of another company" in r and "US is recorded as evidence" in r
               for r in info.confidence_reasons)


def test_asn_missing_from_map_is_evidence_without_country(asn_db):
    info = Locator(geoip_paths=[asn_db]).describe("example.net", ["168.126.63.1"])
    asn = [e for e in info.evidence if e.kind == "asn"]
    assert asn[0].country is None and "not in the ASN map" in asn[0].detail
    assert info.jurisdictions == ("KR",)


def test_user_asn_entry_is_used(asn_db, tmp_path):
    user = _write(tmp_path, GOOD.replace("country: KR", "country: JP"))
    info = Locator(geoip_paths=[asn_db], asn_files=[user]).describe("example.net", ["168.126.63.1"])
    assert [e.country for e in info.evidence if e.kind == "asn"] == ["JP"]
    assert info.jurisdictions == ("JP", "KR")  # no operator known: the network operator counts


def test_without_asn_database_there_is_no_asn_evidence():
    info = Locator().describe("api.chatapp-test.example", ["101.126.0.10"])
    assert not any(e.kind == "asn" for e in info.evidence)
    assert info.jurisdictions == ("CN",)


def test_several_addresses_several_networks(asn_db):
    info = Locator(geoip_paths=[asn_db]).describe("api.chatapp-test.example", ["114.114.114.114", "8.8.8.8"])
    assert [e.country for e in info.evidence if e.kind == "asn"] == ["CN", "US"]
    assert info.asn == 4134  # the first address's AS fills the endpoint's asn field
    assert sum("no service operator is known" in r for r in info.confidence_reasons) == 2
