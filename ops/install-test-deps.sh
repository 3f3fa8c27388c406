#!/usr/bin/env bash
# System packages the tests need beyond the virtualenv: Prometheus and promtool (Debian's
# `prometheus` package gives /usr/bin/prometheus and /usr/bin/promtool), used by
# tests/unit/ops/test_prometheus_config.py and tests/integration/test_observability.py, and
# Chromium (headless, for tests/integration/test_html_rendering.py). The tests fail - never
# skip - without them. Idempotent: does nothing when all are present.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
        && command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "prometheus/promtool/chromium missing and no apt-get here: install Prometheus" \
         ">= 2.42 and Chromium so that they are on PATH" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus chromium
# Where systemd runs, the package also starts a system Prometheus on :9090; the tests do not
# use it: they start their own on a free port.
command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v chromium >/dev/null
