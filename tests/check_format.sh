#!/usr/bin/env bash
# The repo's .clang-format is the authority: every C source and header must already be
# formatted. Prints the files that are not, and fails if any.
set -u
cd "$(dirname "$0")/.."
status=0
while IFS= read -r file; do
  if ! clang-format --dry-run -Werror "$file" >/dev/null 2>&1; then
    echo "not clang-formatted: $file (run: clang-format -i $file)"
    status=1
  fi
done < <(find proto broker worker gateway clients cli tests bench examples -name '*.[ch]' 2>/dev/null | sort)
[ $status -eq 0 ] && echo "format: every C file is clang-formatted"
exit $status
