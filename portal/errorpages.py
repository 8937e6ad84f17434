"""Error pages a person can act on: a refused form (CSRF) and a wrong HTTP method say what
happened and what to do, instead of Django's bare text or an empty body."""
from django.shortcuts import render


def csrf_failure(request, reason=""):
    """settings.CSRF_FAILURE_VIEW: the form was stale (signed out, another tab, an old page)."""
    return render(request, "portal/csrf_failure.html", {"reason": reason}, status=403)


class MethodNotAllowedPage:
    """Give Django's empty 405 (``require_POST`` and friends) a page that names the method."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and not response.content:
            allowed = response.get("Allow", "")
            page = render(request, "portal/method_not_allowed.html",
                          {"method": request.method, "allowed": allowed}, status=405)
            page["Allow"] = allowed
            return page
        return response
