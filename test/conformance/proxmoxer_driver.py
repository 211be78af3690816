"""
Drives one PVE API connection made with proxmoxer, the way a Python user would make it, for
the conformance tests: one JSON request per line on stdin, one JSON answer per line on stdout.

Connection (environment): PVE_HOST, PVE_PORT, PVE_TOKEN_ID (user@realm!name), PVE_TOKEN_SECRET,
PVE_CA_FILE (the CA to verify the API certificate with; empty means proxmoxer's default trust).

Requests:
  {"method": "get"|"post"|"put"|"delete", "path": "nodes/pve01/qemu", "params": {...}}
    -> {"data": <answer>} or {"error": {"status", "reason", "content", "errors"}}
  {"wait": "<UPID>"}  (proxmoxer.tools.Tasks.blocking_status, then the task log)
    -> {"data": {"status": {...}, "log": "<text>"}}
"""
import json
import os
import sys

from proxmoxer import ProxmoxAPI, ResourceException
from proxmoxer.tools import Tasks


def connect():
    user, token = os.environ["PVE_TOKEN_ID"].split("!", 1)
    return ProxmoxAPI(
        os.environ["PVE_HOST"],
        port=int(os.environ["PVE_PORT"]),
        user=user,
        token_name=token,
        token_value=os.environ["PVE_TOKEN_SECRET"],
        verify_ssl=os.environ.get("PVE_CA_FILE") or True,
    )


def answer(api, request):
    if "wait" in request:
        upid = request["wait"]
        status = Tasks.blocking_status(api, upid, timeout=60, polling_interval=0.05)
        node = Tasks.decode_upid(upid)["node"]
        log = Tasks.decode_log(api.nodes(node).tasks(upid).log.get(limit=500))
        return {"status": status, "log": log}
    resource = api(request["path"])
    return getattr(resource, request["method"])(**request.get("params", {}))


def error_of(exc):
    if isinstance(exc, ResourceException):
        return {"status": exc.status_code, "reason": exc.status_message, "content": exc.content, "errors": exc.errors}
    return {"status": None, "reason": type(exc).__name__, "content": str(exc), "errors": None}


def main():
    api = connect()
    for line in sys.stdin:
        try:
            reply = {"data": answer(api, json.loads(line))}
        except Exception as exc:  # every failure goes back to the test, which judges it
            reply = {"error": error_of(exc)}
        # proxmoxer keeps a non-JSON error body as bytes (PVE's empty 401 body).
        print(json.dumps(reply, default=lambda b: b.decode("utf-8", "replace")), flush=True)


if __name__ == "__main__":
    main()
