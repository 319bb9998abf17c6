"""Validate JSON Lines files against a JSON Schema (tests/eve.rs).

usage: validate_eve.py SCHEMA FILE...

Prints one line per invalid event (file, line, where, why; at most 50),
then `checked N events, M invalid`. Exit 0 when all are valid.
"""
import json
import sys

import jsonschema


def main():
    schema_path, files = sys.argv[1], sys.argv[2:]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    validator = cls(schema)
    checked = invalid = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                checked += 1
                errors = list(validator.iter_errors(json.loads(line)))
                if errors:
                    invalid += 1
                    if invalid <= 50:
                        e = errors[0]
                        print(f"{path}:{number}: {e.json_path}: {e.message[:300]}")
    print(f"checked {checked} events, {invalid} invalid")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
