"""Country codes: the ISO 3166-1 alpha-2 list and ccTLD -> country.

The list is the officially assigned alpha-2 codes as published by the ISO 3166
Maintenance Agency (https://www.iso.org/iso-3166-country-codes.html); kept as
data here rather than adding a dependency for 249 strings.
"""

from __future__ import annotations

ISO_ALPHA2: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL
    BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV
    CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD
    GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM
    IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK
    LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW
    MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR
    PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS
    ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY
    UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()
)

#: ccTLDs that differ from the country's alpha-2 code.
#: Internationalised ccTLDs are in their punycode form, as host names arrive.
_CCTLD_EXCEPTIONS = {
    "uk": "GB",
    "xn--fiqs8s": "CN",  # .中国
    "xn--fiqz9s": "CN",  # .中國
    "xn--3e0b707e": "KR",  # .한국
    "xn--j6w193g": "HK",  # .香港
    "xn--kprw13d": "TW",  # .台湾
    "xn--kpry57d": "TW",  # .台灣
    "xn--p1ai": "RU",  # .рф
    "xn--h2brj9c": "IN",  # .भारत
    "xn--yfro4i67o": "SG",  # .新加坡
    "xn--mgbaam7a8h": "AE",  # .امارات
}

#: ccTLDs marketed and used worldwide as if generic, so they say nothing about
#: where a service is. Google's list of "generic ccTLDs" it does not geotarget
#: (https://developers.google.com/search/docs/specialty/international/managing-multi-regional-sites)
#: plus the vanity ccTLDs common among app and SDK vendors (.ai, .gg, .ly, ...).
GENERIC_CCTLDS: frozenset[str] = frozenset(
    "ad as bz cc cd co dj fm io la me ms nu sc sr su tv tk ws "
    "ai gg ly to sh ac st vc cx im".split()
)


def is_country(code: object) -> bool:
    return isinstance(code, str) and code in ISO_ALPHA2


def country_of_tld(tld: str) -> str | None:
    """The country a country-code TLD belongs to, or None (gTLDs, vanity ccTLDs)."""
    tld = tld.lower().rstrip(".")
    if tld in _CCTLD_EXCEPTIONS:
        return _CCTLD_EXCEPTIONS[tld]
    if len(tld) != 2 or tld in GENERIC_CCTLDS:
        return None
    code = tld.upper()
    return code if code in ISO_ALPHA2 else None
