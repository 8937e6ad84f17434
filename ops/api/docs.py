"""/api/v1/docs/: Swagger UI over /api/v1/schema/, from our own static files (the
drf-spectacular-sidecar package), started by a static script: no inline script or style,
no CDN. The page sends its own Content-Security-Policy, the strictest it works under."""
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@require_safe
@ensure_csrf_cookie  # "Try it out" with a signed-in session sends the CSRF cookie's token back
def api_docs(request):
    response = render(request, "api/docs.html")
    response["Content-Security-Policy"] = CSP
    return response
