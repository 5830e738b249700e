#!/usr/bin/env python3
"""Builds schemas.json from the Ethereum execution-apis OpenRPC sources.

Usage: build_schemas.py EXECUTION_APIS_CHECKOUT [COMMIT]

Reads src/{eth,debug,txpool}/*.yaml (methods) and src/schemas/*.yaml (components) and writes
schemas.json beside this script: {"source", "commit", "components": {"schemas": ...},
"methods": {name: result schema}}. The Rust test tests/tests/openrpc.rs validates live results
against it (validate.py). Regenerate when updating to a newer execution-apis.
"""
import glob
import json
import os
import sys

import yaml

root = sys.argv[1]
commit = sys.argv[2] if len(sys.argv) > 2 else "unknown"
components = {}
for path in sorted(glob.glob(os.path.join(root, "src/schemas/*.yaml"))):
    with open(path) as f:
        components.update(yaml.safe_load(f) or {})
methods = {}
for namespace in ("eth", "debug", "txpool"):
    for path in sorted(glob.glob(os.path.join(root, "src", namespace, "*.yaml"))):
        with open(path) as f:
            for method in yaml.safe_load(f) or []:
                if "result" in method:
                    methods[method["name"]] = method["result"]["schema"]
out = {
    "source": "https://github.com/ethereum/execution-apis",
    "commit": commit,
    "components": {"schemas": components},
    "methods": dict(sorted(methods.items())),
}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas.json"), "w") as f:
    json.dump(out, f, indent=1, sort_keys=False)
    f.write("\n")
print(f"{len(methods)} methods, {len(components)} component schemas")
