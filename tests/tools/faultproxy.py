#!/usr/bin/env python3
"""faultproxy.py - a TCP proxy that makes an HTTP/1.1 server look unreliable.

It sits between a client and a server (here: vaultfs and radosgw, both on
127.0.0.1) and forwards bytes both ways. It reads the client's side as HTTP/1.1
(request line, headers, a Content-Length body) so that it can count requests,
keep-alive connections included. For a configured share of requests, chosen
by a seeded random sequence indexed by request number (the same seed gives
the same decisions for the same order of requests), it injects one of:

  reset  the request's headers and half its body go to the server (nothing
         if it has no body), then the client's connection is reset
         (SO_LINGER 0, close: an RST) and the server's is closed
         mid-request, so the server never acts on it;
  503    the request never reaches the server; the client gets
         `503 Service Unavailable` with an S3 `SlowDown` XML error and
         `Connection: close` (after its body has been read, or at once if it
         asked for `Expect: 100-continue`).

With --hold METHOD (e.g. GET), every request of that method is read and
then held: nothing goes to the server and no answer comes back, the
connection stays open (a server that accepts and never answers), until
SIGUSR1 releases them all (they are then forwarded, and later ones pass)
or the proxy ends. The "held" counter says how many were held.

A third fault is asked for by name rather than drawn (--drop-answer):

  drop   the N-th request matching "METHOD [SUBSTRING-OF-PATH]" goes to the
         server whole and the server answers it, but the answer is
         swallowed and the client's connection reset: the server acted,
         the client saw a reset (a CreateMultipartUpload or
         CompleteMultipartUpload whose answer was lost). An interim
         "100 Continue" still reaches the client.

Two more, for the AWS control planes (moto, behind the proxy), answer the
first N requests that match (--only-method, --match) with an error in the
request's own protocol, then let every request through:

  throttle  (--throttle N) the service's throttling error:
              EC2 (Query)            503 <Response><Errors><Error>
                                     <Code>RequestLimitExceeded</Code>...
              other Query (STS, RDS, SQS's Query form)
                                     400 <ErrorResponse><Error><Type>Sender
                                     </Type><Code>Throttling</Code>...
              JSON 1.0/1.1 (X-Amz-Target: DynamoDB, SQS, SSM)
                                     400 {"__type": "ThrottlingException",
                                     "message": ...}, Content-Type as asked
              REST-JSON (Backup, EBS direct APIs)
                                     400 the same JSON, X-Amzn-ErrorType
              S3 (REST-XML)          503 SlowDown, as the 503 fault
  5xx       (--5xx N, after the throttles) a server error: EC2 and S3 500
            InternalError, other Query 500 <Type>Receiver</Type>
            InternalFailure, JSON and REST-JSON 500 InternalFailure.
            --5xx-status 503 makes it 503 ServiceUnavailable instead
            (EC2: Unavailable).

The protocol is read off the request: the SigV4 credential scope names the
service, X-Amz-Target means JSON, a form body with Action= means Query, and
anything else REST-JSON. --match SUBSTRING restricts these errors to
requests whose "METHOD PATH", X-Amz-Target or body contains SUBSTRING (a
Query action such as "Action=DescribeSnapshots", a Backup path such as
"/recovery-points"). With either option set, request bodies up to 1 MiB
are read whole before the decision. The answer closes the connection, as
the 503 fault's does. Counters: "throttles", "5xxs" (and "faulted").

Chunked request bodies are not parsed: such a connection is forwarded as is
and counted as `unparsed`. Responses are never parsed, only copied.

Threads: one accept loop; per connection, one thread reading the client
(parsing, deciding, forwarding) and one copying the server's answers back.
Counters are protected by one lock.

Output: "PORT n" on stdout once listening. Counters as JSON in --stats FILE
(rewritten after each request, atomically) and on stderr when the proxy ends
(SIGTERM, SIGINT, or its parent process gone).
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time

MAX_HEADER = 64 * 1024
SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code>"
    b"<Message>Please reduce your request rate. (faultproxy)</Message>"
    b"<RequestId>faultproxy</RequestId></Error>\n"
)


class Stats:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.path = path
        self.c = {
            "connections": 0,
            "requests": 0,
            "forwarded": 0,
            "resets": 0,
            "503s": 0,
            "dropped": 0,
            "throttles": 0,
            "5xxs": 0,
            "unparsed": 0,
            "methods": {},
            "faulted": [],  # "N METHOD PATH -> kind", for the test's log
        }

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n
            self._write()

    def request(self, method):
        with self.lock:
            self.c["requests"] += 1
            m = self.c["methods"]
            m[method] = m.get(method, 0) + 1
            return self.c["requests"]

    def fault(self, kind, what):
        with self.lock:
            self.c[kind] += 1
            self.c["faulted"].append(what + " -> " + kind)
            self._write()

    def held(self):
        with self.lock:
            self.c["held"] = self.c.get("held", 0) + 1
            self._write()

    def snapshot(self):
        with self.lock:
            return json.dumps(self.c, indent=1, sort_keys=True)

    def _write(self):  # with self.lock held
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.c, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


class Faults:
    """Decides, per matching request, whether and how to fail it."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.reset_rate = args.reset_rate
        self.rate_503 = args.rate_503
        self.only_method = args.only_method.upper() if args.only_method else None
        self.after = args.after
        self.max_faults = args.max_faults
        self.matched = 0
        self.injected = 0

    def decide(self, method):
        """Return None, "resets" or "503s"."""
        if self.only_method and method != self.only_method:
            return None
        with self.lock:
            self.matched += 1
            # one draw per matching request, so that decisions depend only
            # on the request's rank, not on earlier outcomes
            x = self.rng.random()
            if self.matched <= self.after:
                return None
            if self.max_faults is not None and self.injected >= self.max_faults:
                return None
            if x < self.reset_rate:
                kind = "resets"
            elif x < self.reset_rate + self.rate_503:
                kind = "503s"
            else:
                return None
            self.injected += 1
            return kind


# the errors of --throttle and --5xx, by protocol: (status, code) for a
# throttle, a 500 and a 503
AWS_ERRORS = {
    "ec2": {"throttle": (503, "RequestLimitExceeded"),
            500: (500, "InternalError"), 503: (503, "Unavailable")},
    "query": {"throttle": (400, "Throttling"),
              500: (500, "InternalFailure"), 503: (503, "ServiceUnavailable")},
    "json": {"throttle": (400, "ThrottlingException"),
             500: (500, "InternalFailure"), 503: (503, "ServiceUnavailable")},
    "rest-json": {"throttle": (400, "ThrottlingException"),
                  500: (500, "InternalFailure"), 503: (503, "ServiceUnavailable")},
    "s3": {"throttle": (503, "SlowDown"),
           500: (500, "InternalError"), 503: (503, "SlowDown")},
}
REASONS = {400: b"Bad Request", 500: b"Internal Server Error", 503: b"Service Unavailable"}
SCOPE = re.compile(r"Credential=[^/,]+/[0-9]{8}/[^/,]+/([^/,]+)/aws4_request")
BODY_MAX = 1 << 20  # read whole before deciding, with --throttle/--5xx


def aws_protocol(hdrs, body):
    """The AWS protocol of a request: ec2, query, json, rest-json or s3."""
    m = SCOPE.search(hdrs.get("authorization", ""))
    service = m.group(1) if m else ""
    if service == "s3":
        return "s3"
    if hdrs.get("x-amz-target"):
        return "json"
    if "x-www-form-urlencoded" in hdrs.get("content-type", "") or \
            body.startswith(b"Action="):
        return "ec2" if service == "ec2" else "query"
    return "rest-json"


def aws_error(hdrs, body, kind, status_5xx):
    """The whole HTTP answer (bytes) of a throttle or 5xx for this request."""
    proto = aws_protocol(hdrs, body)
    status, code = AWS_ERRORS[proto]["throttle" if kind == "throttles" else status_5xx]
    msg = "Rate exceeded (faultproxy)" if kind == "throttles" else \
        "The service is unavailable or failed (faultproxy)"
    extra = b""
    if proto == "ec2":
        ctype = b"text/xml;charset=UTF-8"
        out = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
               "<Code>%s</Code><Message>%s</Message></Error></Errors>"
               "<RequestID>faultproxy</RequestID></Response>\n" % (code, msg))
    elif proto == "query":
        ctype = b"text/xml"
        out = ("<ErrorResponse><Error><Type>%s</Type><Code>%s</Code>"
               "<Message>%s</Message></Error><RequestId>faultproxy</RequestId>"
               "</ErrorResponse>\n" % ("Sender" if status < 500 else "Receiver", code, msg))
    elif proto == "s3":
        ctype = b"application/xml"
        out = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
               "<Message>%s</Message><RequestId>faultproxy</RequestId></Error>\n"
               % (code, msg))
    else:
        ctype = (hdrs.get("content-type") or "application/json").encode("latin-1") \
            if proto == "json" else b"application/json"
        out = json.dumps({"__type": code, "message": msg}) + "\n"
        extra = b"X-Amzn-ErrorType: %s\r\nX-Amzn-RequestId: faultproxy\r\n" % code.encode()
    out = out.encode()
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s"
            b"Connection: close\r\n\r\n" % (status, REASONS[status], ctype, len(out), extra)) + out


class AwsErrors:
    """--throttle N, then --5xx M: the first N+M matching requests."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.throttle = args.throttle
        self.n5xx = args.n5xx
        self.status = args.status_5xx
        self.only_method = args.only_method.upper() if args.only_method else None
        self.match = args.match.encode() if args.match else None
        self.matched = 0

    def active(self):
        return self.throttle + self.n5xx > 0

    def decide(self, method, path, hdrs, body):
        """None, "throttles" or "5xxs"."""
        if not self.active() or (self.only_method and method != self.only_method):
            return None
        if self.match is not None:
            seen = ("%s %s %s " % (method, path, hdrs.get("x-amz-target", ""))).encode()
            if self.match not in seen + body:
                return None
        with self.lock:
            self.matched += 1
            if self.matched <= self.throttle:
                return "throttles"
            if self.matched <= self.throttle + self.n5xx:
                return "5xxs"
            return None


class DropAnswer:
    """--drop-answer "METHOD [SUBSTRING]" with --drop-answer-at N (and
    --drop-answer-count C): the answers of the N-th .. (N+C-1)-th matching
    requests are swallowed after the server sent them whole, and the client
    is reset. Independent of the random faults."""

    def __init__(self, args):
        self.lock = threading.Lock()
        spec = (args.drop_answer or "").split(None, 1)
        self.method = spec[0].upper() if spec else None
        self.substr = spec[1] if len(spec) > 1 else ""
        self.first = args.drop_answer_at
        self.count = args.drop_answer_count
        self.matched = 0

    def decide(self, method, path):
        if not self.method or method != self.method or self.substr not in path:
            return False
        with self.lock:
            self.matched += 1
            return self.first <= self.matched < self.first + self.count


def take_answer(sock, client, method, forward):
    """Read one whole HTTP answer from the server and copy it to the client
    (forward False: swallow it; an interim 1xx is always passed on). True
    once the answer is in, False if the server closed or went quiet first.
    Used only with --drop-answer, where answers go one request at a time."""
    buf = b""
    sock.settimeout(60)
    try:
        while True:
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                data = sock.recv(256 * 1024)
                if not data:
                    if forward and buf:
                        client.sendall(buf)
                    return False
                buf += data
                end = buf.find(b"\r\n\r\n")
            head, buf = buf[: end + 4], buf[end + 4 :]
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            if forward or 100 <= status < 200:
                client.sendall(head)
            if 100 <= status < 200:
                continue
            hdrs = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            if "chunked" in hdrs.get("transfer-encoding", "").lower():
                while not buf.endswith(b"0\r\n\r\n"):
                    data = sock.recv(256 * 1024)
                    if not data:
                        return False
                    if forward:
                        client.sendall(buf)
                        buf = b""
                    buf += data
            else:
                # a HEAD answer announces a length it does not send
                need = 0 if method == "HEAD" or status in (204, 304) else int(
                    hdrs.get("content-length", "0") or 0)
                got = len(buf)
                while got < need:  # streamed, not held: answers may be big
                    if forward and buf:
                        client.sendall(buf)
                    buf = sock.recv(256 * 1024)
                    if not buf:
                        return False
                    got += len(buf)
            if forward and buf:
                client.sendall(buf)
            return True
    except (OSError, ValueError, IndexError):
        return False


def reset(sock):
    """Close with an RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class Conn:
    def __init__(self, proxy, client):
        self.p = proxy
        self.client = client
        self.server = None
        self.buf = b""
        self.closed = threading.Event()
        self.one_at_a_time = False  # --drop-answer: answers read here

    def recv_more(self):
        data = self.client.recv(256 * 1024)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self):
        """Headers of the next request (bytes) or None at EOF."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[: end + 4]
                self.buf = self.buf[end + 4 :]
                return head
            if len(self.buf) > MAX_HEADER:
                raise ValueError("request header too long")
            if not self.recv_more():
                if self.buf.strip():
                    raise ValueError("connection closed inside a request header")
                return None

    def read_body(self, n):
        """The next n body bytes from the client, taken out of the stream."""
        while len(self.buf) < n:
            if not self.recv_more():
                raise ValueError("connection closed inside a request body")
        body, self.buf = self.buf[:n], self.buf[n:]
        return body

    def pipe_body(self, n, forward):
        """Pass (or with forward False, drop) n body bytes from the client."""
        while n > 0:
            if not self.buf and not self.recv_more():
                raise ValueError("connection closed inside a request body")
            chunk, self.buf = self.buf[:n], self.buf[n:]
            n -= len(chunk)
            if forward:
                self.server.sendall(chunk)

    def server_to_client(self):
        try:
            while True:
                data = self.server.recv(256 * 1024)
                if not data:
                    break
                self.client.sendall(data)
        except OSError:
            pass
        finally:
            # the server closed: let the client see it too
            if not self.closed.is_set():
                try:
                    self.client.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def linger_close(self):
        """Half-close, then read what the client still sends until it
        closes: closing with unread input would send an RST that may
        overtake the answer."""
        try:
            self.client.shutdown(socket.SHUT_WR)
            self.client.settimeout(5)
            while self.client.recv(256 * 1024):
                pass
        except OSError:
            pass
        self.client.close()

    def run(self):
        st = self.p.stats
        st.add("connections")
        try:
            self.server = socket.create_connection(self.p.target, timeout=30)
            self.server.settimeout(None)
            self.server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.p.drop.method:
                # answers are relayed by this thread, one request at a
                # time, so that one of them can be swallowed whole
                self.one_at_a_time = True
            else:
                threading.Thread(target=self.server_to_client, daemon=True).start()
            while True:
                head = self.read_head()
                if head is None:
                    break
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                method = parts[0].upper()
                path = parts[1] if len(parts) > 1 else ""
                hdrs = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        hdrs[k.strip().lower()] = v.strip()
                n = st.request(method)
                if "chunked" in hdrs.get("transfer-encoding", "").lower():
                    st.add("unparsed")
                    self.server.sendall(head + self.buf)
                    self.buf = b""
                    while self.recv_more():
                        self.server.sendall(self.buf)
                        self.buf = b""
                    break
                length = int(hdrs.get("content-length", "0") or 0)
                if self.p.aws.active() and length <= BODY_MAX:
                    # a client that waits for "100 Continue" sends no body
                    # before it: then the path and headers decide alone
                    waits = "100-continue" in hdrs.get("expect", "").lower()
                    body = b"" if waits else self.read_body(length)
                    err = self.p.aws.decide(method, path, hdrs, body)
                    if err:
                        st.fault(err, "%d %s %s" % (n, method, path))
                        self.closed.set()
                        shut(self.server)
                        self.client.sendall(aws_error(hdrs, body, err, self.p.aws.status))
                        self.linger_close()
                        return
                    # put it back: what follows forwards it as it came
                    self.buf = body + self.buf
                if method in self.p.hold and not self.p.released.is_set():
                    st.held()
                    self.p.released.wait()
                kind = self.p.faults.decide(method)
                what = "%d %s %s" % (n, method, path)
                if self.one_at_a_time and kind is None:
                    # --drop-answer: forward, read the whole answer, then
                    # pass it on or swallow it and reset the client
                    drop = self.p.drop.decide(method, path)
                    self.server.sendall(head)
                    self.pipe_body(length, True)
                    got = take_answer(self.server, self.client, method, not drop)
                    if drop:
                        st.fault("dropped", what + (" (answered)" if got else " (no answer)"))
                        self.closed.set()
                        reset(self.client)
                        shut(self.server)
                        return
                    if not got:
                        break
                    st.add("forwarded")
                    continue
                if kind == "resets":
                    # Half a body cannot be acted upon; a request without
                    # a body is not sent at all (else the server would act
                    # on it and only the answer would be lost).
                    if length > 0:
                        self.server.sendall(head)
                        self.pipe_body(length // 2, True)
                    st.fault(kind, what)
                    self.closed.set()
                    reset(self.client)
                    shut(self.server)
                    return
                if kind == "503s":
                    if "100-continue" not in hdrs.get("expect", "").lower():
                        self.pipe_body(length, False)
                    resp = (
                        b"HTTP/1.1 503 Service Unavailable\r\n"
                        b"Content-Type: application/xml\r\n"
                        b"Content-Length: %d\r\n"
                        b"Connection: close\r\n\r\n" % len(SLOWDOWN_BODY)
                    ) + SLOWDOWN_BODY
                    st.fault(kind, what)
                    self.closed.set()
                    shut(self.server)
                    self.client.sendall(resp)
                    self.linger_close()
                    return
                self.server.sendall(head)
                self.pipe_body(length, True)
                st.add("forwarded")
        except (OSError, ValueError) as e:
            if not self.closed.is_set():
                print("faultproxy: connection: %s" % e, file=sys.stderr)
        finally:
            self.closed.set()
            if self.server is not None:
                shut(self.server)
            shut(self.client)


class Proxy:
    def __init__(self, args):
        host, _, port = args.target.rpartition(":")
        self.target = (host or "127.0.0.1", int(port))
        self.stats = Stats(args.stats)
        self.faults = Faults(args)
        self.hold = [m.upper() for m in args.hold]
        self.released = threading.Event()
        self.drop = DropAnswer(args)
        self.aws = AwsErrors(args)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", args.listen_port))
        self.lsock.listen(64)

    def serve(self):
        while True:
            c, _ = self.lsock.accept()
            threading.Thread(target=Conn(self, c).run, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen-port", type=int, default=0,
                    help="port on 127.0.0.1 (0: any; printed as 'PORT n')")
    ap.add_argument("--target", required=True, help="server host:port")
    ap.add_argument("--reset-rate", type=float, default=0.0,
                    help="share of requests answered by a connection reset")
    ap.add_argument("--503-rate", dest="rate_503", type=float, default=0.0,
                    help="share of requests answered by 503 SlowDown")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only-method", help="fault only requests with this method")
    ap.add_argument("--after", type=int, default=0,
                    help="let the first N matching requests through")
    ap.add_argument("--max-faults", type=int, default=None,
                    help="inject at most N faults in all")
    ap.add_argument("--throttle", type=int, default=0, metavar="N",
                    help="answer the first N matching requests with the "
                    "throttling error of their AWS protocol")
    ap.add_argument("--5xx", dest="n5xx", type=int, default=0, metavar="N",
                    help="then the next N with a server error")
    ap.add_argument("--5xx-status", dest="status_5xx", type=int, default=500,
                    choices=(500, 503), help="the --5xx status (500)")
    ap.add_argument("--match", metavar="SUBSTRING",
                    help="--throttle/--5xx only requests whose method and "
                    "path, X-Amz-Target or body contain SUBSTRING")
    ap.add_argument("--stats", help="keep counters as JSON in this file")
    ap.add_argument("--hold", action="append", default=[], metavar="METHOD",
                    help="hold requests of METHOD unanswered until SIGUSR1")
    ap.add_argument("--drop-answer", metavar="'METHOD [SUBSTRING]'",
                    help="forward matching requests (method, and a substring "
                    "of the path and query such as '?uploads'), then swallow "
                    "the server's answer and reset the client")
    ap.add_argument("--drop-answer-at", type=int, default=1, metavar="N",
                    help="the first matching request whose answer is dropped")
    ap.add_argument("--drop-answer-count", type=int, default=1, metavar="C",
                    help="how many matching requests in a row, from N on")
    args = ap.parse_args()
    if not 0 <= args.reset_rate + args.rate_503 <= 1:
        ap.error("--reset-rate plus --503-rate must be within 0..1")
    host = args.target.rpartition(":")[0]
    if host not in ("", "127.0.0.1", "localhost"):
        ap.error("--target must be on 127.0.0.1")

    proxy = Proxy(args)
    parent = os.getppid()

    def finish(*_):
        print("faultproxy: " + proxy.stats.snapshot(), file=sys.stderr)
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    signal.signal(signal.SIGUSR1, lambda *_: proxy.released.set())
    threading.Thread(target=proxy.serve, daemon=True).start()
    print("PORT %d" % proxy.lsock.getsockname()[1], flush=True)
    with proxy.stats.lock:
        proxy.stats._write()
    # Outlive no one: a test killed by its timeout takes the proxy with it.
    while os.getppid() == parent:
        time.sleep(0.5)
    finish()


if __name__ == "__main__":
    main()
