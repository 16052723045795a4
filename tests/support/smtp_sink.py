"""A real SMTP server on loopback (aiosmtpd) that writes each mail it accepts as one JSON line.

    /usr/bin/python3 smtp_sink.py PORT OUTFILE [--starttls CERT KEY | --implicit CERT KEY] [--auth USER:PASS]

--starttls requires STARTTLS before MAIL; --implicit speaks TLS from the first byte; --auth
requires AUTH PLAIN/LOGIN with these credentials (over TLS). Each line records whether the
session was encrypted and who logged in.
"""
import json
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, path):
        self.path = path

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if session.authenticated and session.auth_data else None
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps({
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                "login": login,
            }) + "\n")
        return "250 OK"


def main():
    port, outfile, rest = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    kwargs = {}
    while rest:
        flag = rest.pop(0)
        if flag in ("--starttls", "--implicit"):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(rest.pop(0), rest.pop(0))
            if flag == "--starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                # aiosmtpd only counts STARTTLS as TLS for AUTH; this session is TLS from the start.
                kwargs.update(ssl_context=context, auth_require_tls=False)
        elif flag == "--auth":
            user, password = rest.pop(0).split(":", 1)

            def check(server, session, envelope, mechanism, auth_data):
                ok = auth_data.login.decode() == user and auth_data.password.decode() == password
                return AuthResult(success=ok, auth_data=auth_data)

            kwargs.update(authenticator=check, auth_required=True)
        else:
            sys.exit(f"unknown flag {flag}")
    controller = Controller(Sink(outfile), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


main()
