"""`python -m bench.profile`: profile one endpoint in-process against the database a bench run left.

    python -m bench.profile --backend postgresql --endpoint summary --requests 200

Replays the endpoint's request through the Flask test client (no gunicorn, no network) under
pyinstrument, prints the call tree and writes bench/results/profile-<backend>-<endpoint>.html.
The requests are the ones bench.run sends (same key, same deep cursor, same detail ids).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from bench.run import API
from bench.run import PROPOSE_BODY
from bench.run import RESULTS
from bench.run import SECRET
from bench.run import SIGNING_KEY
from bench.run import WORK


def requests_for(endpoint: str, state: dict, count: int, client, headers) -> list[tuple[str, str, str | None]]:
    if endpoint == "approve":
        ids = []
        for _ in range(count):
            created = client.post(f"{API}/actions", data=PROPOSE_BODY, headers=headers, content_type="application/json")
            ids.append(created.get_json()["id"])
        return [("POST", f"{API}/actions/{action_id}/approve", '{"note": "bench"}') for action_id in ids]
    single = {
        "list": ("GET", f"{API}/actions?limit=50", None),
        "deep_page": ("GET", f"{API}/actions?limit=50&cursor={state['cursor']}", None),
        "filtered": ("GET", f"{API}/actions?status=rejected&limit=50", None),
        "summary": ("GET", f"{API}/summary?tz=UTC", None),
        "propose": ("POST", f"{API}/actions", PROPOSE_BODY),
    }
    if endpoint == "detail":
        ids = state["detail_ids"]
        return [("GET", f"{API}/actions/{ids[i % len(ids)]}", None) for i in range(count)]
    return [single[endpoint]] * count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--endpoint", default="list")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args(argv)
    from pyinstrument import Profiler

    state = json.loads((WORK / f"{args.backend}.json").read_text())
    os.environ.update(DATABASE_URL=state["database_url"], SECRET_KEY=SECRET, JWT_SECRET_KEY=SECRET)
    os.environ.update(AUDITTRAIL_TRANSITION_RATE_LIMIT="100000000/minute", AUDITTRAIL_ENV="production")
    os.environ.update(AUDITTRAIL_SIGNING_KEY=SIGNING_KEY)
    from audittrail import create_app

    app = create_app()
    client = app.test_client()
    headers = {"X-API-Key": state["api_key"]}
    plan = requests_for(args.endpoint, state, args.requests + 5, client, headers)
    for method, path, body in plan[:5]:  # warm-up: imports, pools, caches
        client.open(path, method=method, data=body, headers=headers, content_type="application/json")
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for method, path, body in plan[5:]:
        response = client.open(path, method=method, data=body, headers=headers, content_type="application/json")
        assert response.status_code < 400, (response.status_code, response.get_data(as_text=True)[:300])
    profiler.stop()
    elapsed = time.perf_counter() - started
    print(f"{args.backend} {args.endpoint}: {args.requests} requests, {elapsed / args.requests * 1000:.2f} ms each")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    html = RESULTS / f"profile-{args.backend}-{args.endpoint}.html"
    html.write_text(profiler.output_html())
    print(f"written {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
