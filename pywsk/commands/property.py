"""`pywsk property set|get|unset` (wsk `commands/property.go`)."""

from __future__ import annotations

import argparse
import dataclasses

from pywsk import __version__
from pywsk.cli import PROG, Command, Context
from pywsk.config import DEFAULT_API_VERSION, DEFAULT_NAMESPACE, write_props
from pywsk.errors import EXIT_CODE_ERR_GENERAL, WskError

# -- set --------------------------------------------------------------------------------------------------------


def _build_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("-u", "--auth", dest="set_auth", metavar="KEY", help="authorization KEY")
    p.add_argument("--apihost", dest="set_apihost", metavar="HOST", help="whisk API HOST")
    p.add_argument("--apiversion", dest="set_apiversion", metavar="VERSION", help="whisk API VERSION")
    p.add_argument("--namespace", dest="set_namespace", metavar="NAMESPACE", help="whisk NAMESPACE")
    p.add_argument("--cert", dest="set_cert", metavar="FILE", help="client cert")
    p.add_argument("--key", dest="set_key", metavar="FILE", help="client key")
    p.add_argument("--cacert", dest="set_cacert", metavar="FILE", help="CA cert")


def _run_set(ctx: Context, opts: argparse.Namespace) -> int:
    updates: dict[str, str | None] = {}
    messages: list[str] = []
    error: WskError | None = None
    host_not_needed = bool(opts.set_apihost or opts.set_apiversion or opts.set_auth)
    client_props = dataclasses.replace(ctx.props)
    if opts.set_auth:
        client_props.auth = opts.set_auth
    if opts.set_apihost:
        client_props.apihost = opts.set_apihost
    if opts.set_apiversion:
        client_props.apiversion = opts.set_apiversion
    if not host_not_needed:
        ctx.client(client_props)  # validates the API host like wsk's SetupClientConfig

    if opts.set_cert:
        updates["CERT"] = opts.set_cert
        messages.append(f"ok: client cert set. Run '{PROG} property get --cert' to see the new value.\n")
    if opts.set_key:
        updates["KEY"] = opts.set_key
        messages.append(f"ok: client key set. Run '{PROG} property get --key' to see the new value.\n")
    if opts.set_cacert:
        updates["CACERT"] = opts.set_cacert
        messages.append(f"ok: CA cert set. Run '{PROG} property get --cacert' to see the new value.\n")
    if opts.set_auth:
        updates["AUTH"] = opts.set_auth
        messages.append(f"ok: whisk auth set. Run '{PROG} property get --auth' to see the new value.\n")
    if opts.set_apihost:
        updates["APIHOST"] = opts.set_apihost
        messages.append(f"ok: whisk API host set to {opts.set_apihost}\n")
    if opts.set_apiversion:
        updates["APIVERSION"] = opts.set_apiversion
        messages.append(f"ok: whisk API version set to {opts.set_apiversion}\n")
    if opts.set_namespace:
        namespace = opts.set_namespace
        try:
            resp = ctx.client(client_props, require_host=True).request("GET", "namespaces", route="")
            names = resp.body if isinstance(resp.body, list) else []
        except WskError as exc:
            error = WskError(
                f"Authenticated user does not have namespace '{namespace}'; set command failed: {exc.message}",
                EXIT_CODE_ERR_GENERAL,
            )
        else:
            if namespace in names:
                updates["NAMESPACE"] = namespace
                messages.append(f"ok: whisk namespace set to {namespace}\n")
            else:
                error = WskError(
                    f"Namespace '{namespace}' is not in the list of entitled namespaces", EXIT_CODE_ERR_GENERAL
                )
    try:
        write_props(ctx.props.props_file, updates)
    except OSError as exc:
        error = WskError(
            f"Unable to set the property value(s): Whisk properties file write failure: {exc}", EXIT_CODE_ERR_GENERAL
        )
    else:
        ctx.out.write("".join(messages))
    if error is not None:
        raise error
    return 0


# -- unset ------------------------------------------------------------------------------------------------------

_PROPERTY_FLAGS = ("cert", "key", "cacert", "auth", "apihost", "apiversion", "namespace")


def _build_unset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cert", action="store_true", help="client cert")
    p.add_argument("--key", action="store_true", help="client key")
    p.add_argument("--cacert", action="store_true", help="CA cert")
    p.add_argument("--auth", action="store_true", help="authorization key")
    p.add_argument("--apihost", action="store_true", help="whisk API host")
    p.add_argument("--apiversion", action="store_true", help="whisk API version")
    p.add_argument("--namespace", action="store_true", help="whisk namespace")


def _run_unset(ctx: Context, opts: argparse.Namespace) -> int:
    updates: dict[str, str | None] = {}
    messages: list[str] = []
    if opts.cert:
        updates["CERT"] = None
        messages.append("ok: client cert unset.\n")
    if opts.key:
        updates["KEY"] = None
        messages.append("ok: client key unset.\n")
    if opts.cacert:
        updates["CACERT"] = None
        messages.append("ok: CA cert unset.\n")
    if opts.auth:
        updates["AUTH"] = None
        messages.append("ok: whisk auth unset.\n")
    if opts.namespace:
        updates["NAMESPACE"] = None
        messages.append(f"ok: whisk namespace unset; the default value of {DEFAULT_NAMESPACE} will be used.\n")
    if opts.apihost:
        updates["APIHOST"] = None
        messages.append("ok: whisk API host unset.\n")
    if opts.apiversion:
        updates["APIVERSION"] = None
        messages.append(f"ok: whisk API version unset; the default value of {DEFAULT_API_VERSION} will be used.\n")
    try:
        write_props(ctx.props.props_file, updates)
    except OSError as exc:
        raise WskError(
            f"Unable to unset the property value: Whisk properties file write failure: {exc}", EXIT_CODE_ERR_GENERAL
        ) from exc
    ctx.out.write("".join(messages))
    return 0


# -- get --------------------------------------------------------------------------------------------------------


def _build_get(p: argparse.ArgumentParser) -> None:
    _build_unset(p)
    p.add_argument("--apibuild", action="store_true", help="whisk API build version")
    p.add_argument("--apibuildno", action="store_true", help="whisk API build number")
    p.add_argument("--cliversion", action="store_true", help="whisk CLI version")
    p.add_argument("--all", action="store_true", help="all properties")


def _run_get(ctx: Context, opts: argparse.Namespace) -> int:
    host_not_needed = any(
        getattr(opts, f) for f in ("auth", "cert", "key", "apihost", "namespace", "apiversion", "cliversion")
    )
    client = ctx.client(require_host=not host_not_needed)
    show_all = opts.all or not any(getattr(opts, f) for f in (*_PROPERTY_FLAGS, "apibuild", "apibuildno", "cliversion"))
    p = ctx.props
    out = ctx.out
    if show_all or opts.cert:
        out.write(f"client cert\t\t{p.cert}\n")
    if show_all or opts.key:
        out.write(f"Client key\t\t{p.key}\n")
    if show_all or opts.cacert:
        out.write(f"CA certificate\t\t{p.cacert}\n")
    if show_all or opts.auth:
        out.write(f"whisk auth\t\t{p.auth}\n")
    if show_all or opts.apihost:
        out.write(f"whisk API host\t\t{p.apihost}\n")
    if show_all or opts.apiversion:
        out.write(f"whisk API version\t{p.apiversion}\n")
    if show_all or opts.namespace:
        out.write(f"whisk namespace\t\t{p.namespace}\n")
    if show_all or opts.cliversion:
        out.write(f"whisk CLI version\t{__version__}\n")
    if show_all or opts.apibuild or opts.apibuildno:
        build, buildno, failure = "Unknown", "Unknown", None
        try:
            resp = client.request("GET", client.api_base, auth=False, absolute=True)
            info = resp.body if isinstance(resp.body, dict) else {}
            build = str(info.get("build", ""))
            buildno = str(info.get("buildno", ""))
        except WskError as exc:
            failure = exc
        if show_all or opts.apibuild:
            out.write(f"whisk API build\t\t{build}\n")
        if show_all or opts.apibuildno:
            out.write(f"whisk API build number\t{buildno}\n")
        if failure is not None:
            raise failure.wrap(f"Unable to obtain API build information: {failure.message}")
    return 0


_GLOBALS_SHADOWED = frozenset({"auth", "apihost", "apiversion", "cert", "key", "cacert"})

COMMANDS: dict[str, Command] = {
    "set": Command("set", "set property", "set [flags]", _build_set, _run_set, _GLOBALS_SHADOWED),
    "unset": Command("unset", "unset property", "unset [flags]", _build_unset, _run_unset, _GLOBALS_SHADOWED),
    "get": Command("get", "get property", "get [flags]", _build_get, _run_get, _GLOBALS_SHADOWED),
}
