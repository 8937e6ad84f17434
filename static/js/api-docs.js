// /api/v1/docs/ (templates/api/docs.html): start Swagger UI on the schema the page names.
// A static file, so the page needs no inline script (its Content-Security-Policy forbids them).
"use strict";
(function () {
  const el = document.getElementById("swagger-ui");
  const csrf = () => {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };
  window.slipwayApiDocs = SwaggerUIBundle({
    url: el.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // a signed-in browser acts through its session: unsafe methods carry the CSRF token
    requestInterceptor: (req) => {
      if (req.method && req.method !== "GET" && req.method !== "HEAD") {
        req.headers["X-CSRFToken"] = csrf();
      }
      return req;
    },
  });
})();
