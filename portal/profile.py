"""/profile/: a signed-in user's own page: their roles and their API token (create, revoke).
The key is on the page that created it and nowhere else, ever again."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods

from ops.services import api_tokens

@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    new_key = None
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "create":
                new_key = api_tokens.create_token(request.user).key
            elif action == "revoke":
                api_tokens.revoke_token(request.user)
                messages.success(request, "Your API token is revoked: requests that send it are refused from now on.")
                return redirect("profile")
            else:
                messages.error(request, f"Unknown action {action[:40]!r}; expected create or revoke. Nothing changed.")
                status = 400
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            status = 400
    token = api_tokens.token_of(request.user)
    response = render(request, "portal/profile.html", {"nav": "profile", "token": token, "new_key": new_key}, status=status)
    add_never_cache_headers(response)  # the page that shows a new key is kept by no cache and no history
    return response
