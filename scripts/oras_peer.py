#!/usr/bin/env python3
"""The official ORAS Python client (oras-py, from PyPI into .build/peers-venv) as the OCI tests' peer.

    oras_peer.py pull HOST:PORT/REPOSITORY:TAG OUTDIR   # prints the files pulled, as JSON
    oras_peer.py push HOST:PORT/REPOSITORY:TAG FILE     # pushes FILE as a plain (non-Craft) artifact

Plain HTTP (the tests' registry listens on 127.0.0.1).
"""
import json
import os
import sys

import oras.client


def main():
    command, target, path = sys.argv[1:4]
    client = oras.client.OrasClient(insecure=True)
    if command == "pull":
        files = client.pull(target=target, outdir=path)
        print(json.dumps(sorted(os.path.relpath(f, path) for f in files)))
    elif command == "push":
        os.chdir(os.path.dirname(os.path.abspath(path)))
        response = client.push(target=target, files=[os.path.basename(path)])
        print(json.dumps({"status": response.status_code}))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
