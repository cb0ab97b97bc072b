#!/usr/bin/env bash
# Installs the Debian packages privaudit's tests and PDF reports need, if missing:
#   chromium           real headless browser that opens the HTML report in tests
#   poppler-utils      pdftoppm/pdftotext, to turn PDF reports into PNG pages and text
#   libpango-1.0-0 libpangoft2-1.0-0   WeasyPrint's text layout (PDF reports)
#   fonts-nanum        NanumGothic, the PDF's Korean font (single faces of 4.7 MB:
#                      ~200 MB less memory than laying out in Noto CJK)
#   fonts-noto-cjk     Chinese and rarer Han glyphs in PDF reports (fallback)
#   dnsmasq-base       a real DNS server on loopback for the DNS-evidence tests
#   wrk                the HTTP load generator of the live-overhead benchmark
#   gcc                compiles the optional C reader of flow records at install
#                      (the Python headers come with the interpreter)
# Needs root (or sudo). Does nothing for packages already installed.
set -euo pipefail
PKGS=(chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 fonts-nanum fonts-noto-cjk dnsmasq-base wrk gcc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "system-deps: need root to install: ${missing[*]}" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
