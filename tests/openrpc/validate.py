#!/usr/bin/env python3
"""Validates JSON-RPC results against the execution-apis result schemas (schemas.json).

Usage: validate.py RESULTS_JSON  where RESULTS_JSON is [{"method": ..., "result": ...}, ...].
Prints one line per failure and exits 1 when any result does not validate or a method has no
schema; prints {"ok": true, "validated": N} otherwise.
"""
import json
import os
import sys

import jsonschema

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "schemas.json")) as f:
    spec = json.load(f)
with open(sys.argv[1]) as f:
    results = json.load(f)
failures = []
for entry in results:
    method, result = entry["method"], entry["result"]
    schema = spec["methods"].get(method)
    if schema is None:
        failures.append(f"{method}: no result schema in execution-apis")
        continue
    document = dict(schema)
    document["components"] = spec["components"]
    validator = jsonschema.Draft7Validator(document)
    errors = sorted(validator.iter_errors(result), key=lambda e: list(e.path))
    for error in errors[:3]:
        failures.append(f"{method}: {error.message[:300]} at {list(error.absolute_path)}")
for line in failures:
    print(line)
if failures:
    sys.exit(1)
print(json.dumps({"ok": True, "validated": len(results)}))
