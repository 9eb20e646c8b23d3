#!/usr/bin/env bash
# Print the path of a Python interpreter of version $1 (e.g. 3.10), for `make test-py310`:
# python3.10 on PATH if it runs (a pyenv shim may not), else the newest pyenv build of it.
# Without one, print one line saying so and how to get one, and exit 1.
set -uo pipefail
version="${1:?usage: find_python.sh 3.X}"
root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
check="import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))"
candidates=("$(command -v "python$version" 2>/dev/null)")
while IFS= read -r found; do
    candidates+=("$found")
done < <(ls -d "$root/versions/$version".*/bin/"python$version" 2>/dev/null | sort -rV)
for python in "${candidates[@]}"; do
    if [ -n "$python" ] && "$python" -c "$check" >/dev/null 2>&1; then
        "$python" -c 'import sys; print(sys.executable)'
        exit 0
    fi
done
echo "error: no Python $version found (python$version on PATH, $root/versions/$version.*):" \
    "install one with 'pyenv install $version' or put python$version on PATH" >&2
exit 1
