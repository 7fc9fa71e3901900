#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, builds examples/custom-executor
# and examples/embed out of tree with find_package(docflow), and runs them
# through the installed `flow` as a user would.
set -euo pipefail
BUILD_DIR=$(cd "$1" && pwd)
SOURCE_DIR=$(cd "$2" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" > /dev/null
LAUNCHER=""
command -v ccache > /dev/null && LAUNCHER="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"

cmake -S "$SOURCE_DIR/examples/custom-executor" -B "$WORK/plugin" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$WORK/prefix" $LAUNCHER > /dev/null
cmake --build "$WORK/plugin" > /dev/null
test -f "$WORK/plugin/docflow_plugin_upper_case.so"

printf '%s\n' '{"id": "a", "text": "a red dress", "chunks": [{"text": "red"}]}' '{"id": "b", "text": "boots"}' \
  '{"id": "c", "text": "mixed Case"}' > "$WORK/in.jsonl"
cd "$WORK"
INPUT="$WORK/in.jsonl" OUTPUT="$WORK/out.jsonl" DOCFLOW_PLUGIN_PATH="$WORK/plugin" \
  "$WORK/prefix/bin/flow" run "$SOURCE_DIR/examples/custom-executor/flow.yml" --name example
grep -q '"text":"A RED DRESS"' out.jsonl
grep -q '"text":"RED"' out.jsonl          # the chunk, through @r,c
grep -q '"text":"MIXED CASE"' out.jsonl
grep -q '"upper_cased_by":"upper"' out.jsonl
"$WORK/prefix/bin/flow" plugins --plugin-path "$WORK/plugin" | grep -q "upper-case  UpperCase"
# A command `flow` runs itself (no command library, no LibTorch) from the installed tree.
"$WORK/prefix/bin/flow" status example | grep -q "state:    FINISHED"

cmake -S "$SOURCE_DIR/examples/embed" -B "$WORK/embed" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$WORK/prefix" $LAUNCHER > /dev/null
cmake --build "$WORK/embed" > /dev/null
"$WORK/embed/embed" "$WORK/embedded.jsonl" | tee "$WORK/embed.txt"
grep -q "sync: 3 documents back" "$WORK/embed.txt"
grep -q "callback: posted with a callback #2" "$WORK/embed.txt"
test "$(wc -l < "$WORK/embedded.jsonl")" -eq 6
echo "out-of-tree plugin and embedding program: OK"
