#!/usr/bin/env python3
"""Check docs/craft.bundle.v1.schema.json against example manifests with the `jsonschema` package.

Run by hand (make test never runs Python):

    python3 -m venv /tmp/venv-schema && /tmp/venv-schema/bin/pip install jsonschema
    /tmp/venv-schema/bin/python scripts/check_bundle_schema.py

It validates the example manifests in Tests/CraftBundlesTests/Fixtures/manifest-*.json (which the
Swift tests also decode and validate with BundleManifest.validate()), and checks that the schema
rejects a list of broken variants, each named by the field it breaks. Exit status 0 when all agree.
Last run: jsonschema 4.26.0, Python 3 (see Tests/CraftBundlesTests/Fixtures/README.md).
"""
import copy
import json
import pathlib
import sys

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "craft.bundle.v1.schema.json").read_text())
FIXTURES = ROOT / "Tests" / "CraftBundlesTests" / "Fixtures"


def validator():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def broken_variants(manifest):
    """(field, mutated manifest) pairs the schema must reject."""
    def edit(field, change):
        copy_ = copy.deepcopy(manifest)
        change(copy_)
        return field, copy_

    yield edit("schema", lambda m: m.__setitem__("schema", "craft.bundle/v2"))
    yield edit("kind", lambda m: m.__setitem__("kind", "tokenizer"))
    yield edit("name", lambda m: m.__setitem__("name", "Derm Encoder"))
    yield edit("name", lambda m: m.__setitem__("name", "a" * 65))
    yield edit("version", lambda m: m.__setitem__("version", "1.2"))
    yield edit("version", lambda m: m.__setitem__("version", "01.2.3"))
    yield edit("license", lambda m: m.pop("license"))
    yield edit("runtime.id", lambda m: m["runtime"].__setitem__("id", "-bad"))
    yield edit("codebook.hash", lambda m: m["codebook"].__setitem__("hash", "md5:abc"))
    yield edit("codebook.metric", lambda m: m["codebook"].__setitem__("metric", "manhattan"))
    yield edit("codebook.entries", lambda m: m["codebook"].__setitem__("entries", 0))
    yield edit("files[0].sha256", lambda m: m["files"][0].__setitem__("sha256", "A" * 64))
    yield edit("files[0].path", lambda m: m["files"][0].__setitem__("path", "../escape"))
    yield edit("files[0].path", lambda m: m["files"][0].__setitem__("path", "/abs"))
    yield edit("files[0].path", lambda m: m["files"][0].__setitem__("path", "craft.json"))
    yield edit("files[0].size", lambda m: m["files"][0].__setitem__("size", -1))
    yield edit("config", lambda m: m.__setitem__("config", [1, 2]))
    if manifest["kind"] == "encoder":
        yield edit("encoder", lambda m: m.pop("encoder"))
        yield edit("codebook.tensor", lambda m: m["codebook"].pop("tensor"))
        yield edit("encoder.tokens_per_image", lambda m: m["encoder"].__setitem__("tokens_per_image", 0))
        yield edit("backend", lambda m: m.__setitem__("backend", {"context_length": 8}))
    else:
        yield edit("backend", lambda m: m.pop("backend"))
        yield edit("backend.context_length", lambda m: m["backend"].__setitem__("context_length", 0))


def main():
    check = validator()
    failures = 0
    paths = sorted(FIXTURES.glob("manifest-*.json"))
    if not paths:
        print("no example manifests found", file=sys.stderr)
        return 1
    for path in paths:
        manifest = json.loads(path.read_text())
        errors = list(check.iter_errors(manifest))
        if errors:
            failures += 1
            for error in errors:
                print(f"FAIL {path.name}: valid example rejected at {list(error.absolute_path)}: {error.message}")
        else:
            print(f"ok   {path.name}: valid")
        for field, variant in broken_variants(manifest):
            if check.is_valid(variant):
                failures += 1
                print(f"FAIL {path.name}: broken {field} accepted")
            else:
                print(f"ok   {path.name}: broken {field} rejected")
    print("all checks passed" if failures == 0 else f"{failures} checks failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
