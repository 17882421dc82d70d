#!/usr/bin/env python3
"""metadata_server.py - a local stand-in for the EC2 instance metadata
service (IMDSv2) and the ECS container credentials endpoint, for tests.

It binds 127.0.0.1 on an ephemeral port and prints "PORT <n>" as the first
line on stdout, then serves until killed (or, with --watch-stdin, until its
stdin reaches EOF, so that it never outlives the test that started it).

IMDSv2:
  PUT /latest/api/token            needs X-aws-ec2-metadata-token-ttl-seconds
                                   (1..21600); answers a fresh token
  GET /latest/meta-data/iam/security-credentials/        the role name
  GET /latest/meta-data/placement/region                 --region, when
                                   given (else 404, as off EC2)
  GET /latest/meta-data/instance-id                      --instance-id,
  GET /latest/meta-data/placement/availability-zone      --availability-
                                   zone, when given (else 404): the
                                   instance a test made in moto with
                                   RunInstances, for the EBS volume method
  GET /latest/meta-data/iam/security-credentials/ROLE    the credentials:
      {Code, LastUpdated, Type, AccessKeyId, SecretAccessKey, Token,
       Expiration}
  Every GET needs a valid X-aws-ec2-metadata-token, else 401.

ECS:
  GET <--ecs-path>                 {AccessKeyId, SecretAccessKey, Token,
                                   Expiration}; with --ecs-auth the
                                   Authorization header must equal it, else
                                   401.

Test controls:
  GET  /_stats                     JSON request counts (see STATS below) and
                                   the last token TTL asked for
  POST /_revoke-tokens             forget every IMDS token handed out

Expiration is "now + --expires-in" at the time of each answer, so a small
(or negative) value makes the client refresh.
"""

import argparse
import datetime
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE_PATH = "/latest/meta-data/iam/security-credentials/"

STATS = (
    "imds_token",          # PUT /latest/api/token answered with a token
    "imds_token_bad_ttl",  # PUT without a valid TTL header (400)
    "imds_role_list",      # GET .../security-credentials/ (200)
    "imds_creds",          # GET .../security-credentials/ROLE (200)
    "imds_region",         # GET .../placement/region (200)
    "imds_instance",       # GET .../instance-id (200)
    "imds_az",             # GET .../placement/availability-zone (200)
    "imds_unauthorized",   # GET without a valid token (401)
    "ecs",                 # ECS credentials answered (200)
    "ecs_unauthorized",    # ECS request with a missing or wrong token (401)
    "not_found",           # anything else (404)
)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}  # token -> expiry (datetime)
        self.counts = {k: 0 for k in STATS}
        self.last_token_ttl = None
        self.last_authorization = None

    def count(self, key):
        with self.lock:
            self.counts[key] += 1


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "metadata-test-server"
    # one segment per answer, sent at once: no Nagle/delayed-ACK stalls
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    @property
    def state(self):
        return self.server.state

    def log_message(self, fmt, *a):
        if self.state.args.verbose:
            sys.stderr.write("metadata_server: " + (fmt % a) + "\n")

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reply_json(self, obj):
        self.reply(200, json.dumps(obj), "application/json")

    def drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def creds(self, with_code):
        a = self.state.args
        exp = now() + datetime.timedelta(seconds=a.expires_in)
        body = {
            "AccessKeyId": a.access_key_id,
            "SecretAccessKey": a.secret_access_key,
            "Token": a.token,
            "Expiration": iso(exp),
        }
        if with_code:
            body = dict(Code="Success", LastUpdated=iso(now()),
                        Type="AWS-HMAC", **body)
        return body

    def token_ok(self):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        st = self.state
        with st.lock:
            exp = st.tokens.get(tok) if tok else None
            return exp is not None and exp > now()

    def do_PUT(self):
        self.drain()
        st = self.state
        if self.path != "/latest/api/token":
            st.count("not_found")
            return self.reply(404, "not found")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        try:
            ttl = int(ttl)
        except (TypeError, ValueError):
            ttl = 0
        if not 1 <= ttl <= 21600:
            st.count("imds_token_bad_ttl")
            return self.reply(400, "bad ttl")
        tok = secrets.token_urlsafe(32)
        with st.lock:
            st.tokens[tok] = now() + datetime.timedelta(seconds=ttl)
            st.counts["imds_token"] += 1
            st.last_token_ttl = ttl
        self.send_response(200)
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(tok)))
        self.end_headers()
        self.wfile.write(tok.encode())

    def do_POST(self):
        self.drain()
        st = self.state
        if self.path == "/_revoke-tokens":
            with st.lock:
                st.tokens.clear()
            return self.reply(200, "revoked")
        st.count("not_found")
        self.reply(404, "not found")

    def do_GET(self):
        st = self.state
        a = st.args
        path = self.path.split("?", 1)[0]
        if path == "/_stats":
            with st.lock:
                body = dict(st.counts)
                body["last_token_ttl"] = st.last_token_ttl
                body["last_authorization_seen"] = (
                    st.last_authorization is not None)
            return self.reply_json(body)
        if path == a.ecs_path:
            auth = self.headers.get("Authorization")
            with st.lock:
                st.last_authorization = auth
            if a.ecs_auth is not None and auth != a.ecs_auth:
                st.count("ecs_unauthorized")
                return self.reply_json_status(
                    401, {"code": "Unauthorized",
                          "message": "bad authorization token"})
            st.count("ecs")
            return self.reply_json(self.creds(False))
        if path.startswith("/latest/"):
            if not self.token_ok():
                st.count("imds_unauthorized")
                return self.reply(401, "unauthorized")
            if path == ROLE_PATH:
                st.count("imds_role_list")
                return self.reply(200, a.role)
            if path == ROLE_PATH + a.role:
                st.count("imds_creds")
                return self.reply_json(self.creds(True))
            if path == "/latest/meta-data/placement/region" and a.region:
                st.count("imds_region")
                return self.reply(200, a.region)
            if path == "/latest/meta-data/instance-id" and a.instance_id:
                st.count("imds_instance")
                return self.reply(200, a.instance_id)
            if (path == "/latest/meta-data/placement/availability-zone"
                    and a.availability_zone):
                st.count("imds_az")
                return self.reply(200, a.availability_zone)
        st.count("not_found")
        self.reply(404, "not found")

    def reply_json_status(self, status, obj):
        self.reply(status, json.dumps(obj), "application/json")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--access-key-id", default="AKIDTESTMETADATA")
    ap.add_argument("--secret-access-key", default="test/secret/metadata")
    ap.add_argument("--token", default="test-session-token")
    ap.add_argument("--expires-in", type=int, default=3600,
                    help="seconds from each answer to Expiration")
    ap.add_argument("--role", default="vaultfs-test-role")
    ap.add_argument("--region", default=None,
                    help="the instance's region (placement/region)")
    ap.add_argument("--instance-id", default=None,
                    help="the instance's id (meta-data/instance-id)")
    ap.add_argument("--availability-zone", default=None,
                    help="its zone (placement/availability-zone)")
    ap.add_argument("--ecs-path", default="/v2/credentials/test")
    ap.add_argument("--ecs-auth", default=None,
                    help="required Authorization header for ECS")
    ap.add_argument("--watch-stdin", action="store_true",
                    help="exit when stdin reaches EOF")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    print("PORT %d" % srv.server_address[1], flush=True)

    if args.watch_stdin:
        def watch():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                srv.shutdown()
        threading.Thread(target=watch, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    srv.server_close()


if __name__ == "__main__":
    main()
