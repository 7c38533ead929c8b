#!/usr/bin/env python3
"""Local servers for ShardRemote's tests, on 127.0.0.1 only, on a port the system picks.

    remote-test-server.py s3            moto's S3 with signature checking on, an IAM user and key
    remote-test-server.py http DIR      a static web server for DIR with Range, ETag and If-Match
    remote-test-server.py https DIR CA  the same over TLS, with a certificate for 127.0.0.1 from a
                                        CA of its own, whose certificate it writes to the file CA
    remote-test-server.py faults        synthetic objects behind faults (503s, drops, stalls)

Each prints one JSON line when it is ready ({"port": N, ...}), then serves until its standard
input ends (the test closed it, or the test process died), and exits. The s3 server also takes
commands on standard input, one JSON object a line, and answers each with one JSON line:

    {"op": "bucket", "bucket": "b"}                               make a bucket
    {"op": "put", "bucket": "b", "key": "k", "file": "/path"}      upload a file
    {"op": "put", "bucket": "b", "key": "k", "text": "..."}        upload text
    {"op": "delete", "bucket": "b", "key": "k"}                   delete an object
    {"op": "session"}                                             temporary credentials (STS AssumeRole)

The faults server serves /MODE/N/SIZE/NAME: SIZE bytes (byte i is i % 251) with ETag "fault-SIZE",
Range and If-Match; the first N requests for that path fail as MODE says:
    ok      never fail                      503     answer 503 Service Unavailable
    drop    close the connection, no answer  cut     send the headers and half the body, close
    stall   read the request, never answer (for the whole test)
    weak    never fail, with a weak ETag (W/"fault-SIZE"), which If-Match never matches
    private answer 403 AccessDenied (an S3 error document) to every request without Authorization
GET /_count/MODE/N/SIZE/NAME answers how many requests that path has had, GET /_connections how
many connections the server has accepted. The http and https servers answer GET /_count/PATH too:
how many requests (GET and HEAD) the file at PATH has had.

Needs moto[server] and boto3 for s3, and cryptography (a dependency of moto) for https;
tools/setup-system installs them into .build-venv. http and faults need only the standard library.
"""
import email.utils
import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"


def announce(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def parse_range(header, size):
    """(start, end) inclusive for a single 'bytes=a-b' / 'bytes=a-' / 'bytes=-n', None for no
    header or a form we do not serve, 'unsatisfiable' past the end."""
    if not header:
        return None
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    if m.group(1) == "":
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "unsatisfiable"
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size:
        return "unsatisfiable"
    return (start, min(end, size - 1))


class RangeHandler(BaseHTTPRequestHandler):
    """GET/HEAD of an object given by object_for(path) -> (bytes, etag, mtime) or None."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def object_for(self, path):
        raise NotImplementedError

    def before(self, path):
        """A fault to act out first; True when the request was handled."""
        return False

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def serve(self, body):
        path = self.path.split("?", 1)[0]
        if self.before(path):
            return
        found = self.object_for(path)
        if found is None:
            return self.plain(404, b"not found\n")
        data, etag, mtime = found
        match = self.headers.get("If-Match")
        # Strong comparison, as HTTP asks of If-Match: a weak ETag never matches.
        strong = not etag.startswith("W/")
        if match is not None and match.strip() != "*" and not (strong and etag in [t.strip() for t in match.split(",")]):
            return self.plain(412, b"precondition failed\n")
        size = len(data)
        r = parse_range(self.headers.get("Range"), size)
        if r == "unsatisfiable":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, start, end = (200, 0, size - 1) if r is None else (206, r[0], r[1])
        self.send_response(status)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body:
            self.send_body(data[start:end + 1])

    def send_body(self, chunk):
        self.wfile.write(chunk)

    def plain(self, status, text):
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)


def serve_http(directory):
    root = os.path.realpath(directory)
    counts = {}
    lock = threading.Lock()

    class Handler(RangeHandler):
        def before(self, path):
            if path.startswith("/_count/"):
                with lock:
                    n = counts.get(path[len("/_count"):], 0)
                self.plain(200, str(n).encode())
                return True
            with lock:
                counts[path] = counts.get(path, 0) + 1
            return False

        def object_for(self, path):
            full = os.path.realpath(os.path.join(root, path.lstrip("/")))
            if not full.startswith(root + os.sep) or not os.path.isfile(full):
                return None
            st = os.stat(full)
            with open(full, "rb") as f:
                data = f.read()
            return data, f'"{st.st_size:x}-{st.st_mtime_ns:x}"', st.st_mtime

    return ThreadingHTTPServer((HOST, 0), Handler)


def make_tls_context(ca_path):
    """A server context with a certificate for 127.0.0.1 signed by a new CA, whose certificate
    goes to ca_path (for the client's CA bundle)."""
    import datetime
    import ssl
    import tempfile
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, public_key, signing_key, ca, extensions=()):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shardstore test CA")])
    ca_cert = certificate(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = certificate(name, ca_name, key.public_key(), ca_key, False,
                       [x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))])])
    with open(ca_path, "wb") as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
    return context


def serve_faults():
    counts = {}
    connections = [0]
    lock = threading.Lock()
    stop = threading.Event()

    class Handler(RangeHandler):
        def setup(self):
            super().setup()
            with lock:
                connections[0] += 1

        def object_for(self, path):
            m = re.fullmatch(r"/(\w+)/(\d+)/(\d+)/[^/]+", path)
            if not m:
                return None
            size = int(m.group(3))
            weak = "W/" if m.group(1) == "weak" else ""
            return bytes(i % 251 for i in range(size)), f'{weak}"fault-{size}"', 1700000000

        def before(self, path):
            if path == "/_connections":
                with lock:
                    n = connections[0]
                self.plain(200, str(n).encode())
                return True
            if path.startswith("/_count/"):
                with lock:
                    n = counts.get(path[len("/_count"):], 0)
                self.plain(200, str(n).encode())
                return True
            m = re.fullmatch(r"/(\w+)/(\d+)/(\d+)/[^/]+", path)
            if not m:
                return False
            with lock:
                counts[path] = counts.get(path, 0) + 1
                n = counts[path]
            mode, failures = m.group(1), int(m.group(2))
            if mode == "stall":
                stop.wait(120)
                self.close_connection = True
                return True
            if mode == "private" and "Authorization" not in self.headers:
                self.plain(403, b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
                return True
            if n > failures:
                return False
            if mode == "503":
                self.plain(503, b"<Error><Code>SlowDown</Code><Message>try again</Message></Error>")
                return True
            if mode == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return True
            if mode == "cut":
                self.cut = True
            return False

        def send_body(self, chunk):
            if getattr(self, "cut", False):
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(chunk)

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.stop_event = stop
    return server


def serve_s3():
    import boto3
    import urllib.request
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    endpoint = f"http://{HOST}:{port}"

    def client(service, key_id, secret):
        return boto3.client(
            service, endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=key_id, aws_secret_access_key=secret)

    # Set up while moto still accepts anything, then switch signature checking on: from then on
    # every request must be signed with a key moto's IAM knows and allowed by its policy.
    iam = client("iam", "setup", "setup")
    iam.create_user(UserName="shardstore-test")
    iam.put_user_policy(
        UserName="shardstore-test", PolicyName="s3-all",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName="shardstore-test")["AccessKey"]
    # A role the user may assume, for temporary credentials with a session token.
    role = iam.create_role(
        RoleName="shardstore-test-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(
        RoleName="shardstore-test-role", PolicyName="s3-all",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request).read()
    s3 = client("s3", key["AccessKeyId"], key["SecretAccessKey"])
    announce(port=port, endpoint=endpoint, access_key_id=key["AccessKeyId"],
             secret_access_key=key["SecretAccessKey"])

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
            op = command["op"]
            if op == "bucket":
                s3.create_bucket(Bucket=command["bucket"])
                reply = {"ok": True}
            elif op == "put":
                if "file" in command:
                    with open(command["file"], "rb") as f:
                        body = f.read()
                else:
                    body = command["text"].encode()
                answer = s3.put_object(Bucket=command["bucket"], Key=command["key"], Body=body)
                reply = {"ok": True, "etag": answer["ETag"]}
            elif op == "session":
                sts = client("sts", key["AccessKeyId"], key["SecretAccessKey"])
                temporary = sts.assume_role(
                    RoleArn=role["Arn"], RoleSessionName="shardstore-test")["Credentials"]
                reply = {"ok": True, "access_key_id": temporary["AccessKeyId"],
                         "secret_access_key": temporary["SecretAccessKey"],
                         "session_token": temporary["SessionToken"]}
            elif op == "delete":
                s3.delete_object(Bucket=command["bucket"], Key=command["key"])
                reply = {"ok": True}
            else:
                reply = {"ok": False, "error": f"unknown op {op}"}
        except Exception as error:  # the test reads the reason
            reply = {"ok": False, "error": repr(error)}
        announce(**reply)
    server.stop()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "s3":
        serve_s3()
    elif mode in ("http", "https", "faults"):
        server = serve_faults() if mode == "faults" else serve_http(sys.argv[2])
        if mode == "https":
            context = make_tls_context(sys.argv[3])
            server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        announce(port=server.server_address[1])
        for _ in sys.stdin:
            pass
        if hasattr(server, "stop_event"):
            server.stop_event.set()
        server.shutdown()
    else:
        sys.exit(__doc__)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
