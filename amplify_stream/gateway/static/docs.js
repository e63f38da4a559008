// Swagger UI over the gateway's own OpenAPI document. A file, not an inline script, so
// a Content-Security-Policy of script-src 'self' lets it run.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
