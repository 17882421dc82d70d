#!/usr/bin/env python3
"""moto_backup.py - moto's server mode, for vaultfs's tests.

    moto_backup.py [--host 127.0.0.1] [--port N] [--port-file FILE]

Runs the same WSGI application as `python3 -m moto.server` (every service
moto emulates, one endpoint, the service chosen from the request's SigV4
scope) on a threaded werkzeug server. --port 0 (the default) binds a free
port; the port bound is written to --port-file (atomically, once the socket
listens) and exported as MOTO_PORT, as moto.server does. SIGTERM and SIGINT
stop it. scripts/moto-server starts and stops it.
"""

import argparse
import os
import signal
import sys


def serve(host, port, port_file):
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    app = DomainDispatcherApplication(create_backend_app)
    srv = make_server(host, port, app, threaded=True)
    os.environ["MOTO_PORT"] = str(srv.server_port)
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_port)
        os.rename(tmp, port_file)

    def stop(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("moto_backup: listening on http://%s:%d" % (host, srv.server_port),
          file=sys.stderr, flush=True)
    srv.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--port-file", help="write the port bound here")
    args = ap.parse_args()
    serve(args.host, args.port, args.port_file)


if __name__ == "__main__":
    main()
