"""Stand-in public addresses for ``privaudit demo`` — and for nothing else.

The demo's imitation servers run on loopback, and a loopback address has no
country, so the demo would say nothing about jurisdiction. The demo therefore
tells the :class:`~privaudit.jurisdiction.Locator` to look these addresses up
instead of the captured ones, and every endpoint described this way carries
``demo`` evidence saying so.

Nothing outside the demo may use this table: a real audit takes the address
the app actually contacted from the capture, never an address from here.

The addresses are real public addresses that the embedded registry data
(``iptocc``) lists for the country named in the comment; they were chosen by
their registry country only and are not claimed to belong to the services the
host names imitate.
"""

from __future__ import annotations

DEMO_ADDRESSES: dict[str, str] = {
    # registry country CN (APNIC, China block)
    "chat.deepseek.com": "223.5.5.5",
    "api.deepseek.com": "223.5.5.5",
    "update.deepseek.com": "223.5.5.5",
    "gator.volces.com": "101.126.0.10",
    "fp-it.fengkongcloud.com": "114.114.114.114",
    # registry country US (ARIN)
    "api-iam.intercom.io": "3.5.140.2",
}
