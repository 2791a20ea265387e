"""The account page: API tokens (created, shown once, revoked), organizations and their members,
and the owner that new models and deployments default to.

Every change is a plain form post (so the page works without scripts): the CSRF token is
checked before anything else is read, destructive posts are confirmed first (a dialog with
scripts, a confirmation page without), and successes redirect so that reloading does not
repeat them. The one exception is a new token, whose secret exists only in the response that
created it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from cogplane.common.contracts import accounts as c
from cogplane.common.contracts.models import Viewer
from cogplane.common.errors import CogplaneError, NotFound
from cogplane.gateway.deps import BusDep
from cogplane.gateway.web.auth import SignInRequired, check_csrf, session_caller, settings_of
from cogplane.gateway.web.render import page
from cogplane.gateway.web.session import COOKIE, MAX_AGE

router = APIRouter(include_in_schema=False)

OWNER_COOKIE = "cogplane_owner"
USERNAME = re.compile(c.USERNAME_PATTERN)
# The same rule for the browser's own check (the pattern attribute is a "v"-mode expression).
HTML_USERNAME_PATTERN = c.USERNAME_PATTERN.strip("^$").replace("[a-z0-9-]", r"[a-z0-9\-]")
USERNAME_RULE = "Lowercase letters, digits and dashes; 1 to 39 characters; no dash at either end."
# Fixed messages after a redirect (never text from the query string, which anyone can write).
NOTICES = {
    "token-revoked": "Token revoked. Programs that used it can no longer call the API.",
    "org-created": "Organization created. You are its owner.",
    "member-added": "Member added.",
    "member-removed": "Member removed.",
    "left": "You left the organization.",
    "owner-set": "Default owner saved.",
}


async def web_caller(request: Request, bus: BusDep) -> c.Caller:
    """The signed-in caller (with the id of the session's token); otherwise sign in first."""
    caller = await session_caller(request, bus)
    if caller is None:
        raise SignInRequired(request.url.path if request.method == "GET" else "/account")
    return caller


WebCaller = Annotated[c.Caller, Depends(web_caller)]


def default_owner(request: Request, viewer: Viewer) -> str:
    """The owner new models and deployments default to: the one chosen here, else the user."""
    chosen = request.cookies.get(OWNER_COOKIE, "")
    return chosen if chosen in viewer.organizations else viewer.username


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is checked (before anything else is read)."""
    form = await request.form()
    check_csrf(request, form)
    return form


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def confirmed(form: FormData) -> bool:
    return form.get("confirm") == "yes"


def redirect(path: str, done: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}{anchor}", status_code=303)


def username_error(value: str) -> str | None:
    if not value:
        return "Required."
    return None if USERNAME.fullmatch(value) else USERNAME_RULE


def confirm_page(request: Request, *, title: str, message: str, action: str, back: str) -> Response:
    """The confirmation step of a destructive form posted without the page's dialog."""
    return page(
        request, "account/confirm.html", title=title, message=message, action=action, back=back
    )


# -- the account page and tokens ---------------------------------------------------------------


async def account_page(
    request: Request,
    caller: c.Caller,
    bus: BusDep,
    *,
    status_code: int = 200,
    created: c.CreatedToken | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    ref = c.CallerRef(account_id=caller.account.id)
    tokens, memberships = await asyncio.gather(
        bus.request(c.LIST_TOKENS, ref), bus.request(c.LIST_MEMBERSHIPS, ref)
    )
    orgs = [m.organization.username for m in memberships.results]
    chosen = request.cookies.get(OWNER_COOKIE, "")
    return page(
        request,
        "account/index.html",
        status_code=status_code,
        account=caller.account,
        session_token_id=caller.token_id,
        tokens=tokens.results,
        memberships=memberships.results,
        owners=[caller.account.username, *orgs],
        owner=chosen if chosen in orgs else caller.account.username,
        created=created,
        errors=errors or {},
        values=values or {},
        notice=NOTICES.get(request.query_params.get("done", "")),
        username_pattern=HTML_USERNAME_PATTERN,
        username_rule=USERNAME_RULE,
    )


@router.get("/account", response_class=HTMLResponse)
async def show_account(request: Request, caller: WebCaller, bus: BusDep) -> HTMLResponse:
    return await account_page(request, caller, bus)


@router.post("/account/tokens", response_class=HTMLResponse)
async def create_token(request: Request, caller: WebCaller, bus: BusDep) -> HTMLResponse:
    """Create a token and show its secret, this once."""
    form = await checked_form(request)
    name = text_field(form, "name")
    if not name or len(name) > 100:
        error = "Give the token a name (up to 100 characters)."
        return await account_page(
            request,
            caller,
            bus,
            status_code=422,
            errors={"token_name": error},
            values={"name": name},
        )
    created = await bus.request(
        c.CREATE_TOKEN, c.CreateToken(account_id=caller.account.id, name=name)
    )
    return await account_page(request, caller, bus, status_code=201, created=created)


@router.post("/account/tokens/{token_id}/revoke", response_model=None)
async def revoke_token(request: Request, token_id: str, caller: WebCaller, bus: BusDep) -> Response:
    """Revoke one of your tokens (after a confirmation); revoking this session's signs out."""
    form = await checked_form(request)
    found = await bus.request(c.LIST_TOKENS, c.CallerRef(account_id=caller.account.id))
    token = next((t for t in found.results if t.id == token_id), None)
    if token is None:
        raise NotFound("Token not found")
    current = token.id == caller.token_id
    if not confirmed(form):
        warning = " This page's session uses it: you will be signed out." if current else ""
        return confirm_page(
            request,
            title="Revoke token",
            message=f"Revoke the token “{token.name}” ({token.hint}…)? Programs that use it stop "
            f"working at once.{warning}",
            action=request.url.path,
            back="/account#tokens",
        )
    await bus.request(
        c.REVOKE_TOKEN, c.RevokeToken(account_id=caller.account.id, token_id=token.id)
    )
    if not current:
        return redirect("/account", "token-revoked", "#tokens")
    request.state.web_viewer = None  # the page says goodbye without the signed-in header
    response = page(request, "account/signed_out.html")
    response.delete_cookie(COOKIE, path="/")
    return response


# -- the owner new things default to -----------------------------------------------------------


@router.post("/account/owner", response_model=None)
async def choose_owner(request: Request, caller: WebCaller, bus: BusDep) -> Response:
    """Choose the owner that forms for new models and deployments start with."""
    form = await checked_form(request)
    owner = text_field(form, "owner")
    found = await bus.request(c.LIST_MEMBERSHIPS, c.CallerRef(account_id=caller.account.id))
    if owner not in {caller.account.username, *(m.organization.username for m in found.results)}:
        errors = {"owner": "Choose yourself or one of your organizations."}
        return await account_page(request, caller, bus, status_code=422, errors=errors)
    response = redirect("/account", "owner-set", "#owners")
    settings = settings_of(request)
    response.set_cookie(
        OWNER_COOKIE,
        owner,
        max_age=MAX_AGE * 52,
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
        path="/",
    )
    return response


# -- organizations -----------------------------------------------------------------------------


@router.post("/account/organizations", response_model=None)
async def create_organization(request: Request, caller: WebCaller, bus: BusDep) -> Response:
    """Create an organization; you become its owner."""
    form = await checked_form(request)
    username, name = text_field(form, "username"), text_field(form, "name")
    errors = {}
    if problem := username_error(username):
        errors["org_username"] = problem
    if not name or len(name) > 200:
        errors["org_name"] = "Give it a display name (up to 200 characters)."
    if not errors:
        create = c.CreateOrganization(account_id=caller.account.id, username=username, name=name)
        try:
            await bus.request(c.CREATE_ORGANIZATION, create)
        except CogplaneError as exc:
            if exc.status != 409:
                raise
            errors["org_username"] = exc.detail
    if errors:
        status = 409 if "taken" in errors.get("org_username", "") else 422
        values = {"org_username": username, "org_name": name}
        return await account_page(
            request, caller, bus, status_code=status, errors=errors, values=values
        )
    return redirect(f"/account/organizations/{quote(username)}", "org-created")


async def organization_page(
    request: Request,
    caller: c.Caller,
    bus: BusDep,
    organization: str,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    ref = c.CallerRef(account_id=caller.account.id)
    org_ref = c.OrganizationRef(account_id=caller.account.id, organization=organization)
    members, memberships = await asyncio.gather(
        bus.request(c.LIST_MEMBERS, org_ref), bus.request(c.LIST_MEMBERSHIPS, ref)
    )
    mine = next((m for m in memberships.results if m.organization.username == organization), None)
    if mine is None:  # left or removed between the two answers
        raise NotFound(f"Organization {organization!r} not found")
    owners = sum(1 for m in members.results if m.role == "owner")
    return page(
        request,
        "account/organization.html",
        status_code=status_code,
        me=caller.account.username,
        organization=mine.organization,
        role=mine.role,
        members=members.results,
        owners=owners,
        errors=errors or {},
        values=values or {},
        notice=NOTICES.get(request.query_params.get("done", "")),
        username_pattern=HTML_USERNAME_PATTERN,
        username_rule=USERNAME_RULE,
    )


@router.get("/account/organizations/{organization}", response_class=HTMLResponse)
async def show_organization(
    request: Request, organization: str, caller: WebCaller, bus: BusDep
) -> HTMLResponse:
    return await organization_page(request, caller, bus, organization)


@router.post("/account/organizations/{organization}/members", response_model=None)
async def add_member(
    request: Request, organization: str, caller: WebCaller, bus: BusDep
) -> Response:
    """Add a user to an organization you own."""
    form = await checked_form(request)
    username = text_field(form, "username")
    problem, status = username_error(username), 422
    if problem is None:
        add = c.MemberRequest(
            account_id=caller.account.id, organization=organization, username=username
        )
        try:
            await bus.request(c.ADD_MEMBER, add)
        except CogplaneError as exc:
            if exc.status not in (403, 404, 409):
                raise
            # (The page itself is not found when the caller is not a member.)
            problem, status = exc.detail, exc.status
    if problem is not None:
        return await organization_page(
            request,
            caller,
            bus,
            organization,
            status_code=status,
            errors={"username": problem},
            values={"username": username},
        )
    return redirect(f"/account/organizations/{quote(organization)}", "member-added")


@router.post("/account/organizations/{organization}/members/{username}/remove", response_model=None)
async def remove_member(
    request: Request, organization: str, username: str, caller: WebCaller, bus: BusDep
) -> Response:
    """Remove a member (owners), or leave (yourself); after a confirmation."""
    form = await checked_form(request)
    org_ref = c.OrganizationRef(account_id=caller.account.id, organization=organization)
    members = await bus.request(c.LIST_MEMBERS, org_ref)
    if all(m.account.username != username for m in members.results):
        raise NotFound(f"{username} is not a member of {organization}")
    leaving = username == caller.account.username
    if not confirmed(form):
        return confirm_page(
            request,
            title="Leave organization" if leaving else "Remove member",
            message=f"Leave {organization}? You lose access to its private models."
            if leaving
            else f"Remove {username} from {organization}? They lose access to its private models.",
            action=request.url.path,
            back=f"/account/organizations/{quote(organization)}",
        )
    remove = c.MemberRequest(
        account_id=caller.account.id, organization=organization, username=username
    )
    try:
        await bus.request(c.REMOVE_MEMBER, remove)
    except CogplaneError as exc:
        if exc.status not in (403, 409):
            raise
        errors = {"members": exc.detail}
        return await organization_page(
            request, caller, bus, organization, status_code=exc.status, errors=errors
        )
    if leaving:
        return redirect("/account", "left", "#organizations")
    return redirect(f"/account/organizations/{quote(organization)}", "member-removed")
