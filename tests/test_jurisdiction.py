"""Locator: address countries, operator look-ups and how evidence combines.

Address look-ups use only the embedded registry data (iptocc); no test sends
traffic anywhere.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from privaudit.jurisdiction import Locator, psl, registrable_domain
from privaudit.jurisdiction import operators as operators_mod
from privaudit.jurisdiction.addresses import non_public_reason, parse_ip, registry_country
from privaudit.jurisdiction.demo_addresses import DEMO_ADDRESSES
from privaudit.jurisdiction.hints import region_hints, tld_country
from privaudit.model import CertInfo, EndpointInfo
from privaudit.source import read_exchanges


@pytest.fixture(scope="module")
def locator() -> Locator:
    return Locator()


# -- registry countries (embedded iptocc data) -------------------------------------

@pytest.mark.parametrize(
    "ip, country",
    [
        ("8.8.8.8", "US"),  # Google Public DNS, ARIN
        ("114.114.114.114", "CN"),  # 114DNS, APNIC China
        ("223.5.5.5", "CN"),  # AliDNS
        ("119.29.29.29", "CN"),  # Tencent DNSPod
        ("168.126.63.1", "KR"),  # KT DNS
        ("77.88.8.8", "RU"),  # Yandex DNS
        ("81.2.69.142", "GB"),
        ("1.1.1.1", "AU"),  # registered to APNIC Research in Australia, though Cloudflare anycasts it
        ("2001:4860:4860::8888", "US"),
        ("240c::6666", "CN"),
        ("::ffff:8.8.8.8", "US"),  # IPv4-mapped, as dual-stack proxies report peers
    ],
)
def test_registry_country(ip, country):
    addr = parse_ip(ip)
    assert non_public_reason(addr) is None
    assert registry_country(addr) == country


@pytest.mark.parametrize(
    "ip, reason",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("10.0.0.8", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("fe80::1%eth0", "link-local"),
        ("169.254.1.1", "link-local"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.7", "documentation"),
        ("2001:db8::1", "documentation"),
        ("100.64.0.1", "shared"),
        ("240.0.0.1", "reserved"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_non_public_addresses_have_no_country(locator, ip, reason):
    assert reason in non_public_reason(parse_ip(ip))
    info = locator.describe("example.net", [ip])
    assert info.hosting_country is None
    assert info.jurisdictions == ()
    assert any("no country" in e.detail and e.country is None for e in info.evidence)


def test_not_an_address_is_evidence_not_a_crash(locator):
    info = locator.describe("example.net", ["not-an-ip"])
    assert info.hosting_country is None
    assert "not an IP address" in info.evidence[0].detail


def test_literal_address_host_is_the_contacted_address(locator):
    info = locator.describe("114.114.114.114", [])
    assert info.ips == ("114.114.114.114",)
    assert info.hosting_country == "CN"


# -- registrable domains (bundled Public Suffix List) ------------------------------

@pytest.mark.parametrize(
    "host, expected",
    [
        ("gator.volces.com", "volces.com"),
        ("fp-it.fengkongcloud.com", "fengkongcloud.com"),
        ("a.b.sina.com.cn", "sina.com.cn"),
        ("x.y.kakao.co.kr", "kakao.co.kr"),
        ("d111.cloudfront.net", "cloudfront.net"),  # PSL private suffix: owner's domain wins
        ("API-IAM.Intercom.IO.", "intercom.io"),
        ("com.cn", None),
        ("localhost", None),
        ("127.0.0.1", None),
        ("", None),
    ],
)
def test_registrable_domain(host, expected):
    assert registrable_domain(host) == expected


def test_public_suffix_list_is_offline(monkeypatch, tmp_path):
    """The shipped list is read from disk: no socket, no cache writes."""

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    psl._trie.cache_clear()
    registrable_domain.cache_clear()
    try:
        assert registrable_domain("x.example.com.cn") == "example.com.cn"
        assert Locator().describe("api.deepseek.com", ["127.0.0.1"]).operator is not None
    finally:
        registrable_domain.cache_clear()
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "home").exists()


def _hosts_to_compare() -> list[str]:
    """Every operator-map domain with sub-domains, every host in the test
    captures, and the list's own tricky corners (wildcards, exceptions,
    punycode, private suffixes, odd dots)."""
    hosts = set()
    for e in operators_mod.OperatorMap.default().entries():
        hosts |= {e.domain, "a." + e.domain, "x.y." + e.domain}
    for p in (Path(__file__).parent / "data").rglob("*.mitm"):
        try:
            hosts |= {ex.host for ex in read_exchanges([p])}
        except Exception:
            pass
    hosts |= {
        "foo.ck", "www.ck", "a.www.ck", "ck", "a.b.kawasaki.jp", "city.kawasaki.jp", "x.city.kawasaki.jp",
        "xn--fiqs8s", "a.xn--fiqs8s", "b.a.xn--fiqs8s", "shop.xn--55qx5d.cn", "xn--bcher-kva.example",
        "a.公司.cn", "b.a.公司.cn", "a..com", ".com", "a.b.c", "foo.bar.baz.unknowntld", "1.2.3.4", "::1",
        "my.workers.dev", "x.appspot.com", "a.blogspot.co.uk", "s3.amazonaws.com", "x.github.io",
        "x.co.jp", "x.pvt.k12.ma.us", "a.b.ide.kyoto.jp", "sub.example.co.uk", "EXAMPLE.COM", "xn--.com",
        "a.xn--zz.com", "a。b。com", "a．b．co．kr",
    }
    return sorted(hosts)


def test_registrable_domain_agrees_with_tldextract():
    tldextract = pytest.importorskip("tldextract")
    ext = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
    snapshot = Path(tldextract.__file__).parent / ".tld_set_snapshot"
    shipped = Path(psl.rules_dir()) / "psl" / "public_suffix_list.dat"
    if snapshot.read_bytes() != shipped.read_bytes():
        pytest.skip("this tldextract ships another version of the list")
    hosts = _hosts_to_compare()
    assert len(hosts) > 500
    differ = [(h, registrable_domain(h), ext(h.lower()).top_domain_under_public_suffix or None) for h in hosts]
    differ = [d for d in differ if d[1] != d[2]]
    assert not differ


# -- operator look-ups -------------------------------------------------------------

@pytest.mark.parametrize(
    "host, operator_country, name_part",
    [
        ("chat.deepseek.com", "CN", "DeepSeek"),
        ("gator.volces.com", "CN", "Volcano Engine"),
        ("p3-sign.byteimg.com", "CN", "ByteDance"),
        ("fp-it.fengkongcloud.com", "CN", "Shumei"),
        ("api-iam.intercom.io", "US", "Intercom"),
        ("js.intercomcdn.com", "US", "Intercom"),
        ("oss-cn-hangzhou.aliyuncs.com", "CN", "Alibaba Cloud"),
        ("plbslog.umeng.com", "CN", "Umeng"),
        ("sdk.open.talk.igexin.com", "CN", "Getui"),
        ("ulogs.umengcloud.com", "CN", "Umeng"),
        ("www.sina.com.cn", "CN", "Sina"),  # multi-part public suffix
        ("firebase-settings.crashlytics.com", "US", "Google"),
        ("graph.facebook.com", "US", "Meta"),
        ("launches.appsflyer.com", "IL", "AppsFlyer"),
        ("app.adjust.com", "DE", "Adjust"),
        ("o123.ingest.sentry.io", "US", "Sentry"),
        ("apis.naver.com", "KR", "NAVER"),
    ],
)
def test_operator_lookup(locator, host, operator_country, name_part):
    entry = locator.operators.lookup(host)
    assert entry is not None, host
    assert entry.operator.country == operator_country
    assert name_part in entry.operator.name
    assert entry.operator.source.startswith("https://")


@pytest.mark.parametrize(
    "host, category",
    [
        ("bugly.qq.com", "crash"),  # sub-domain entry beats qq.com
        ("android.bugly.qq.com", "crash"),
        ("mp.weixin.qq.com", "social"),
        ("www.qq.com", "social"),
        ("hm.baidu.com", "analytics"),
        ("www.baidu.com", "other"),
    ],
)
def test_most_specific_entry_wins(locator, host, category):
    assert locator.operators.lookup(host).category == category


@pytest.mark.parametrize("host", ["example.com", "deepseek.com.evil.example", "notdeepseek.com", "com.cn", "10.0.0.1"])
def test_unknown_hosts_have_no_operator(locator, host):
    assert locator.operators.lookup(host) is None


# -- combining evidence --------------------------------------------------------------

def test_chinese_operator_behind_us_address_lists_both(locator):
    info = locator.describe("chat.deepseek.com", ["8.8.8.8"])
    assert isinstance(info, EndpointInfo)
    assert info.hosting_country == "US"
    assert info.operator.country == "CN"
    assert info.jurisdictions == ("CN", "US")
    assert info.confidence == "medium"
    assert any(r.startswith("conflict") for r in info.confidence_reasons)
    kinds = {e.kind for e in info.evidence}
    assert {"rir", "entity"} <= kinds


def test_address_and_operator_agree_is_high(locator):
    info = locator.describe("gator.volces.com", ["101.126.0.10"])
    assert info.hosting_country == "CN"
    assert info.jurisdictions == ("CN",)
    assert info.confidence == "high"


def test_parent_company_country_counts(locator):
    info = locator.describe("app.adjust.com", ["8.8.8.8"])
    assert info.operator.parent_country == "US"
    assert info.jurisdictions == ("DE", "US")
    assert any(e.kind == "entity" and e.country == "US" and "parent" in e.detail for e in info.evidence)

    tiktok = locator.describe("api16-normal-c.tiktokv.com", [])
    assert tiktok.jurisdictions == ("CN", "SG")


@pytest.mark.parametrize(
    "ips, operator, confidence",
    [
        (["114.114.114.114"], None, "medium"),  # registry only
        (["127.0.0.1"], "DeepSeek", "medium"),  # operator map only
        (["127.0.0.1"], None, "low"),  # nothing
    ],
)
def test_confidence_levels(locator, ips, operator, confidence):
    host = "api.deepseek.com" if operator else "unknown-host.example"
    info = locator.describe(host, ips)
    assert info.confidence == confidence
    assert info.confidence_reasons


def test_several_addresses_in_several_countries(locator):
    info = locator.describe("api.example.org", ["8.8.8.8", "114.114.114.114", "8.8.4.4"])
    assert info.hosting_country == "US"  # most addresses
    assert info.jurisdictions == ("CN", "US")
    assert any("several countries" in r for r in info.confidence_reasons)


def test_cname_operator_counts(locator):
    info = locator.describe("api.example.com", ["127.0.0.1"], cnames=["api.example.com.volcgslb.com."])
    assert info.operator is None  # the CNAME target hosts; it does not run the service
    assert info.jurisdictions == ("CN",)
    cname = [e for e in info.evidence if e.kind == "cname"]
    assert cname and cname[0].country == "CN" and "volcgslb.com" in cname[0].detail


def test_unknown_cname_is_recorded_without_country(locator):
    info = locator.describe("api.example.com", [], cnames=["edge.unknown-cdn.example"])
    assert [e.country for e in info.evidence if e.kind == "cname"] == [None]
    assert info.jurisdictions == ()


@pytest.mark.parametrize(
    "cert, jurisdictions, operator_part",
    [
        (CertInfo(subject_o="Beijing Volcano Engine Technology Co., Ltd.", subject_c="CN"), ("CN",), "Volcano"),
        (CertInfo(subject_o="Example Org", subject_c="KR"), ("KR",), None),
        (CertInfo(subject_cn="*.ishumei.com", sans=("*.ishumei.com", "ishumei.com", "*.fengkongcloud.com")), ("CN",), "Shumei"),
        # A certificate shared by several parties names none of them.
        (CertInfo(subject_cn="shared", sans=("a.deepseek.com", "api-iam.intercom.io")), (), None),
        (CertInfo(subject_cn="shared", sans=("x.ishumei.com", "www.unknown.example")), (), None),
        (CertInfo(subject_o="Some Org", subject_c="XX"), (), None),  # not a country code
        (CertInfo(subject_cn="api.example.com"), (), None),  # DV certificate: nothing
    ],
)
def test_certificate_evidence(locator, cert, jurisdictions, operator_part):
    info = locator.describe("api.example.com", ["127.0.0.1"], cert=cert)
    assert info.jurisdictions == jurisdictions
    if operator_part:
        assert operator_part in info.operator.name
    else:
        assert info.operator is None
    if cert.subject_o:
        assert any(e.kind == "tls" and cert.subject_o in e.detail for e in info.evidence)
    else:
        assert any(e.kind == "tls" and "domain-validated" in e.detail for e in info.evidence)


@pytest.mark.parametrize(
    "host, tld, country",
    [
        ("api.example.cn", "cn", "CN"),
        ("www.example.co.kr", "kr", "KR"),
        ("www.example.co.uk", "uk", "GB"),
        ("example.xn--fiqs8s", "xn--fiqs8s", "CN"),
        ("api.example.com", "com", None),
        ("api-iam.intercom.io", "io", None),  # .io is used as generic
        ("claude.ai", "ai", None),
    ],
)
def test_tld_country(host, tld, country):
    assert tld_country(host) == (tld, country)


def test_tld_is_evidence_but_not_a_jurisdiction(locator):
    info = locator.describe("cdn.example-chatapp.kr", ["127.0.0.1"])
    assert [(e.kind, e.country) for e in info.evidence if e.kind == "tld"] == [("tld", "KR")]
    assert info.jurisdictions == ()
    assert info.confidence == "low"


@pytest.mark.parametrize(
    "name, hints",
    [
        ("iam.cn-north-4.myhuaweicloud.com", [("cn-north-4", "CN")]),
        ("oss-cn-beijing.aliyuncs.com", [("cn-beijing", "CN")]),
        ("oss-cn-hongkong.aliyuncs.com", [("cn-hongkong", "HK")]),
        ("bucket.cos.ap-guangzhou.myqcloud.com", [("ap-guangzhou", "CN")]),
        ("s3.ap-southeast-1.amazonaws.com", [("ap-southeast-1", "SG")]),
        ("s3.ap-northeast-2.amazonaws.com", [("ap-northeast-2", "KR")]),
        ("s3.eu-west-1.amazonaws.com", [("eu-west-1", None)]),
        ("europe-west1-run.example", [("europe-west1", None)]),
        ("chat.deepseek.com", []),
        ("docs.cn-examples.com", []),
    ],
)
def test_region_hints(name, hints):
    assert region_hints(name) == hints


def test_region_hint_is_marked_as_hint(locator):
    info = locator.describe("iam.cn-north-4.myhuaweicloud.com", [])
    region = [e for e in info.evidence if e.kind == "region"]
    assert region and region[0].country == "CN" and region[0].detail.startswith("hint only")


# -- demo addresses --------------------------------------------------------------

DEMO_HOSTS = {
    "chat.deepseek.com": "CN",
    "api.deepseek.com": "CN",
    "update.deepseek.com": "CN",
    "gator.volces.com": "CN",
    "fp-it.fengkongcloud.com": "CN",
    "api-iam.intercom.io": "US",
}


def test_demo_table_covers_the_demo_hosts():
    assert set(DEMO_ADDRESSES) == set(DEMO_HOSTS)


@pytest.mark.parametrize("host, country", sorted(DEMO_HOSTS.items()))
def test_demo_addresses_are_public_and_in_the_right_country(host, country):
    addr = parse_ip(DEMO_ADDRESSES[host])
    assert non_public_reason(addr) is None
    assert registry_country(addr) == country


@pytest.mark.parametrize("host, country", sorted(DEMO_HOSTS.items()))
def test_demo_locator_uses_demo_address_and_says_so(host, country):
    info = Locator(demo_addresses=DEMO_ADDRESSES).describe(host, ["127.0.0.1"])
    assert info.ips == (DEMO_ADDRESSES[host],)
    assert info.hosting_country == country
    demo = [e for e in info.evidence if e.kind == "demo"]
    assert len(demo) == 1 and "demo-only" in demo[0].detail and "127.0.0.1" in demo[0].detail
    assert any(r.startswith("demo") for r in info.confidence_reasons)
    assert country in info.jurisdictions


def test_without_demo_table_loopback_stays_countryless(locator):
    info = locator.describe("chat.deepseek.com", ["127.0.0.1"])
    assert info.ips == ("127.0.0.1",)
    assert info.hosting_country is None
    assert not any(e.kind == "demo" for e in info.evidence)


def test_hosts_outside_demo_table_are_not_substituted():
    info = Locator(demo_addresses=DEMO_ADDRESSES).describe("other.example.com", ["127.0.0.1"])
    assert info.ips == ("127.0.0.1",)
    assert not any(e.kind == "demo" for e in info.evidence)


def test_evidence_serialises(locator):
    info = locator.describe("chat.deepseek.com", ["8.8.8.8"], cnames=["x.volcgslb.com"])
    for e in info.evidence:
        assert set(e.to_json()) == {"kind", "detail", "country"}


def test_certificate_naming_the_hosts_own_operator_adds_no_second_party(locator):
    cert = CertInfo(subject_o="Intercom, Inc.", subject_c="US", sans=("*.intercomcdn.com",))
    info = locator.describe("js.intercomcdn.com", ["3.5.140.2"], cert=cert)
    assert info.jurisdictions == ("US",)
    assert [e.kind for e in info.evidence].count("tls") == 1
    assert info.confidence == "high"
