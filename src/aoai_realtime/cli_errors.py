"""How the command line reports an error: one place, for every command.

:func:`run_cli` runs the ``aoai-realtime`` app and turns what a user can act on into one or two lines on stderr
(the cause, then the fix when the message does not already say it), with exit code 2 for a usage error (a bad
option or argument, a missing or unreadable input file, an invalid setting) and 1 for a failure (a service that
refuses the key, an engine that is not running, a certificate that is not trusted). :func:`explain` is the table
from exception to message; it knows the project's own errors (:mod:`aoai_realtime.errors`), the usual
operating-system errors a user causes (a missing file, a refused connection, an untrusted TLS certificate, a port
in use) and the command line's own usage errors.

Anything else is a bug in aoai-realtime: its traceback is printed (plain, without local variables, secrets
redacted) with a line asking for a report. ``--debug`` (anywhere on the command line; the app's root
must declare it) or ``AOAI_REALTIME_DEBUG=1`` prints the traceback of every error.
"""

from __future__ import annotations

import errno
import os
import ssl
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import typer

from .errors import AuthenticationError, ConfigError, ConnectError, ConnectionClosed, RealtimeError, ServerError, redact

__all__ = ["FAILURE", "USAGE", "Explanation", "explain", "run_cli"]

USAGE = 2
"""Exit code of a usage error: the command as typed cannot work (fix the command line or an input file)."""
FAILURE = 1
"""Exit code of a failure: the command was right but something it needs refused or is missing."""

_BUG = "this is a bug in aoai-realtime: please report it with the traceback above"


@dataclass(frozen=True)
class Explanation:
    """What to print for an error: ``cause`` (one line) and, when it adds something, ``fix`` (one line)."""

    cause: str
    fix: str = ""
    exit_code: int = FAILURE

    def render(self) -> str:
        text = f"error: {self.cause}" + (f"\n  {self.fix}" if self.fix else "")
        return redact(text)


def _click_exception_type() -> type[Exception]:
    # typer >= 0.2x vendors click as typer._click; older ones use click. BadParameter derives from either's
    # ClickException, so find it there rather than importing a private module.
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    raise AssertionError("typer.BadParameter does not derive from ClickException")  # pragma: no cover


_ClickException = _click_exception_type()


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups, as a task group raises it; else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _connect_fix(message: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in message or "SSLCertVerificationError" in message:
        return (
            "the server's TLS certificate is not trusted: pass --ca-file CERT.pem (the file "
            "'aoai-realtime engine --tls-self-signed' printed)"
        )
    if "WRONG_VERSION_NUMBER" in message:
        return "the server does not speak TLS on that port: use http:// (ws://) instead of https:// (wss://)"
    if "ConnectionRefused" in message or "Connect call failed" in message:
        return "nothing is listening there: start it (e.g. 'aoai-realtime engine') or fix the URL (--url)"
    if "gaierror" in message or "Name or service not known" in message:
        return "the host name does not resolve: check the URL or resource name"
    if "TimeoutError" in message or "timed out" in message:
        return "no answer in time: check the address and that the service is reachable from here"
    return ""


def _os_error(exc: OSError) -> Explanation | None:
    name = f" {exc.filename}" if exc.filename else ""
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return Explanation(f"no such file or directory:{name}", "check the path", USAGE)
    if isinstance(exc, IsADirectoryError | NotADirectoryError) and exc.filename:
        return Explanation(f"{exc.strerror}:{name}", "give the path of a file", USAGE)
    if isinstance(exc, PermissionError):
        return Explanation(f"permission denied:{name or ' ' + str(exc)}", "check the file's permissions")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Explanation(
            f"TLS certificate not trusted: {exc.verify_message or exc}", _connect_fix("CERTIFICATE_VERIFY_FAILED")
        )
    if isinstance(exc, ssl.SSLError):
        return Explanation(f"TLS error: {exc}", "check the certificate and key files (PEM)")
    if isinstance(exc, ConnectionRefusedError):
        return Explanation(f"connection refused ({exc})", _connect_fix("ConnectionRefused"))
    if exc.errno == errno.EADDRINUSE:
        return Explanation(f"address already in use ({exc.strerror})", "pick another --port, or stop what uses it")
    if isinstance(exc, FileNotFoundError):
        return None  # no file name: not a path the user gave, so we cannot say which; show the traceback
    return Explanation(str(exc) or type(exc).__name__, "", FAILURE)


def explain(exc: BaseException) -> Explanation | None:
    """The message for ``exc`` if a user can act on it, else ``None`` (a bug: show the traceback)."""
    exc = _leaf(exc)
    if isinstance(exc, _ClickException):
        return _click(exc)
    if isinstance(exc, ConfigError):
        field = getattr(exc, "field", None)
        return Explanation(str(exc) if not field or field in str(exc) else f"{exc} ({field})", "", USAGE)
    if isinstance(exc, AuthenticationError):
        return Explanation(str(exc))
    if isinstance(exc, ConnectError):
        return Explanation(str(exc), _connect_fix(str(exc)))
    if isinstance(exc, ConnectionClosed):
        return Explanation(f"the connection closed: {exc}", "run the command again")
    if isinstance(exc, ServerError):
        code = f" ({exc.code})" if exc.code else ""
        return Explanation(f"the service answered an error{code}: {exc}")
    if isinstance(exc, RealtimeError):
        return Explanation(str(exc) or type(exc).__name__)
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, TimeoutError) and str(exc):
        return Explanation(str(exc))
    return None


def _click(exc: Any) -> Explanation:
    ctx = getattr(exc, "ctx", None)
    where = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    message = exc.format_message().rstrip(".")
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    return Explanation(message + where, "", int(getattr(exc, "exit_code", USAGE)))


def _debug(args: Sequence[str]) -> bool:
    return "--debug" in args or os.environ.get("AOAI_REALTIME_DEBUG", "") not in ("", "0")


def run_cli(app: typer.Typer, args: Sequence[str] | None = None, *, prog_name: str = "aoai-realtime") -> int:
    """Run ``app`` with ``args`` (default ``sys.argv[1:]``) and return the exit code; errors are printed as the
    module docstring says. The caller exits with the code (``sys.exit(run_cli(app))``)."""
    argv = list(sys.argv[1:] if args is None else args)
    if "--debug" in argv:  # a global option, accepted anywhere on the line: aoai-realtime talk hi --debug
        argv = ["--debug", *(a for a in argv if a != "--debug")]
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:  # the command line's one boundary: every error ends here
        if isinstance(exc, SystemExit):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
            return USAGE
        if type(exc).__name__ == "Abort":
            print("aborted", file=sys.stderr)
            return FAILURE
        explained = explain(exc)
        if explained is None or _debug(argv):
            print(redact("".join(traceback.format_exception(exc))).rstrip(), file=sys.stderr)
        if explained is None:
            print(_BUG, file=sys.stderr)
            return FAILURE
        print(explained.render(), file=sys.stderr)
        return explained.exit_code
    return result if isinstance(result, int) else 0
