"""Weak, name-based hints: country-code TLDs and cloud region names in host names.

Neither says where data goes (a ``.cn`` name can point at a server anywhere; a
region label is whatever the operator chose to call it), so both are recorded
as evidence but never decide ``jurisdictions`` on their own.
"""

from __future__ import annotations


from privaudit import rxcache
from privaudit.jurisdiction.countries import country_of_tld

# Region names as the large clouds spell them (AWS / Huawei Cloud
# "cn-north-4", Alibaba Cloud "cn-hangzhou", Tencent Cloud "ap-guangzhou",
# Google Cloud "asia-east1", Azure "koreacentral"), matched as whole labels or
# label parts between dots/hyphens.
_REGION_RE = rxcache.compile(
    r"(?<![a-z0-9])("
    r"(?:cn|ap|us|eu|me|sa|af|ca|il|mx|la)-(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-\d{1,2}"
    r"|cn-(?:beijing|shanghai|hangzhou|shenzhen|qingdao|zhangjiakou|huhehaote|wulanchabu|chengdu|guangzhou|heyuan|hongkong|nanjing|fuzhou|wuhan|xian|north|east|south)(?:-[a-z0-9]+)?"
    r"|ap-(?:beijing|shanghai|guangzhou|chengdu|chongqing|nanjing|hongkong|singapore|tokyo|seoul|bangkok|mumbai|jakarta|taipei|shenzhen-fsi|shanghai-fsi|beijing-fsi)"
    r"|(?:asia|europe|us|northamerica|southamerica|australia|me|africa)-(?:north|south|east|west|central|northeast|southeast|southwest|northwest)\d"
    r"|koreacentral|koreasouth|japaneast|japanwest|chinaeast2?|chinanorth[23]?|southeastasia|eastasia"
    r")(?![a-z0-9])"
)

#: Region name (or prefix) -> country. Regions not listed give a hint without a country.
_REGION_COUNTRY: list[tuple[str, str]] = [
    ("cn-hongkong", "HK"),
    ("ap-hongkong", "HK"),
    ("cn-", "CN"),
    ("ap-beijing", "CN"),
    ("ap-shanghai", "CN"),
    ("ap-guangzhou", "CN"),
    ("ap-chengdu", "CN"),
    ("ap-chongqing", "CN"),
    ("ap-nanjing", "CN"),
    ("ap-shenzhen", "CN"),
    ("chinaeast", "CN"),
    ("chinanorth", "CN"),
    ("ap-singapore", "SG"),
    ("ap-southeast-1", "SG"),
    ("asia-southeast1", "SG"),
    ("southeastasia", "SG"),
    ("ap-tokyo", "JP"),
    ("ap-northeast-1", "JP"),
    ("asia-northeast1", "JP"),
    ("japan", "JP"),
    ("ap-seoul", "KR"),
    ("ap-northeast-2", "KR"),
    ("asia-northeast3", "KR"),
    ("korea", "KR"),
    ("ap-mumbai", "IN"),
    ("ap-south-1", "IN"),
    ("ap-bangkok", "TH"),
    ("ap-jakarta", "ID"),
    ("ap-taipei", "TW"),
    ("asia-east1", "TW"),
    ("asia-east2", "HK"),
    ("eastasia", "HK"),
    ("us-", "US"),
    ("ca-", "CA"),
    ("il-", "IL"),
    ("mx-", "MX"),
]


def region_hints(name: str) -> list[tuple[str, str | None]]:
    """Cloud region names in ``name`` with the country each implies (or None)."""
    out: list[tuple[str, str | None]] = []
    for match in _REGION_RE.finditer(name.lower()):
        region = match.group(1)
        country = next((c for prefix, c in _REGION_COUNTRY if region.startswith(prefix)), None)
        out.append((region, country))
    return out


def tld_country(host: str) -> tuple[str, str | None] | None:
    """(tld, country) for a host under a country-code TLD; None for IP literals
    and single-label names."""
    host = host.rstrip(".").lower()
    if "." not in host or host.replace(".", "").isdigit() or ":" in host:
        return None
    tld = host.rsplit(".", 1)[1]
    return tld, country_of_tld(tld)
