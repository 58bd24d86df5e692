// The facade's API reference page (GET /docs/): Swagger UI showing the
// facade's own OpenAPI 3 document, and nothing else. A file of its own, not
// an inline script, so that the page's Content-Security-Policy can refuse
// every inline script.
"use strict";

window.ui = SwaggerUIBundle({
  // Always the document of the facade that serves this page, relative to
  // it, so that the page also works behind a proxy that adds a path prefix.
  url: new URL("../openapi.v3.json", document.baseURI).href,
  // A ?url= or ?configUrl= in the page's address must never load another
  // document: that is how a link to a reference page becomes an attack on
  // whoever follows it.
  queryConfigEnabled: false,
  // No badge from validator.swagger.io: the page asks no other host for
  // anything.
  validatorUrl: null,
  // The caller key typed into "Authorize" stays in this tab's memory; it is
  // not written to the browser's storage.
  persistAuthorization: false,
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
});
