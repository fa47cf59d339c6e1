#!/usr/bin/env python3
"""Talks to a running `craft serve` with the official openai Python client, as an integrator would.

Checks, against answers `craft run` gave on the same inputs (--expected, a JSON list of
{"image", "answer"}): a plain completion, a streamed one, Craft's extension (keep_ratio in, the
inference report out), errors as the client's typed exceptions, then --clients concurrent clients
sending --rounds requests each, every answer checked. Exits 1 on the first mismatch.
"""
import argparse
import asyncio
import base64
import json
import sys
import time

import openai


def data_url(path):
    kind = "image/jpeg" if path.lower().endswith((".jpg", ".jpeg")) else "image/png"
    with open(path, "rb") as handle:
        return f"data:{kind};base64,{base64.b64encode(handle.read()).decode()}"


def messages(path, prompt):
    return [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(path)}},
        {"type": "text", "text": prompt}]}]


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--expected", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with open(args.expected) as handle:
        expected = json.load(handle)

    client = openai.OpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=600)
    models = client.models.list().data
    if len(models) != 1:
        fail(f"expected one served model, got {[m.id for m in models]}")
    model = models[0].id
    print(f"model {model}")

    # Plain and streamed completions on every image (PNG and JPEG data URLs).
    for item in expected:
        reply = client.chat.completions.create(
            model=model, messages=messages(item["image"], args.prompt), max_tokens=args.max_tokens)
        answer = reply.choices[0].message.content
        if answer != item["answer"]:
            fail(f"{item['image']}: plain answer {answer!r}, craft run said {item['answer']!r}")
        if reply.usage.completion_tokens < 1 or reply.usage.prompt_tokens <= reply.usage.completion_tokens:
            fail(f"implausible usage {reply.usage}")
        report = reply.model_extra["craft"]
        if report["visual_tokens_after"] != report["visual_tokens_before"]:
            fail(f"keep ratio 1 pruned tokens: {report}")

        pieces = []
        usage = None
        for chunk in client.chat.completions.create(
                model=model, messages=messages(item["image"], args.prompt), max_tokens=args.max_tokens,
                stream=True, stream_options={"include_usage": True}):
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
        if "".join(pieces) != item["answer"]:
            fail(f"{item['image']}: streamed answer {''.join(pieces)!r}, craft run said {item['answer']!r}")
        if usage is None or usage.completion_tokens != reply.usage.completion_tokens:
            fail(f"streamed usage {usage} differs from {reply.usage}")
    print(f"plain and streamed: {len(expected)} images, answers equal craft run's")

    # Craft's extension: keep_ratio in extra_body, the report in the response.
    pruned = client.chat.completions.create(
        model=model, messages=messages(expected[0]["image"], args.prompt), max_tokens=args.max_tokens,
        extra_body={"craft": {"keep_ratio": 0.5}})
    report = pruned.model_extra["craft"]
    if not report["visual_tokens_after"] < report["visual_tokens_before"]:
        fail(f"keep_ratio 0.5 did not prune: {report}")
    print(f"keep_ratio 0.5: visual tokens {report['visual_tokens_before']} -> {report['visual_tokens_after']}")

    # Errors arrive as the client's typed exceptions.
    try:
        client.chat.completions.create(model="no-such-model", messages=messages(expected[0]["image"], args.prompt))
        fail("an unknown model was answered")
    except openai.NotFoundError as error:
        if error.body.get("code") != "model_not_found":
            fail(f"unknown model: {error.body}")
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "no image here"}])
        fail("a request without an image was answered")
    except openai.BadRequestError:
        pass
    print("errors: NotFoundError and BadRequestError as expected")

    # Many concurrent clients, every answer checked.
    async def run_clients():
        async_client = openai.AsyncOpenAI(base_url=args.base_url, api_key="unused", max_retries=0, timeout=600)
        wrong = []

        async def one_client(index):
            for round_ in range(args.rounds):
                item = expected[(index + round_) % len(expected)]
                stream = (index + round_) % 2 == 1
                if stream:
                    pieces = []
                    response = await async_client.chat.completions.create(
                        model=model, messages=messages(item["image"], args.prompt), max_tokens=args.max_tokens, stream=True)
                    async for chunk in response:
                        for choice in chunk.choices:
                            if choice.delta.content:
                                pieces.append(choice.delta.content)
                    answer = "".join(pieces)
                else:
                    reply = await async_client.chat.completions.create(
                        model=model, messages=messages(item["image"], args.prompt), max_tokens=args.max_tokens)
                    answer = reply.choices[0].message.content
                if answer != item["answer"]:
                    wrong.append((item["image"], answer, item["answer"]))

        start = time.monotonic()
        await asyncio.gather(*(one_client(index) for index in range(args.clients)))
        await async_client.close()
        return wrong, time.monotonic() - start

    wrong, seconds = asyncio.run(run_clients())
    total = args.clients * args.rounds
    if wrong:
        fail(f"{len(wrong)} of {total} concurrent answers differ from craft run's, first {wrong[0]}")
    print(f"concurrent: {args.clients} clients x {args.rounds} requests, {total} answers correct in {seconds:.1f} s")


if __name__ == "__main__":
    main()
