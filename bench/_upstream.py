"""A minimal OpenAI-compatible model for benchmarks: one fixed benign answer, no delay.

``python bench/_upstream.py --port P`` serves ``POST /v1/chat/completions`` on 127.0.0.1 with
uvicorn (one process, access log off). Every request gets the same realistic completion
(about 400 characters of cooking advice) in OpenAI's response shape, echoing the requested
model name, so a benchmark measures the HTTP path and not a model. ``GET /healthz`` answers
200 once the server listens. Streaming is not served (``bench/gateway.py`` does not use it).

With ``--unique`` each answer ends with its own reply number ("Reply 17."), so no two answers
are the same text: the safety stack's embedder keeps recent texts' embeddings, and a benchmark
that sent the same answer every time would time that cache instead of the output classifier.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ANSWER = (
    "For a weeknight risotto, warm the stock in a separate pan first so the rice never stops "
    "simmering. Toast the arborio in butter and a little olive oil for two minutes, add a splash "
    "of dry white wine, then ladle in the stock a cup at a time, stirring often. It takes about "
    "eighteen minutes. Finish off the heat with a knob of cold butter and grated parmesan, "
    "cover for two minutes, and season to taste before serving."
)

_ids = itertools.count(1)


async def chat_completions(request: Request) -> Response:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse(
            {"error": {"message": "invalid JSON", "type": "invalid_request_error"}},
            status_code=400,
        )
    if not isinstance(body, dict):
        body = {}
    model = body.get("model", "bench")
    prompt_chars = sum(
        len(m.get("content") or "") for m in body.get("messages", []) if isinstance(m, dict)
    )
    n = next(_ids)
    content = f"{ANSWER} Reply {n}." if request.app.state.unique else ANSWER
    return JSONResponse(
        {
            "id": f"chatcmpl-bench-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_chars // 4 + len(content) // 4,
            },
        }
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)
app.state.unique = False


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unique", action="store_true", help="end each answer with its number")
    args = parser.parse_args()
    app.state.unique = args.unique
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
