"""A loopback HTTP server that replays recorded wire-format responses, in order.

Each queued response is ``(status, fixture file)``; ``.sse`` fixtures are served as an event
stream. With ``respond`` set (a function of the JSON body returning ``(status, JSON text)``),
responses are computed from the request instead. Every request (path, headers, JSON body) is
kept for assertions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

WIRE = Path(__file__).resolve().parents[1] / "fixtures" / "wire"


def chat_completion(text: str) -> str:
    """An OpenAI chat-completion response body whose reply is ``text`` (100 / 20 tokens)."""
    return json.dumps(
        {
            "id": "chatcmpl-loop",
            "object": "chat.completion",
            "created": 0,
            "model": "local",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }
    )


class Replay:
    def __init__(self) -> None:
        self.queue: list[tuple[int, str]] = []
        self.requests: list[dict[str, Any]] = []
        self.respond: Callable[[dict[str, Any]], tuple[int, str]] | None = None
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                replay.requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                if replay.respond is not None:
                    status, text = replay.respond(body)
                    name, data = "computed.json", text.encode()
                else:
                    status, name = replay.queue.pop(0) if replay.queue else (500, "openai_500.json")
                    data = (WIRE / name).read_bytes()
                self.send_response(status)
                sse = name.endswith(".sse")
                self.send_header("content-type", "text/event-stream" if sse else "application/json")
                self.send_header("content-length", str(len(data)))
                # retries in tests must not sleep for seconds
                self.send_header("retry-after-ms", "1")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
