"""The operator map: the shipped data's sanity, and errors for bad files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from privaudit.errors import RuleError
from privaudit.jurisdiction import Locator, registrable_domain
from privaudit.jurisdiction.countries import is_country
from privaudit.jurisdiction.operators import OperatorMap, load_operator_file, shipped_operator_files

#: What the shipped map holds today (registrable domains, not counting
#: sub-domain entries such as bugly.qq.com). The target was >= 150.
MIN_REGISTRABLE_DOMAINS = 300


@pytest.fixture(scope="module")
def shipped() -> OperatorMap:
    return OperatorMap([shipped_operator_files()])


def test_shipped_map_size(shipped):
    registrable = {e.domain for e in shipped.entries() if registrable_domain(e.domain) == e.domain}
    assert len(registrable) >= MIN_REGISTRABLE_DOMAINS


def test_every_entry_is_sourced_and_valid(shipped):
    for e in shipped.entries():
        op = e.operator
        assert op.source and op.source.startswith("https://"), e.origin
        assert is_country(op.country), e.origin
        assert op.parent_country is None or is_country(op.parent_country), e.origin
        assert (op.parent_country is None) or op.parent, e.origin
        assert registrable_domain(e.domain) is not None, e.origin
        assert e.domain == e.domain.lower()


def test_no_domain_listed_twice_across_files():
    seen: dict[str, str] = {}
    for path in shipped_operator_files():
        for e in load_operator_file(path):
            assert e.domain not in seen, f"{e.origin} repeats {seen.get(e.domain)}"
            seen[e.domain] = e.origin


@pytest.mark.parametrize(
    "domain, country",
    [
        # The DeepSeek case recipients.
        ("deepseek.com", "CN"), ("volces.com", "CN"), ("volcengine.com", "CN"),
        ("bytedance.com", "CN"), ("byteimg.com", "CN"), ("bytedance.net", "CN"),
        ("ibytedtos.com", "CN"), ("snssdk.com", "CN"), ("byteoversea.com", "CN"),
        ("ishumei.com", "CN"), ("fengkongcloud.com", "CN"),
        ("intercom.io", "US"), ("intercomcdn.com", "US"),
        # Chinese cloud / CDN / analytics / push / ads.
        ("aliyun.com", "CN"), ("alicdn.com", "CN"), ("aliyuncs.com", "CN"), ("alibabacloud.com", "CN"),
        ("umeng.com", "CN"), ("mmstat.com", "CN"), ("taobao.com", "CN"), ("alipay.com", "CN"),
        ("qq.com", "CN"), ("tencent.com", "CN"), ("tencent-cloud.net", "CN"), ("myqcloud.com", "CN"),
        ("gtimg.com", "CN"), ("wechat.com", "CN"), ("baidu.com", "CN"), ("bdstatic.com", "CN"),
        ("bcebos.com", "CN"), ("huaweicloud.com", "CN"), ("hicloud.com", "CN"), ("dbankcloud.com", "CN"),
        ("xiaomi.com", "CN"), ("mi.com", "CN"), ("miui.com", "CN"), ("igexin.com", "CN"), ("getui.com", "CN"),
        ("jpush.cn", "CN"), ("jiguang.cn", "CN"), ("pangle.io", "CN"), ("pangolin-sdk-toutiao.com", "CN"),
        ("kuaishou.com", "CN"), ("sensorsdata.cn", "CN"), ("growingio.com", "CN"), ("talkingdata.com", "CN"),
        ("qiniu.com", "CN"), ("qbox.me", "CN"), ("wangsu.com", "CN"), ("ksyun.com", "CN"),
        # Western.
        ("firebaseio.com", "US"), ("crashlytics.com", "US"), ("admob.com", "US"), ("doubleclick.net", "US"),
        ("facebook.com", "US"), ("amazonaws.com", "US"), ("cloudfront.net", "US"), ("azure.com", "US"),
        ("cloudflare.com", "US"), ("akamaiedge.net", "US"), ("fastly.net", "US"), ("appsflyer.com", "IL"),
        ("adjust.com", "DE"), ("branch.io", "US"), ("sentry.io", "US"), ("mixpanel.com", "US"),
        ("amplitude.com", "US"), ("segment.io", "US"), ("onesignal.com", "US"), ("datadoghq.com", "US"),
        ("bugsnag.com", "US"), ("braze.com", "US"), ("apple.com", "US"),
    ],
)
def test_required_seed_domains(shipped, domain, country):
    entry = shipped.lookup(domain)
    assert entry is not None and entry.domain == domain
    assert entry.operator.country == country


# -- bad files -------------------------------------------------------------------

GOOD = """\
operators:
  - name: Example Analytics Ltd.
    country: KR
    category: analytics
    source: https://example.com/about
    domains:
      - example-analytics.co.kr
      - {domain: cdn.example-analytics.co.kr, category: cdn}
"""


def _write(tmp_path: Path, text: str, name: str = "ops.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_good_user_file_loads_and_overrides_shipped(tmp_path):
    path = _write(tmp_path, GOOD + """\
  - name: Someone Else
    country: JP
    category: other
    source: https://example.org/owner
    domains: [deepseek.com]
""")
    locator = Locator(operator_files=[tmp_path])
    assert locator.operators.lookup("x.example-analytics.co.kr").operator.name == "Example Analytics Ltd."
    assert locator.operators.lookup("cdn.example-analytics.co.kr").category == "cdn"
    assert locator.operators.lookup("chat.deepseek.com").operator.country == "JP"
    assert str(path) in locator.operators.lookup("deepseek.com").origin


@pytest.mark.parametrize(
    "text, line, message",
    [
        (GOOD.replace("country: KR", "country: Korea"), 3, "country"),
        (GOOD.replace("country: KR", "country: XX"), 3, "not an ISO 3166-1"),
        (GOOD.replace("country: KR", "country: NO\n    parent_country: NO"), 4, "parent_country given without parent"),
        (GOOD.replace("    source: https://example.com/about\n", ""), 2, "'source' is a required property"),
        (GOOD.replace("https://example.com/about", "example.com/about"), 5, "source"),
        (GOOD.replace("category: analytics", "category: spyware"), 4, "category"),
        (GOOD.replace("- example-analytics.co.kr", "- Example Analytics.co.kr"), 7, "domains/0"),
        (GOOD.replace("- example-analytics.co.kr", "- co.kr"), 7, "public suffix"),
        (GOOD.replace("category: cdn}", "category: cdn, owner: x}"), 8, "domains/1"),
        (GOOD.replace("    category: analytics\n", "    category: analytics\n    colour: red\n"), 2, "colour"),
        (GOOD + "  - name: Dup\n    country: US\n    category: cdn\n    source: https://a.example/\n"
                "    domains: [example-analytics.co.kr]\n", 13, "already listed at"),
        (GOOD.replace("    country: KR\n", "    country: KR\n    country: US\n"), 4, "duplicate key 'country'"),
        (GOOD.replace("  - name: Example", "  - name: [Example"), 3, "invalid YAML"),
        ("operators: {}\n", 1, "operators"),
        ("- just a list\n", 1, "(top level)"),
    ],
)
def test_malformed_operator_file_names_file_and_line(tmp_path, text, line, message):
    path = _write(tmp_path, text)
    with pytest.raises(RuleError) as info:
        Locator(operator_files=[path])
    text_of_error = str(info.value)
    assert text_of_error.startswith(f"{path}:{line}"), text_of_error
    assert message in text_of_error


def test_schema_errors_show_an_example(tmp_path):
    path = _write(tmp_path, GOOD.replace("country: KR", "country: Korea"))
    with pytest.raises(RuleError, match="an operator entry looks like"):
        Locator(operator_files=[path])


def test_missing_operator_file_is_rule_error(tmp_path):
    with pytest.raises(RuleError, match="missing.yaml"):
        Locator(operator_files=[tmp_path / "missing.yaml"])


def test_check_data_files_on_shipped_data_is_clean():
    from privaudit.jurisdiction import check_data_files
    from privaudit.resources import rules_dir

    assert check_data_files(rules_dir()) == []


def test_check_data_files_reports_each_bad_file(tmp_path):
    from privaudit.jurisdiction import check_data_files

    (tmp_path / "operators").mkdir()
    (tmp_path / "jurisdictions").mkdir()
    _write(tmp_path / "operators", GOOD, "good.yaml")
    _write(tmp_path / "operators", GOOD, "repeat.yaml")
    _write(tmp_path / "operators", GOOD.replace("country: KR", "country: XX"), "bad.yaml")
    (tmp_path / "jurisdictions" / "bad.yaml").write_text("id: KR\n")
    errors = check_data_files(tmp_path)
    assert len(errors) == 3  # bad country; good+repeat list a domain twice; incomplete note
    assert any("bad.yaml:3" in e and "ISO 3166-1" in e for e in errors)
    assert any("already listed at" in e for e in errors)
    assert any("jurisdictions/bad.yaml:1" in e for e in errors)


# -- operator files beside the user's detection rules ------------------------------

def test_user_operator_files_found_in_rules_folders(tmp_path):
    from privaudit.jurisdiction import user_operator_files

    one, two, plain = tmp_path / "one", tmp_path / "two", tmp_path / "plain"
    (one / "operators").mkdir(parents=True)
    (one / "detect").mkdir()
    (two / "operators").mkdir(parents=True)
    plain.mkdir()
    _write(one / "operators", GOOD, "a.yaml")
    _write(one / "operators", "not: used\n", "notes.txt")
    _write(two / "operators", GOOD.replace("example-analytics.co.kr", "other-analytics.co.kr"), "b.yml")
    _write(plain, GOOD, "detect-rule.yaml")  # a rules folder without operators/ gives nothing
    files = user_operator_files([one, plain, two, tmp_path / "missing"])
    assert files == [one / "operators" / "a.yaml", two / "operators" / "b.yml"]
    locator = Locator(operator_files=files)
    assert locator.operators.lookup("x.example-analytics.co.kr").operator.name == "Example Analytics Ltd."
    assert locator.operators.lookup("x.other-analytics.co.kr").origin.startswith(str(two))
    assert locator.describe("t.example-analytics.co.kr", []).operator.country == "KR"


def test_same_domain_in_two_user_folders_is_rule_error(tmp_path):
    from privaudit.jurisdiction import user_operator_files

    for d in ("one", "two"):
        (tmp_path / d / "operators").mkdir(parents=True)
        _write(tmp_path / d / "operators", GOOD, "ops.yaml")
    with pytest.raises(RuleError, match="already listed at"):
        Locator(operator_files=user_operator_files([tmp_path / "one", tmp_path / "two"]))
